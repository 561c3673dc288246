//! Authorization overhead per check, with 10,000 policy lines: prints figures, asserts nothing.
//!
//! `cargo bench -p metamesh-policy --bench authorize`; `METAMESH_BENCH_SMOKE=1` runs a small
//! version in seconds (same policy size, fewer samples).
//!
//! Two shapes of the same 10,000 lines (plus the repository's `global.csv` roles):
//! - spread: 100 tenant files of 100 lines each (45 role assignments, 50 direct grants on name
//!   prefixes, 5 sensitivity markers);
//! - one tenant: a single tenant file of 10,000 such lines, the worst case for a cache miss
//!   (casbin evaluates the matcher once per `p` rule of the tenant's partition until one
//!   allows);
//! - one tenant, assignments only: 9,500 role assignments and 500 markers, no direct grants:
//!   `g` lines live in casbin's role graph and cost a miss nothing per line.
//!
//! For each: load time; per-check latency (p50/p99, one `PolicySet::check` including the URN
//! formatting) with the cached enforcer warm (hits), the cached enforcer's first evaluation of
//! each request (misses), and casbin's plain enforcer (no cache); allowed and denied requests
//! measured apart, since a denial scans every rule.

use std::path::Path;
use std::time::{Duration, Instant};

use metamesh_core::EntityUrn;
use metamesh_policy::{Action, LoadOptions, PolicySet, Resource};

const LINES: usize = 10_000;
const ROLES: [&str; 4] = ["reader", "writer", "admin", "linker"];
const KINDS: [&str; 4] = ["dataset", "model", "feature", "run"];

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*: deterministic, no dependency.
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn principal(tenant: &str, i: usize) -> String {
    format!("spiffe://metamesh.local/client/{tenant}-user{i}")
}

fn service(tenant: &str, i: usize) -> String {
    format!("spiffe://metamesh.local/client/{tenant}-svc{i}")
}

/// Role assignments per 100 lines: with direct grants, 45 (and 50 grants); without, 95.
fn users_per_block(direct: bool) -> usize {
    if direct {
        45
    } else {
        95
    }
}

/// `lines` lines of tenant `t`: per 100, the assignments, the direct grants, 5 markers.
fn tenant_file(t: &str, lines: usize, direct: bool) -> String {
    let mut out = String::with_capacity(lines * 80);
    let users = users_per_block(direct);
    for block in 0..lines / 100 {
        for i in 0..users {
            let n = block * users + i;
            out.push_str(&format!("g, {}, role:{}, {t}\n", principal(t, n), ROLES[n % ROLES.len()]));
        }
        for i in 0..if direct { 50 } else { 0 } {
            let n = block * 50 + i;
            let kind = KINDS[n % KINDS.len()];
            let act = ["read", "write", "link", "discover"][n % 4];
            out.push_str(&format!("p, {}, {t}, mm://{t}/{kind}/team{n}%2F*, {act}\n", service(t, n)));
        }
        for i in 0..5 {
            out.push_str(&format!("s, mm://{t}/dataset/pii{}%2F*\n", block * 5 + i));
        }
    }
    out
}

fn write_policy(dir: &Path, tenants: usize, direct: bool) {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies");
    std::fs::create_dir_all(dir.join("tenants")).unwrap();
    std::fs::copy(repo.join("model.conf"), dir.join("model.conf")).unwrap();
    std::fs::copy(repo.join("global.csv"), dir.join("global.csv")).unwrap();
    for i in 0..tenants {
        let t = format!("t{i:03}");
        std::fs::write(dir.join("tenants").join(format!("{t}.csv")), tenant_file(&t, LINES / tenants, direct)).unwrap();
    }
}

/// One request of the pool; `allowed` is what the policy should answer.
struct Req {
    principal: String,
    action: Action,
    urn: EntityUrn,
    allowed: bool,
}

