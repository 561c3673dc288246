//! What this machine allows, measured in the same run as the workloads, so that each figure can
//! be read against its floor:
//!
//! - **fsync**: a 4 KiB write followed by `fdatasync`, appended to a file in `target/` (the
//!   disk the benchmarks' SQLite files and Raft logs live on): p50/p99 per durable write. A
//!   replicated write waits for at least two of these in sequence (leader and follower log).
//! - **loopback**: a one-byte TCP ping-pong on 127.0.0.1 (no TLS): p50/p99 round trip.
//! - **hashing**: SHA-256 (`sha2`, the audit chain's hash) and BLAKE3 (`blake3`, event
//!   digests) over 1 MiB buffers: MB/s on one core.
//!
//! `cargo bench -p metamesh-testkit --bench limits` (`METAMESH_BENCH_SMOKE=1`: fewer rounds).
//! Prints a table, writes `target/bench/limits.json`.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use metamesh_testkit::bench::{out_dir, quantile_ms, save};
use serde_json::json;
use sha2::Digest;

fn fsync(rounds: usize) -> Vec<Duration> {
    let dir = tempfile::tempdir_in(out_dir()).expect("a directory in target/bench");
    let mut file = std::fs::File::create(dir.path().join("probe")).expect("the probe file");
    let block = vec![0xa5u8; 4096];
    let mut lat = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let t = Instant::now();
        file.write_all(&block).expect("a write");
        file.sync_data().expect("fdatasync");
        lat.push(t.elapsed());
    }
    lat
}

fn loopback(rounds: usize) -> Vec<Duration> {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    let addr = listener.local_addr().expect("its address");
    let echo = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().expect("the prober");
        s.set_nodelay(true).expect("nodelay");
        let mut b = [0u8; 1];
        while s.read_exact(&mut b).is_ok() {
            if s.write_all(&b).is_err() {
                break;
            }
        }
    });
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_nodelay(true).expect("nodelay");
    let mut b = [7u8; 1];
    let mut lat = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let t = Instant::now();
        s.write_all(&b).expect("ping");
        s.read_exact(&mut b).expect("pong");
        lat.push(t.elapsed());
    }
    drop(s);
    echo.join().expect("the echo thread");
    lat
}

/// MB/s of `hash` over `mib` MiB, 1 MiB at a time.
fn throughput(mib: usize, mut hash: impl FnMut(&[u8]) -> u8) -> f64 {
    let buf: Vec<u8> = (0..1 << 20).map(|i| (i * 31 % 251) as u8).collect();
    let mut sink = 0u8;
    let t = Instant::now();
    for _ in 0..mib {
        sink ^= hash(&buf);
    }
    std::hint::black_box(sink);
    (mib as f64 * 1.048_576) / t.elapsed().as_secs_f64()
}

fn main() {
    let smoke = std::env::var_os("METAMESH_BENCH_SMOKE").is_some();
    let (syncs, pings, mib) = if smoke { (200, 2_000, 64) } else { (2_000, 20_000, 1_024) };
    let mut f = fsync(syncs);
    f.sort();
    let mut l = loopback(pings);
    l.sort();
    let sha256 = throughput(mib, |b| sha2::Sha256::digest(b)[0]);
    let blake3 = throughput(mib, |b| blake3::hash(b).as_bytes()[0]);
    println!("| limit | figure |\n|---|---|");
    println!(
        "| fsync (4 KiB write + fdatasync, target/) | p50 {:.3} ms, p99 {:.3} ms |",
        quantile_ms(&f, 0.5),
        quantile_ms(&f, 0.99)
    );
    println!(
        "| loopback TCP round trip | p50 {:.1} µs, p99 {:.1} µs |",
        quantile_ms(&l, 0.5) * 1e3,
        quantile_ms(&l, 0.99) * 1e3
    );
    println!("| SHA-256 | {sha256:.0} MB/s |");
    println!("| BLAKE3 | {blake3:.0} MB/s |");
    save(
        "limits",
        &json!({"smoke": smoke,
                "fsync": {"n": syncs, "p50_ms": quantile_ms(&f, 0.5), "p99_ms": quantile_ms(&f, 0.99)},
                "loopback": {"n": pings, "p50_us": quantile_ms(&l, 0.5) * 1e3, "p99_us": quantile_ms(&l, 0.99) * 1e3},
                "sha256_mb_per_s": sha256, "blake3_mb_per_s": blake3}),
    );
}
