//! What the benchmarks share: where their figures go.
//!
//! Every benchmark writes its figures as `target/bench/<name>.json`; `bench/run.sh` gathers
//! them into `target/bench/report.json` and `report.md` (`bench/report.py`).

use std::path::PathBuf;

/// `target/bench` of the workspace (or of `$CARGO_TARGET_DIR`), created if missing.
pub fn out_dir() -> PathBuf {
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"),
    };
    let dir = target.join("bench");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    dir
}

/// Writes `figures` to `target/bench/<name>.json` and says where.
pub fn save(name: &str, figures: &serde_json::Value) {
    let path = out_dir().join(format!("{name}.json"));
    let text = serde_json::to_vec_pretty(figures).expect("figures serialize");
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    println!("figures written to {}", path.display());
}

/// The `p`-quantile of sorted durations, in milliseconds.
pub fn quantile_ms(sorted: &[std::time::Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize].as_secs_f64() * 1e3
}
