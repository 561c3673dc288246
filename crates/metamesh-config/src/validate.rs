//! Rules that types alone do not express: ranges, formats, and relations between keys. Each
//! failure names the key, where its value came from, and the value found.

use std::collections::BTreeMap;
use std::fmt::Display;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::path::Path;

use crate::error::ConfigError;
use crate::schema::{NodeConfig, MAX_READERS};
use crate::tree::{origin_of, Node};

/// Longest DNS label, and so longest shard group name.
const MAX_LABEL_LEN: usize = 63;

/// Longest SPIFFE trust domain.
const MAX_TRUST_DOMAIN_LEN: usize = 255;

/// Checks the deserialized configuration; `tree` tells where each value came from.
pub(crate) fn validate(config: &NodeConfig, tree: &Node) -> Result<(), ConfigError> {
    let invalid =
        |key: &str, reason: String| ConfigError::Invalid { key: key.to_owned(), origin: origin_of(tree, key), reason };
    // Names another key in a message, with where its value came from.
    let other = |key: &str, value: &dyn Display| format!("{key} = {value}{}", origin_of(tree, key));

    let NodeConfig { node, listen, tls, peers, raft, store, policy, telemetry, audit, mesh: _ } = config;

    if node.id == 0 {
        return Err(invalid("node.id", "must be at least 1, found 0".to_owned()));
    }
    if let Err(reason) = dns_label(&node.shard_group) {
        return Err(invalid("node.shard_group", format!("{reason}, found {:?}", node.shard_group)));
    }
    for (key, path) in [
        ("node.data_dir", &node.data_dir),
        ("tls.ca", &tls.ca),
        ("tls.cert", &tls.cert),
        ("tls.key", &tls.key),
        ("policy.dir", &policy.dir),
    ] {
        non_empty_path(path).map_err(|reason| invalid(key, reason))?;
    }

    let listeners = [
        ("listen.client", Some(listen.client)),
        ("listen.raft", Some(listen.raft)),
        ("listen.metrics", listen.metrics),
    ];
    for (i, (key, addr)) in listeners.iter().enumerate() {
        let Some(addr) = addr.filter(|a| a.port() != 0) else { continue };
        if let Some((earlier, _)) = listeners[..i].iter().find(|(_, a)| *a == Some(addr)) {
            return Err(invalid(key, format!("must differ from {}, found {addr}", other(earlier, &addr))));
        }
    }

    if let Err(reason) = trust_domain(&tls.trust_domain) {
        return Err(invalid("tls.trust_domain", format!("{reason}, found {:?}", tls.trust_domain)));
    }

    let mut seen: BTreeMap<u64, usize> = BTreeMap::new();
    for (i, peer) in peers.iter().enumerate() {
        if peer.id == 0 {
            return Err(invalid(&format!("peers[{i}].id"), "must be at least 1, found 0".to_owned()));
        }
        if let Some(first) = seen.insert(peer.id, i) {
            let reason = format!("duplicate peer id {}, also used by peers[{first}]", peer.id);
            return Err(invalid(&format!("peers[{i}].id"), reason));
        }
        for (field, addr) in [("raft_addr", &peer.raft_addr), ("client_addr", &peer.client_addr)] {
            if let Err(reason) = host_port(addr) {
                return Err(invalid(&format!("peers[{i}].{field}"), format!("{reason}, found {addr:?}")));
            }
        }
    }

    if raft.heartbeat_ms == 0 {
        return Err(invalid("raft.heartbeat_ms", "must be at least 1, found 0".to_owned()));
    }
    if raft.election_timeout_min_ms <= raft.heartbeat_ms {
        let reason = format!(
            "must be greater than {}, found {}",
            other("raft.heartbeat_ms", &raft.heartbeat_ms),
            raft.election_timeout_min_ms
        );
        return Err(invalid("raft.election_timeout_min_ms", reason));
    }
    if raft.election_timeout_max_ms <= raft.election_timeout_min_ms {
        let reason = format!(
            "must be greater than {}, found {}",
            other("raft.election_timeout_min_ms", &raft.election_timeout_min_ms),
            raft.election_timeout_max_ms
        );
        return Err(invalid("raft.election_timeout_max_ms", reason));
    }
    for (key, value) in
        [("raft.snapshot_every", raft.snapshot_every), ("raft.max_payload_entries", raft.max_payload_entries)]
    {
        if value == 0 {
            return Err(invalid(key, "must be at least 1, found 0".to_owned()));
        }
    }

    if !(1..=MAX_READERS).contains(&store.readers) {
        return Err(invalid(
            "store.readers",
            format!("expected an integer from 1 to {MAX_READERS}, found {}", store.readers),
        ));
    }

    if let Some(key) = &audit.key {
        non_empty_path(key).map_err(|reason| invalid("audit.key", reason))?;
    }
    if audit.checkpoint_every_ms < 100 {
        return Err(invalid(
            "audit.checkpoint_every_ms",
            format!("must be at least 100, found {}", audit.checkpoint_every_ms),
        ));
    }
    if let Err(e) = tracing_subscriber::EnvFilter::builder().parse(&telemetry.log) {
        return Err(invalid("telemetry.log", format!("not a valid log filter ({e}), found {:?}", telemetry.log)));
    }
    if let Some(url) = &telemetry.otlp_endpoint {
        if let Err(reason) = http_url(url) {
            // The value itself may carry credentials; the reason says enough to find the mistake.
            return Err(invalid("telemetry.otlp_endpoint", reason.to_owned()));
        }
    }
    Ok(())
}

