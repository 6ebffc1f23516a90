//! Any bytes as a CUR CSV delivery and as each field parser's input: a value or a precise
//! error, never a panic. Run: `RUSTC_BOOTSTRAP=1 cargo fuzz run cur_line` (see README).
#![no_main]

use finops_cur::ai_facts::AiFacts;
use finops_cur::csv_lines::CurCsv;
use finops_cur::focus_lines::FocusCsv;
use finops_cur::principal::Principal;
use finops_cur::resource::BedrockResource;
use finops_cur::usage_type::UsageType;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let _ = Principal::parse(&text);
    let _ = UsageType::parse(&text);
    let _ = BedrockResource::parse(&text);
    if let Ok(csv) = CurCsv::new("fuzz.csv", data) {
        for line in csv.take(1_000).flatten() {
            let _ = AiFacts::of(&line);
        }
    }
    if let Ok(focus) = FocusCsv::new("fuzz.csv", data) {
        for line in focus.take(1_000).flatten() {
            let _ = AiFacts::of(&line);
        }
    }
});
