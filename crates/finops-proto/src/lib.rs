//! The public gRPC contract of FinOps Center, generated from `proto/finops/v1`.
//!
//! The server depends on this crate, never the reverse; the mapping between these wire
//! types and domain types is hand-written on the server side.

/// Package `finops.v1`.
pub mod v1 {
    #![allow(missing_docs, clippy::all, clippy::pedantic)]
    tonic::include_proto!("finops.v1");
}

/// The encoded file descriptor set of every finops.v1 file, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("finops_v1_descriptor");
