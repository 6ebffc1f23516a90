//! CUR CSV reading throughput: the typed, schema-checked reader next to a raw `csv`
//! record scan of the same bytes (the baseline), and the synthetic generator's rate.
//!
//! Run: `cargo bench -p finops-cur --bench cur_csv` (`BENCH_ROWS`, default 1 000 000).

use std::time::Instant;

use finops_cur::csv_lines::CurCsv;
use finops_cur::synthetic::{MonthSpec, write_month};

fn main() {
    let rows: u64 = std::env::var("BENCH_ROWS").ok().and_then(|s| s.parse().ok()).unwrap_or(1_000_000);
    let spec = MonthSpec { period: "2026-11".into(), rows, seed: 7, restatement: 0 };

    let t = Instant::now();
    let mut bytes = Vec::with_capacity(rows as usize * 300);
    write_month(&spec, &mut bytes).expect("in-memory write");
    let generate = t.elapsed().as_secs_f64();

    // Best of three for both readers, alternating so neither gets a warmer cache.
    let mut raw_best = f64::MAX;
    let mut typed_best = f64::MAX;
    for _ in 0..3 {
        let t = Instant::now();
        let mut reader = csv::Reader::from_reader(bytes.as_slice());
        let mut record = csv::StringRecord::new();
        let mut n = 0u64;
        while reader.read_record(&mut record).expect("valid CSV") {
            n += 1;
        }
        assert_eq!(n, rows);
        raw_best = raw_best.min(t.elapsed().as_secs_f64());

        let t = Instant::now();
        let mut cost = 0.0;
        let mut n = 0u64;
        for line in CurCsv::new("bench.csv", bytes.as_slice()).expect("header") {
            cost += line.expect("valid line").unblended_cost;
            n += 1;
        }
        assert_eq!(n, rows);
        assert!(cost > 0.0);
        typed_best = typed_best.min(t.elapsed().as_secs_f64());
    }
    let mb = bytes.len() as f64 / 1e6;
    println!("rows: {rows}, CSV size: {mb:.0} MB");
    println!("generate:           {:>10.0} rows/s", rows as f64 / generate);
    println!("raw csv scan:       {:>10.0} rows/s ({:.0} MB/s)", rows as f64 / raw_best, mb / raw_best);
    println!("typed CurCsv read:  {:>10.0} rows/s ({:.0} MB/s)", rows as f64 / typed_best, mb / typed_best);
    println!("typed / raw:        {:>10.2}", raw_best / typed_best);
}
