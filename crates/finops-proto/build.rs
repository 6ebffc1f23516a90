//! Generates the finops.v1 types and services. protoc comes from the vendored crate
//! unless `PROTOC` names one, so a fresh machine needs no manual install.

fn main() -> std::io::Result<()> {
    let protoc = match std::env::var_os("PROTOC") {
        Some(path) => std::path::PathBuf::from(path),
        None => protoc_bin_vendored::protoc_bin_path().map_err(std::io::Error::other)?,
    };
    let mut config = prost_build::Config::new();
    config.protoc_executable(protoc);
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let protos = [
        "../../proto/finops/v1/event_log.proto",
        "../../proto/finops/v1/business_requests.proto",
        "../../proto/finops/v1/catalog.proto",
        "../../proto/finops/v1/tasks.proto",
        "../../proto/finops/v1/spaces.proto",
        "../../proto/finops/v1/organisation.proto",
        "../../proto/finops/v1/attribution.proto",
        "../../proto/finops/v1/gaps.proto",
        "../../proto/finops/v1/history.proto",
        "../../proto/finops/v1/spend_cards.proto",
        "../../proto/finops/v1/maturity.proto",
        "../../proto/finops/v1/agent_bill.proto",
        "../../proto/finops/v1/workload_control.proto",
        "../../proto/finops/v1/investigations.proto",
        "../../proto/finops/v1/cur_ingest.proto",
    ];
    tonic_prost_build::configure().file_descriptor_set_path(out.join("finops_v1_descriptor.bin")).compile_with_config(
        config,
        &protos,
        &["../../proto"],
    )?;
    for proto in protos {
        println!("cargo:rerun-if-changed={proto}");
    }
    // Once paths are listed, cargo watches only them: without this, a proto added to the
    // list above would not be generated until some listed file changed.
    println!("cargo:rerun-if-changed=build.rs");
    Ok(())
}
