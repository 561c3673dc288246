//! Hot reload: checks hammered from several threads while the policy changes never see a
//! mixed policy; the digest changes exactly when the content does; the watcher follows the
//! files and ignores touches.

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use common::*;
use metamesh_policy::{Action, Authorizer, PolicyDigest, Resource, WatchOptions};

/// Version `writer` makes `P` a writer in both fraud and growth; the other a reader in both.
/// The two tenant files always change together.
fn write_version(dir: &Path, writer: bool) {
    let role = if writer { "role:writer" } else { "role:reader" };
    let p = principal("p");
    write_policy(
        dir,
        &repo_roles(),
        &[("fraud", &format!("g, {p}, {role}, fraud\n")), ("growth", &format!("g, {p}, {role}, growth\n"))],
    );
}

/// Points the symlink `link` at `target` atomically: a new link renamed over the old one.
fn swap_symlink(link: &Path, target: &Path) {
    let tmp = link.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp).unwrap();
    std::fs::rename(&tmp, link).unwrap();
}

async fn wait_for(authz: &Authorizer, want: PolicyDigest, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while authz.digest() != want {
        assert!(Instant::now() < deadline, "the watcher did not pick up {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hammer_never_sees_a_mixed_policy() {
    let root = tempfile::tempdir().unwrap();
    let (va, vb, link) = (root.path().join("va"), root.path().join("vb"), root.path().join("policies"));
    write_version(&va, true);
    write_version(&vb, false);
    let digest_a = metamesh_policy::PolicySet::load(&va).unwrap().digest();
    let digest_b = metamesh_policy::PolicySet::load(&vb).unwrap().digest();
    assert_ne!(digest_a, digest_b);
    swap_symlink(&link, &va);
    let authz = Authorizer::load(&link).unwrap();
    // The watcher reloads concurrently with the explicit reloads below.
    let _watch = authz.watch(WatchOptions { interval: Duration::from_millis(5) });

    let stop = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let (authz, stop) = (authz.clone(), stop.clone());
            std::thread::spawn(move || {
                let p = principal("p");
                let (f, g) = (urn("mm://fraud/dataset/x"), urn("mm://growth/dataset/y"));
                let mut seen = [0u64; 2];
                while !stop.load(Ordering::Relaxed) {
                    let policy = authz.snapshot();
                    let in_fraud = policy.check(&p, Action::Write, &Resource::Entity(&f));
                    let in_growth = policy.check(&p, Action::Write, &Resource::Entity(&g));
                    assert_eq!(in_fraud.allowed, in_growth.allowed, "one tenant file changed without the other");
                    let want = if in_fraud.allowed { digest_a } else { digest_b };
                    assert_eq!(in_fraud.digest, want, "decision and digest disagree");
                    assert!(policy.check(&p, Action::Read, &Resource::Entity(&f)).allowed);
                    seen[usize::from(!in_fraud.allowed)] += 1;
                }
                seen
            })
        })
        .collect();

    let deadline = Instant::now() + Duration::from_secs(3);
    let mut swaps = 0;
    while Instant::now() < deadline {
        swaps += 1;
        let (target, digest) = if swaps % 2 == 0 { (&va, digest_a) } else { (&vb, digest_b) };
        swap_symlink(&link, target);
        if swaps % 3 == 0 {
            let authz = authz.clone();
            // A read that keeps straddling swaps gives up (and changes nothing) rather than
            // risk a mix; otherwise it returns one of the two versions.
            match tokio::task::spawn_blocking(move || authz.reload()).await.unwrap() {
                Ok(got) => assert!(got == digest || got == digest_a || got == digest_b),
                Err(e) => assert!(e.first().reason.contains("kept changing"), "{e}"),
            }
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut seen = [0u64; 2];
    for r in readers {
        let s = r.join().expect("a reader saw a mixed policy");
        seen[0] += s[0];
        seen[1] += s[1];
    }
    assert!(seen[0] > 0 && seen[1] > 0, "both versions should have been in force: {seen:?} over {swaps} swaps");
}

#[test]
fn digest_changes_exactly_when_content_does() {
    let dir = tempfile::tempdir().unwrap();
    write_version(dir.path(), true);
    let authz = Authorizer::load(dir.path()).unwrap();
    let first = authz.digest();
    let snapshot = authz.snapshot();
    let fraud = dir.path().join("tenants/fraud.csv");

    // Touching (a new mtime) or rewriting the same bytes changes nothing: not even a new
    // policy object (caches stay warm).
    let file = std::fs::File::options().write(true).open(&fraud).unwrap();
    file.set_modified(SystemTime::now() + Duration::from_secs(60)).unwrap();
    drop(file);
    std::fs::write(&fraud, std::fs::read(&fraud).unwrap()).unwrap();
    assert_eq!(authz.reload().unwrap(), first);
    assert!(Arc::ptr_eq(&snapshot, &authz.snapshot()));
    // Files that are not policy are not in the digest.
    std::fs::write(dir.path().join("README.md"), "notes").unwrap();
    std::fs::write(dir.path().join("tenants/fraud.csv~"), "backup").unwrap();
    std::fs::create_dir_all(dir.path().join("tests")).unwrap();
    std::fs::write(dir.path().join("tests/a.toml"), "allow = []").unwrap();
    assert_eq!(authz.reload().unwrap(), first);

    // Any byte of a policy file counts, comments included: the digest names the files.
    let original = std::fs::read_to_string(&fraud).unwrap();
    std::fs::write(&fraud, format!("{original}# reviewed\n")).unwrap();
    let second = authz.reload().unwrap();
    assert_ne!(second, first);
    // A new tenant file, or a renamed one, counts too.
    std::fs::write(dir.path().join("tenants/payments.csv"), "").unwrap();
    let third = authz.reload().unwrap();
    assert!(third != first && third != second);
    std::fs::remove_file(dir.path().join("tenants/payments.csv")).unwrap();
    // Back to the same bytes, back to the same digest.
    std::fs::write(&fraud, original).unwrap();
    assert_eq!(authz.reload().unwrap(), first);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watcher_follows_the_files() {
    let dir = tempfile::tempdir().unwrap();
    write_version(dir.path(), true);
    let authz = Authorizer::load(dir.path()).unwrap();
    let writer_digest = authz.digest();
    let watch = authz.watch(WatchOptions { interval: Duration::from_millis(20) });
    let (p, x) = (principal("p"), urn("mm://fraud/dataset/x"));

    // An edit in place.
    write_version(dir.path(), false);
    let reader_digest = metamesh_policy::PolicySet::load(dir.path()).unwrap().digest();
    wait_for(&authz, reader_digest, "an edit").await;
    assert!(!authz.check(&p, Action::Write, &Resource::Entity(&x)).allowed);

    // A broken edit is not applied, and is reported; fixing it applies.
    let fraud = dir.path().join("tenants/fraud.csv");
    std::fs::write(&fraud, "g, nobody, role:nope, fraud\n").unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while authz.last_error().is_none() {
        assert!(Instant::now() < deadline, "the watcher did not report the broken file");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(authz.last_error().unwrap().first().line, Some(1));
    assert_eq!(authz.digest(), reader_digest);
    write_version(dir.path(), true);
    wait_for(&authz, writer_digest, "the fix").await;
    assert!(authz.check(&p, Action::Write, &Resource::Entity(&x)).allowed);
    assert_eq!(authz.last_error(), None);

    // Touching does not reload: the policy object stays the same.
    let snapshot = authz.snapshot();
    let file = std::fs::File::options().write(true).open(&fraud).unwrap();
    file.set_modified(SystemTime::now() + Duration::from_secs(60)).unwrap();
    drop(file);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(Arc::ptr_eq(&snapshot, &authz.snapshot()));

    // Dropping the handle stops the watcher.
    drop(watch);
    tokio::time::sleep(Duration::from_millis(50)).await;
    write_version(dir.path(), false);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(authz.digest(), writer_digest);
}