pub(crate) fn non_empty_path(path: &Path) -> Result<(), String> {
    if path.as_os_str().is_empty() {
        return Err("must not be empty".to_owned());
    }
    Ok(())
}

/// `[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?`, the rule tenants follow too.
pub(crate) fn dns_label(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("must not be empty");
    }
    if name.len() > MAX_LABEL_LEN {
        return Err("expected a DNS label of at most 63 characters");
    }
    if !name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
        return Err("expected a DNS label: lowercase letters, digits and '-' only");
    }
    if name.starts_with('-') || name.ends_with('-') {
        return Err("expected a DNS label: must not start or end with '-'");
    }
    Ok(())
}

/// A SPIFFE trust domain: lowercase letters, digits, '.', '-' and '_'.
fn trust_domain(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("must not be empty");
    }
    if name.len() > MAX_TRUST_DOMAIN_LEN {
        return Err("expected at most 255 characters");
    }
    if !name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'_')) {
        return Err("expected a SPIFFE trust domain: lowercase letters, digits, '.', '-' and '_' only");
    }
    Ok(())
}

/// `host:port` as a peer dials it: a DNS name, an IPv4 address or a bracketed IPv6 address, and a
/// port from 1 to 65535.
fn host_port(addr: &str) -> Result<(), &'static str> {
    const SHAPE: &str = "expected host:port such as node-2.s1.internal:7401 or [::1]:7401";
    if addr.parse::<SocketAddr>().is_ok_and(|a| a.port() != 0) {
        return Ok(());
    }
    let Some((host, port)) = addr.rsplit_once(':') else {
        return Err(SHAPE);
    };
    if !port.parse::<u16>().is_ok_and(|p| p != 0) {
        return Err("expected a port from 1 to 65535 after the last ':'");
    }
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return inner.parse::<Ipv6Addr>().map(|_| ()).map_err(|_| "expected an IPv6 address between '[' and ']'");
    }
    if host.parse::<IpAddr>().is_ok() {
        return Ok(());
    }
    let labels_ok = !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= MAX_LABEL_LEN
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    if !labels_ok {
        return Err(SHAPE);
    }
    Ok(())
}

/// An `http://` or `https://` URL with a host.
fn http_url(url: &str) -> Result<(), &'static str> {
    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"));
    match rest {
        Some(rest) if !rest.is_empty() && !rest.starts_with('/') => Ok(()),
        Some(_) => Err("expected a host after the scheme"),
        None => Err("expected a URL starting with http:// or https://"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_shapes() {
        for ok in ["10.0.0.2:7401", "node-2.s1.internal:7401", "localhost:1", "[::1]:7401", "n2:65535"] {
            assert_eq!(host_port(ok), Ok(()), "{ok}");
        }
        for bad in ["10.0.0.2", "node-2:0", "node-2:70000", ":7401", "[::zz]:7401", "a b:7401", "-x:7401", "a..b:1"] {
            assert!(host_port(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn dns_labels() {
        assert!(dns_label("s1").is_ok());
        assert!(dns_label(&"a".repeat(63)).is_ok());
        for bad in ["", "S1", "-s1", "s1-", "s_1", "s.1", &"a".repeat(64)] {
            assert!(dns_label(bad).is_err(), "{bad}");
        }
    }
}
