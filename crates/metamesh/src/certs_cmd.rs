//! `metamesh certs`: a mesh CA and certificates for nodes, routers and clients, so nobody needs
//! openssl. Reuses the CA in `--dir` if one is there.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use metamesh_tls::{write_bundle, CertRequest, MeshCa, Role};

#[derive(Args)]
pub struct CertsArgs {
    /// Where `ca.pem`, `ca.key` and `<name>.pem`/`<name>.key` are written.
    #[arg(long, default_value = "certs")]
    dir: PathBuf,
    /// The mesh's trust domain (SPIFFE IDs are `spiffe://<trust-domain>/<role>/<name>`).
    #[arg(long, default_value = "metamesh.local")]
    trust_domain: String,
    /// Node certificates to issue (server and client use; SANs localhost and 127.0.0.1).
    #[arg(long = "node", value_name = "NAME")]
    nodes: Vec<String>,
    /// Router certificates to issue.
    #[arg(long = "router", value_name = "NAME")]
    routers: Vec<String>,
    /// Client certificates to issue, one per principal.
    #[arg(long = "client", value_name = "NAME")]
    clients: Vec<String>,
    /// Extra DNS names or IPs for node and router certificates.
    #[arg(long = "hostname", value_name = "HOST")]
    hostnames: Vec<String>,
    /// Audit signing keys to create, one per shard group: `<group>.audit.key` (every replica of
    /// the group loads it as `audit.key`) and `<group>.audit.pub.pem` (for verifiers).
    #[arg(long = "shard-key", value_name = "GROUP")]
    shard_keys: Vec<String>,
    /// Validity of issued certificates, in days.
    #[arg(long, default_value_t = 365)]
    days: u64,
}

pub fn run(args: CertsArgs) -> anyhow::Result<()> {
    if args.nodes.is_empty() && args.routers.is_empty() && args.clients.is_empty() && args.shard_keys.is_empty() {
        anyhow::bail!("nothing to issue: name at least one --node, --router, --client or --shard-key");
    }
    std::fs::create_dir_all(&args.dir).with_context(|| format!("creating {}", args.dir.display()))?;
    for group in &args.shard_keys {
        let key_path = args.dir.join(format!("{group}.audit.key"));
        let pub_path = args.dir.join(format!("{group}.audit.pub.pem"));
        if key_path.exists() {
            println!("audit key {} exists; kept", key_path.display());
            continue;
        }
        let key = metamesh_audit::ShardKey::generate();
        key.save(&key_path).with_context(|| format!("writing {}", key_path.display()))?;
        std::fs::write(&pub_path, key.public_key_pem()).with_context(|| format!("writing {}", pub_path.display()))?;
        println!("audit   {:<24} {}  (public: {})", group, key_path.display(), pub_path.display());
    }
    if args.nodes.is_empty() && args.routers.is_empty() && args.clients.is_empty() {
        return Ok(());
    }
    let ca_cert = args.dir.join("ca.pem");
    let ca_key = args.dir.join("ca.key");
    let ca = if ca_cert.exists() && ca_key.exists() {
        let ca = MeshCa::from_pem(
            &std::fs::read_to_string(&ca_cert).with_context(|| format!("reading {}", ca_cert.display()))?,
            &std::fs::read_to_string(&ca_key).with_context(|| format!("reading {}", ca_key.display()))?,
        )?;
        println!("using the CA in {} (trust domain {})", args.dir.display(), ca.trust_domain());
        ca
    } else {
        let ca = MeshCa::generate(&args.trust_domain)?;
        println!("created a CA for trust domain {} in {}", ca.trust_domain(), args.dir.display());
        ca
    };
    let validity = Duration::from_secs(args.days * 24 * 3600);
    let roles = [(Role::Node, &args.nodes), (Role::Router, &args.routers), (Role::Client, &args.clients)];
    for (role, names) in roles {
        for name in names {
            let mut request = CertRequest::new(role, name, validity);
            if role != Role::Client {
                for h in &args.hostnames {
                    request = request.hostname(h);
                }
            }
            let issued = ca.issue_with(&request)?;
            let paths = write_bundle(&args.dir, &ca, name, &issued)?;
            println!("{:<7} {:<24} {}  ({})", role.as_str(), name, paths.cert.display(), ca.spiffe_id(role, name));
        }
    }
    Ok(())
}