/// Half allowed (a user acting within its role, a service within its prefix), half denied
/// (another tenant, an action the role lacks, a name outside the prefix).
fn pool(tenants: usize, direct: bool, n: usize, rng: &mut Rng) -> Vec<Req> {
    let per_tenant_users = (LINES / tenants) / 100 * users_per_block(direct);
    let per_tenant_services = (LINES / tenants) / 100 * 50;
    (0..n)
        .map(|i| {
            let t = format!("t{:03}", rng.below(tenants));
            let allowed = i % 2 == 0;
            let kind = KINDS[rng.below(KINDS.len())];
            let name = format!("x{}", rng.next() % 1_000_000);
            if !direct || rng.below(2) == 0 {
                // A role holder; writers are every 4th user starting at 1.
                let u = 1 + 4 * rng.below(per_tenant_users / 4);
                let (tenant, action) = if allowed {
                    (t.clone(), Action::Write)
                } else if rng.below(2) == 0 {
                    (format!("t{:03}", (t[1..].parse::<usize>().unwrap() + 1) % tenants.max(2)), Action::Read)
                } else {
                    (t.clone(), Action::SchemaWrite)
                };
                let urn = format!("mm://{tenant}/{kind}/{name}").parse().unwrap();
                Req { principal: principal(&t, u), action, urn, allowed: allowed && tenant == t }
            } else {
                let s = rng.below(per_tenant_services);
                let (kind, action) =
                    (KINDS[s % KINDS.len()], [Action::Read, Action::Write, Action::Link, Action::Discover][s % 4]);
                let name = if allowed { format!("team{s}%2F{name}") } else { format!("team{}%2F{name}", s + 1) };
                let urn = format!("mm://{t}/{kind}/{name}").parse().unwrap();
                Req { principal: service(&t, s), action, urn, allowed }
            }
        })
        .collect()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn report(label: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let mean = samples.iter().sum::<Duration>() / samples.len() as u32;
    println!(
        "  {label:<34} n={:<7} p50 {:>10.2?}  p99 {:>10.2?}  mean {:>10.2?}",
        samples.len(),
        percentile(&samples, 0.50),
        percentile(&samples, 0.99),
        mean
    );
}

fn time_checks<'a>(policy: &PolicySet, reqs: impl Iterator<Item = &'a Req>) -> (Vec<Duration>, Vec<Duration>) {
    let (mut allowed, mut denied) = (Vec::new(), Vec::new());
    for r in reqs {
        let start = Instant::now();
        let d = policy.check(&r.principal, r.action, &Resource::Entity(&r.urn));
        let took = start.elapsed();
        assert_eq!(d.allowed, r.allowed, "{} {} {}: {}", r.principal, r.action, r.urn, d.reason);
        if d.allowed { &mut allowed } else { &mut denied }.push(took);
    }
    (allowed, denied)
}

fn scenario(name: &str, tenants: usize, direct: bool, smoke: bool) {
    let dir = tempfile::tempdir().unwrap();
    write_policy(dir.path(), tenants, direct);
    println!("{name}: {LINES} lines in {tenants} tenant file(s), plus global.csv");
    let mut rng = Rng(0x5eed);
    let (pool_size, warm_rounds, plain_samples) = if smoke {
        (400, 5, 100)
    } else if tenants == 1 {
        (4_000, 50, 400)
    } else {
        (4_000, 50, 4_000)
    };
    let reqs = pool(tenants, direct, pool_size, &mut rng);

    let start = Instant::now();
    let cached = PolicySet::load(dir.path()).unwrap();
    println!("  load (cached enforcer)             {:?}", start.elapsed());
    let start = Instant::now();
    let plain = PolicySet::load_with(dir.path(), &LoadOptions { cache_capacity: 0 }).unwrap();
    println!("  load (plain enforcer)              {:?}", start.elapsed());

    // First evaluation of each request: a cache miss.
    let (a, d) = time_checks(&cached, reqs.iter());
    report("cached, miss, allowed", a);
    report("cached, miss, denied", d);
    // Then hits, in a shuffled order.
    let mut order: Vec<usize> = (0..reqs.len()).collect();
    let (mut a_all, mut d_all) = (Vec::new(), Vec::new());
    for _ in 0..warm_rounds {
        for i in (1..order.len()).rev() {
            order.swap(i, rng.below(i + 1));
        }
        let (a, d) = time_checks(&cached, order.iter().map(|i| &reqs[*i]));
        a_all.extend(a);
        d_all.extend(d);
    }
    report("cached, hit, allowed", a_all);
    report("cached, hit, denied", d_all);
    let (a, d) = time_checks(&plain, reqs.iter().take(plain_samples));
    report("no cache, allowed", a);
    report("no cache, denied", d);
}

fn main() {
    let smoke = std::env::var("METAMESH_BENCH_SMOKE").is_ok_and(|v| v == "1");
    println!("authorization per check (PolicySet::check){}", if smoke { ", smoke" } else { "" });
    scenario("spread", 100, true, smoke);
    scenario("one tenant", 1, true, smoke);
    scenario("one tenant, assignments only", 1, false, smoke);
}
