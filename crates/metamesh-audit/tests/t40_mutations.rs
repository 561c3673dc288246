//! Property: any single-field change to any record of a log is detected, and verify names that
//! record.

mod common;

use common::{key, SHARD};
use metamesh_audit::merkle::Frontier;
use metamesh_audit::{verify, AuditRecord, Chain, Checkpoint, Decision, Draft, Spot};
use proptest::prelude::*;

fn text() -> impl Strategy<Value = String> {
    // Empty, ASCII, multi-byte: the encoding must separate them all.
    prop_oneof![Just(String::new()), "[a-z:/.%-]{1,24}", "\\PC{0,8}"]
}

fn draft() -> impl Strategy<Value = Draft> {
    (
        any::<i64>(),
        (text(), proptest::option::of(text()), text(), text()),
        prop_oneof![Just(Decision::Allow), Just(Decision::Deny)],
        1..50u32,
        (text(), proptest::option::of(text()), any::<[u8; 32]>()),
    )
        .prop_map(
            |(at_ms, (principal, tenant, action, resource), decision, count, (policy, request_id, digest))| Draft {
                at_ms,
                principal,
                tenant,
                action,
                resource,
                decision,
                count: if decision == Decision::Deny { count } else { 1 },
                policy_digest: policy,
                request_id,
                request_digest: digest,
            },
        )
}

/// A different string than `s`, by one of three small edits.
fn mutate_text(s: &mut String, how: u8) {
    match how % 3 {
        0 => s.push('x'),
        1 if !s.is_empty() => {
            s.pop();
        }
        _ => {
            let first = s.chars().next();
            let replacement = if first == Some('a') { 'b' } else { 'a' };
            *s = std::iter::once(replacement).chain(s.chars().skip(1)).collect();
        }
    }
}

/// Changes field `field` (0..13) of `r`, always to a different value.
fn mutate(r: &mut AuditRecord, field: u8, how: u8, bit: u8, delta: u64) {
    let flip = |h: &mut [u8; 32]| h[usize::from(bit % 32)] ^= 1 << (how % 8);
    match field {
        0 => r.seq = r.seq.wrapping_add(delta.max(1)),
        1 => r.at_ms ^= 1 << (bit % 64),
        2 => mutate_text(&mut r.principal, how),
        3 => match &mut r.tenant {
            None => r.tenant = Some(String::new()),
            Some(t) if how % 2 == 0 => mutate_text(t, how / 2),
            Some(_) => r.tenant = None,
        },
        4 => mutate_text(&mut r.action, how),
        5 => mutate_text(&mut r.resource, how),
        6 => r.decision = if r.decision == Decision::Allow { Decision::Deny } else { Decision::Allow },
        7 => r.count ^= 1 << (bit % 32),
        8 => mutate_text(&mut r.policy_digest, how),
        9 => match &mut r.request_id {
            None => r.request_id = Some(String::new()),
            Some(t) if how % 2 == 0 => mutate_text(t, how / 2),
            Some(_) => r.request_id = None,
        },
        10 => flip(&mut r.request_digest),
        11 => flip(&mut r.prev_hash),
        _ => flip(&mut r.hash),
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn any_single_field_change_is_named(
        drafts in proptest::collection::vec(draft(), 1..24),
        pick in any::<prop::sample::Index>(),
        field in 0u8..13,
        how in any::<u8>(),
        bit in any::<u8>(),
        delta in any::<u64>(),
        signed in any::<bool>(),
    ) {
        let mut chain = Chain::new();
        let mut records: Vec<AuditRecord> = drafts.into_iter().map(|d| chain.append(d).unwrap()).collect();
        let mut frontier = Frontier::new();
        records.iter().for_each(|r| frontier.push(&r.hash));
        let n = records.len() as u64;
        let signer = key(1);
        let cps = if signed { vec![Checkpoint::sign(SHARD, n, frontier.root(), 0, signer.signing_key())] } else { vec![] };
        let keys = [signer.verifying_key()];
        prop_assert!(verify(&records, &cps, &keys).is_ok());

        let i = pick.index(records.len());
        let before = records[i].clone();
        mutate(&mut records[i], field, how, bit, delta);
        prop_assert_ne!(&records[i], &before, "the mutation must change something");
        let err = verify(&records, &cps, &keys).expect_err("a changed record must be detected");
        prop_assert_eq!(err.spot(), Spot::Record(before.seq), "{}", err);
    }
}
