//! A whole mesh in one process: shard groups of real replicas (`metamesh_node::run_node`, each
//! with its own SQLite files, Raft over mTLS on 127.0.0.1) and a router
//! (`metamesh_router::run_router`), from one directory holding everything — the CA and every
//! certificate, the shard audit keys, the policy directory, the mesh map and each node's data.
//!
//! `metamesh dev` runs one; tests start one per test and stop groups or single replicas to see
//! what the router and the outbox make of it. Starting again on the same directory reuses its
//! certificates, ports and data (the layout is kept in `DIR/layout.json`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use metamesh_config::{NodeConfig, RouterConfig};
use metamesh_tls::{write_bundle, Credentials, MeshCa, Role};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The trust domain of local meshes: the repository's example policies name it.
pub const TRUST_DOMAIN: &str = "metamesh.local";

/// What to run.
#[derive(Clone)]
pub struct MeshSpec {
    /// Shard groups: id and the tenants it owns.
    pub groups: Vec<(String, Vec<String>)>,
    /// Replicas per group.
    pub replicas: u64,
    /// Client principals (names) to issue certificates for, e.g. `alice` →
    /// `spiffe://metamesh.local/client/alice`.
    pub clients: Vec<String>,
    /// Audit checkpoint period; `None` for no shard keys and no checkpoints.
    pub checkpoint_every_ms: Option<u64>,
    /// Writes the policy directory (called with `DIR/policies` on every start).
    pub policy: Arc<dyn Fn(&Path) + Send + Sync>,
    /// The router's `[openlineage] default_tenant`: the tenant of job namespaces nothing maps.
    pub openlineage_default_tenant: Option<String>,
}

impl MeshSpec {
    /// `groups` of `replicas` each, the repository's example policies as they are.
    pub fn new(groups: &[(&str, &[&str])], replicas: u64) -> MeshSpec {
        MeshSpec {
            groups: groups.iter().map(|(g, ts)| (g.to_string(), ts.iter().map(|t| t.to_string()).collect())).collect(),
            replicas,
            clients: Vec::new(),
            checkpoint_every_ms: None,
            policy: Arc::new(|dir: &Path| crate::policy::write_policy(dir, "", &[])),
            openlineage_default_tenant: None,
        }
    }
}

/// Ports and names, kept so that a restart finds the same mesh.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Layout {
    pub router_grpc: SocketAddr,
    pub router_http: SocketAddr,
    pub nodes: Vec<NodeLayout>,
}

/// One replica's place in the layout.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NodeLayout {
    pub group: String,
    pub id: u64,
    pub client: SocketAddr,
    pub raft: SocketAddr,
}

struct Running {
    stop: oneshot::Sender<()>,
    task: JoinHandle<anyhow::Result<()>>,
}

/// A running local mesh.
pub struct LocalMesh {
    pub dir: PathBuf,
    pub spec: MeshSpec,
    pub layout: Layout,
    pub ca: MeshCa,
    nodes: BTreeMap<(String, u64), Running>,
    router: Option<Running>,
}

/// A port that is free now, below Linux's ephemeral range (32768+): outgoing connections of
/// the replicas already running cannot take it before its listener binds.
/// Never the same port twice in one process: meshes started side by side (parallel tests)
/// would otherwise be handed a port free at the time, for both.
fn free_addr() -> anyhow::Result<SocketAddr> {
    use std::hash::{BuildHasher, Hasher};
    static HANDED_OUT: std::sync::Mutex<std::collections::BTreeSet<u16>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    for _ in 0..1000 {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(std::process::id() as u64);
        let port = 20_000 + (h.finish() % 12_000) as u16;
        if !HANDED_OUT.lock().expect("ports poisoned").insert(port) {
            continue;
        }
        if let Ok(listener) = std::net::TcpListener::bind(("127.0.0.1", port)) {
            return Ok(listener.local_addr()?);
        }
    }
    anyhow::bail!("no free port found in 20000..32000")
}

impl LocalMesh {
    /// Starts (or restarts) the mesh in `dir` and waits until every group has a leader that
    /// owns its tenants and the router answers.
    pub async fn start(dir: &Path, spec: MeshSpec) -> anyhow::Result<LocalMesh> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let dir = dir.canonicalize()?;
        let certs = dir.join("certs");
        let ca = if certs.join("ca.pem").exists() {
            MeshCa::from_pem(
                &std::fs::read_to_string(certs.join("ca.pem"))?,
                &std::fs::read_to_string(certs.join("ca.key"))?,
            )?
        } else {
            MeshCa::generate(TRUST_DOMAIN)?
        };
        let layout_path = dir.join("layout.json");
        let layout: Layout = if layout_path.exists() {
            serde_json::from_slice(&std::fs::read(&layout_path)?).context("layout.json")?
        } else {
            let mut nodes = Vec::new();
            for (group, _) in &spec.groups {
                for id in 1..=spec.replicas {
                    nodes.push(NodeLayout { group: group.clone(), id, client: free_addr()?, raft: free_addr()? });
                }
            }
            let layout = Layout { router_grpc: free_addr()?, router_http: free_addr()?, nodes };
            std::fs::write(&layout_path, serde_json::to_vec_pretty(&layout)?)?;
            layout
        };
        let validity = Duration::from_secs(365 * 24 * 3600);
        let issue = |role: Role, name: &str| -> anyhow::Result<()> {
            if !certs.join(format!("{name}.pem")).exists() {
                write_bundle(&certs, &ca, name, &ca.issue(role, name, validity)?)?;
            }
            Ok(())
        };
        issue(Role::Router, "router")?;
        for n in &layout.nodes {
            issue(Role::Node, &format!("{}-{}", n.group, n.id))?;
        }
        for c in &spec.clients {
            issue(Role::Client, c)?;
        }
        // Every client also gets a bearer API key for the router's HTTPS API: the key in
        // `certs/<name>.apikey` (made once), its hash in `api_keys.toml` for the router.
        let mut key_file =
            String::from("# API keys of the router's HTTPS API, as SHA-256 hashes (made by LocalMesh).\n");
        for c in &spec.clients {
            let key = LocalMesh::api_key_path(&dir, c);
            if !key.exists() {
                let mut bytes = [0u8; 24];
                rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut bytes);
                let text: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
                write_private(&key, &format!("mm_{text}"))?;
            }
            let text = std::fs::read_to_string(&key)?;
            key_file.push_str(&format!(
                "\n[keys.{c:?}]\nsha256 = {:?}\nprincipal = {:?}\n",
                metamesh_router::http::hash_key(text.trim()),
                LocalMesh::principal(c)
            ));
        }
        std::fs::write(dir.join("api_keys.toml"), key_file)?;
        let keys = dir.join("keys");
        if spec.checkpoint_every_ms.is_some() {
            std::fs::create_dir_all(&keys)?;
            for (group, _) in &spec.groups {
                let key = keys.join(format!("{group}.audit.key"));
                if !key.exists() {
                    let k = metamesh_audit::ShardKey::generate();
                    k.save(&key)?;
                    std::fs::write(keys.join(format!("{group}.audit.pub.pem")), k.public_key_pem())?;
                }
            }
        }
        (spec.policy)(&dir.join("policies"));
        // The mesh map.
        let mut map = String::from("version = 1\n");
        for (group, tenants) in &spec.groups {
            let replicas: Vec<String> = layout
                .nodes
                .iter()
                .filter(|n| &n.group == group)
                .map(|n| format!("{{ id = {}, grpc = \"{}\" }}", n.id, n.client))
                .collect();
            let tenants: Vec<String> = tenants.iter().map(|t| format!("{t:?}")).collect();
            map.push_str(&format!("\n[[groups]]\nid = {group:?}\ntenants = [{}]\n", tenants.join(", ")));
            if spec.checkpoint_every_ms.is_some() {
                map.push_str(&format!("audit_key = \"keys/{group}.audit.pub.pem\"\n"));
            }
            map.push_str(&format!("replicas = [{}]\n", replicas.join(", ")));
        }
        std::fs::write(dir.join("mesh.toml"), map)?;

        let mut mesh = LocalMesh { dir, spec, layout, ca, nodes: BTreeMap::new(), router: None };
        let all: Vec<(String, u64)> = mesh.layout.nodes.iter().map(|n| (n.group.clone(), n.id)).collect();
        for (group, id) in all {
            mesh.start_node(&group, id)?;
        }
        for (group, tenants) in mesh.spec.groups.clone() {
            mesh.ensure_tenants(&group, &tenants).await?;
        }
        mesh.start_router()?;
        mesh.wait_for_router().await?;
        Ok(mesh)
    }

    /// Where client `name`'s bearer API key is kept.
    pub fn api_key_path(dir: &Path, name: &str) -> PathBuf {
        dir.join("certs").join(format!("{name}.apikey"))
    }

    /// Client `name`'s bearer API key for the router's HTTPS API.
    pub fn api_key(&self, name: &str) -> anyhow::Result<String> {
        let path = LocalMesh::api_key_path(&self.dir, name);
        Ok(std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?.trim().to_owned())
    }

    /// The configuration of replica `id` of `group`.
    pub fn node_config(&self, group: &str, id: u64) -> anyhow::Result<NodeConfig> {
        let me = self.node(group, id)?;
        let certs = self.dir.join("certs");
        let name = format!("{group}-{id}");
        let peers: Vec<String> = self
            .layout
            .nodes
            .iter()
            .filter(|n| n.group == group)
            .map(|n| format!("{{ id = {}, raft_addr = \"{}\", client_addr = \"{}\" }}", n.id, n.raft, n.client))
            .collect();
        let audit = match self.spec.checkpoint_every_ms {
            Some(every) => format!(
                "[audit]\nkey = {:?}\ncheckpoint_every_ms = {every}\n",
                self.dir.join("keys").join(format!("{group}.audit.key"))
            ),
            None => String::new(),
        };
        let text = format!(
            "[node]\nid = {id}\nshard_group = {group:?}\ndata_dir = {:?}\n\
             [listen]\nclient = \"{}\"\nraft = \"{}\"\nmetrics = \"off\"\n\
             [tls]\nca = {:?}\ncert = {:?}\nkey = {:?}\ntrust_domain = {TRUST_DOMAIN:?}\n\
             [policy]\ndir = {:?}\n[mesh]\nmap = {:?}\n[telemetry]\nlog = \"warn\"\n{audit}\
             peers = [{}]\n",
            self.dir.join("data").join(&name),
            me.client,
            me.raft,
            certs.join("ca.pem"),
            certs.join(format!("{name}.pem")),
            certs.join(format!("{name}.key")),
            self.dir.join("policies"),
            self.dir.join("mesh.toml"),
            peers.join(", "),
        );
        // `peers` must come before any table: put it first.
        let text = match text.rsplit_once("peers = [") {
            Some((head, tail)) => format!("peers = [{tail}{head}"),
            None => text,
        };
        Ok(NodeConfig::load_from(&text, [])?)
    }

    /// The router's configuration.
    pub fn router_config(&self) -> anyhow::Result<RouterConfig> {
        let certs = self.dir.join("certs");
        let text = format!(
            "[router]\nid = \"router\"\nmesh = {:?}\nhealth_every_ms = 500\n\
             [listen]\ngrpc = \"{}\"\nhttp = \"{}\"\nmetrics = \"off\"\n\
             [tls]\nca = {:?}\ncert = {:?}\nkey = {:?}\ntrust_domain = {TRUST_DOMAIN:?}\n\
             [policy]\ndir = {:?}\n[telemetry]\nlog = \"warn\"\n\
             [witness]\nstate = {:?}\nevery_ms = {}\n\
             [http]\napi_keys = {:?}\n",
            self.dir.join("mesh.toml"),
            self.layout.router_grpc,
            self.layout.router_http,
            certs.join("ca.pem"),
            certs.join("router.pem"),
            certs.join("router.key"),
            self.dir.join("policies"),
            self.dir.join("witness.json"),
            self.spec.checkpoint_every_ms.map_or(60_000, |ms| (ms / 2).max(50)),
            self.dir.join("api_keys.toml"),
        );
        let text = match &self.spec.openlineage_default_tenant {
            Some(t) => format!("{text}[openlineage]\ndefault_tenant = {t:?}\n"),
            None => text,
        };
        Ok(RouterConfig::load_from(&text, [])?)
    }

    fn node(&self, group: &str, id: u64) -> anyhow::Result<&NodeLayout> {
        self.layout
            .nodes
            .iter()
            .find(|n| n.group == group && n.id == id)
            .ok_or_else(|| anyhow::anyhow!("no replica {id} in group {group}"))
    }

    /// Starts replica `id` of `group` (again).
    pub fn start_node(&mut self, group: &str, id: u64) -> anyhow::Result<()> {
        let config = self.node_config(group, id)?;
        let (stop, stopped) = oneshot::channel::<()>();
        // Each replica runs on a runtime of its own, on a blocking-pool thread: like a process
        // of its own, and its future need not be `Send`.
        let name = format!("{group}-{id}");
        let task = tokio::task::spawn_blocking(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            let result = runtime.block_on(metamesh_node::run_node(config, async move {
                let _ = stopped.await;
            }));
            if let Err(e) = &result {
                eprintln!("replica {name} stopped: {e:#}");
            }
            result
        });
        self.nodes.insert((group.to_owned(), id), Running { stop, task });
        Ok(())
    }

    /// Stops replica `id` of `group` (a clean shutdown; its data stays).
    pub async fn stop_node(&mut self, group: &str, id: u64) {
        if let Some(r) = self.nodes.remove(&(group.to_owned(), id)) {
            let _ = r.stop.send(());
            match r.task.await {
                Ok(Err(e)) => tracing::warn!(group, id, error = %e, "replica stopped with an error"),
                Err(e) => tracing::warn!(group, id, error = %e, "replica task failed"),
                Ok(Ok(())) => {}
            }
        }
    }

    /// Stops every replica of `group`.
    pub async fn stop_group(&mut self, group: &str) {
        for id in 1..=self.spec.replicas {
            self.stop_node(group, id).await;
        }
    }

    /// Starts every replica of `group` again and waits for a leader.
    pub async fn start_group(&mut self, group: &str) -> anyhow::Result<()> {
        for id in 1..=self.spec.replicas {
            if !self.nodes.contains_key(&(group.to_owned(), id)) {
                self.start_node(group, id)?;
            }
        }
        let tenants = self.spec.groups.iter().find(|(g, _)| g == group).map(|(_, t)| t.clone()).unwrap_or_default();
        self.ensure_tenants(group, &tenants).await
    }

    fn start_router(&mut self) -> anyhow::Result<()> {
        let config = self.router_config()?;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(metamesh_router::run_router(config, async move {
            let _ = stopped.await;
        }));
        self.router = Some(Running { stop, task });
        Ok(())
    }

    /// TLS client configuration for client `name` (issued on first use).
    pub fn client_tls(&self, name: &str) -> Arc<rustls::ClientConfig> {
        let certs = self.dir.join("certs");
        if !certs.join(format!("{name}.pem")).exists() {
            let issued = self.ca.issue(Role::Client, name, Duration::from_secs(24 * 3600)).expect("issue");
            write_bundle(&certs, &self.ca, name, &issued).expect("write bundle");
        }
        let creds = Credentials::load(
            &certs.join("ca.pem"),
            &certs.join(format!("{name}.pem")),
            &certs.join(format!("{name}.key")),
        )
        .expect("credentials");
        creds.client_config().expect("client config")
    }

    /// The principal of client `name`.
    pub fn principal(name: &str) -> String {
        format!("spiffe://{TRUST_DOMAIN}/client/{name}")
    }

    /// A channel to the router as client `name`.
    pub async fn router(&self, name: &str) -> tonic::transport::Channel {
        metamesh_tls::connect(self.layout.router_grpc, self.client_tls(name), "127.0.0.1").await.expect("router")
    }

    /// A channel to replica `id` of `group` with the given TLS identity (none while it is down).
    pub async fn replica(
        &self,
        group: &str,
        id: u64,
        tls: Arc<rustls::ClientConfig>,
    ) -> Option<tonic::transport::Channel> {
        let addr = self.node(group, id).ok()?.client;
        metamesh_tls::connect(addr, tls, "127.0.0.1").await.ok()
    }

    /// A channel to a replica as one of its own group's nodes (the mesh-admin grants of the
    /// tests do not apply to nodes; use this for internal calls).
    pub fn node_tls(&self, group: &str, id: u64) -> Arc<rustls::ClientConfig> {
        let certs = self.dir.join("certs");
        let name = format!("{group}-{id}");
        Credentials::load(&certs.join("ca.pem"), &certs.join(format!("{name}.pem")), &certs.join(format!("{name}.key")))
            .expect("credentials")
            .client_config()
            .expect("client config")
    }

    /// Creates `tenants` on `group` as the repository policies' mesh admin (`client/ops`),
    /// retrying until the group has a leader.
    async fn ensure_tenants(&self, group: &str, tenants: &[String]) -> anyhow::Result<()> {
        use metamesh_proto::v1;
        let admin = self.client_tls("ops");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        for tenant in tenants {
            let mut last = String::new();
            'retry: loop {
                for n in self.layout.nodes.iter().filter(|n| n.group == group) {
                    if self.nodes.get(&(group.to_owned(), n.id)).is_some_and(|r| r.task.is_finished()) {
                        anyhow::bail!("replica {} of group {group} stopped while starting (see its log)", n.id);
                    }
                    let ch = match metamesh_tls::connect(n.client, admin.clone(), "127.0.0.1").await {
                        Ok(ch) => ch,
                        Err(e) => {
                            last = format!("replica {}: {e}", n.id);
                            continue;
                        }
                    };
                    let mut client = v1::catalog_service_client::CatalogServiceClient::new(ch);
                    let request = v1::CreateTenantRequest {
                        request_id: format!("local-mesh:create:{tenant}"),
                        name: tenant.clone(),
                        ..Default::default()
                    };
                    match client.create_tenant(request).await {
                        Ok(_) => break 'retry,
                        Err(s) if s.code() == tonic::Code::AlreadyExists => break 'retry,
                        Err(s) => last = s.to_string(),
                    }
                }
                if tokio::time::Instant::now() > deadline {
                    anyhow::bail!("group {group} did not create tenant {tenant} within 60 s: {last}");
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        Ok(())
    }

    async fn wait_for_router(&self) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(ch) = metamesh_tls::connect(self.layout.router_grpc, self.client_tls("ops"), "127.0.0.1").await {
                let mut health = tonic_health::pb::health_client::HealthClient::new(ch);
                if health.check(tonic_health::pb::HealthCheckRequest { service: String::new() }).await.is_ok() {
                    return Ok(());
                }
            }
            if tokio::time::Instant::now() > deadline {
                anyhow::bail!("the router did not answer within 20 s");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops the router and every replica.
    pub async fn shutdown(mut self) {
        if let Some(r) = self.router.take() {
            let _ = r.stop.send(());
            let _ = r.task.await;
        }
        let keys: Vec<(String, u64)> = self.nodes.keys().cloned().collect();
        for (g, id) in keys {
            self.stop_node(&g, id).await;
        }
    }
}

/// Writes a secret readable by its owner only.
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    #[cfg(unix)]
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options.open(path).with_context(|| format!("creating {}", path.display()))?;
    file.write_all(text.as_bytes())?;
    Ok(())
}
