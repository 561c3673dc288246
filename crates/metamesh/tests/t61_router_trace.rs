//! One trace across processes: a lineage query sent to a real `metamesh router` process with the
//! caller's W3C `traceparent` is exported over OTLP by the router and by both `metamesh node`
//! processes it fans out to (two shard groups of one replica each), all under the caller's
//! trace id, each node's span a child of a router span.

#[path = "common/child.rs"]
mod child;
mod common;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use child::ChildGuard;
use common::{bin, certs, free_addr};
use metamesh_proto::v1;
use metamesh_proto::v1::catalog_service_client::CatalogServiceClient;
use metamesh_proto::v1::lineage_service_client::LineageServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::{any_value, KeyValue};
use opentelemetry_proto::tonic::trace::v1::Span;
use tonic::transport::Channel;

const TRUST_DOMAIN: &str = "test.mesh";
const X: &str = "mm://a/dataset/x";
const R: &str = "mm://b/run/r";
const EXPAND: &str = "metamesh.v1.LineageService/Expand";

/// A span as received, with the attributes of the resource (process) that sent it.
type Received = (Vec<KeyValue>, Span);

/// Every span received.
#[derive(Clone, Default)]
struct Collector {
    spans: Arc<Mutex<Vec<Received>>>,
}

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut spans = self.spans.lock().unwrap();
        for resource_spans in request.into_inner().resource_spans {
            let resource = resource_spans.resource.map(|r| r.attributes).unwrap_or_default();
            for scope in resource_spans.scope_spans {
                spans.extend(scope.spans.into_iter().map(|s| (resource.clone(), s)));
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse { partial_success: None }))
    }
}

/// A string attribute of a resource: `metamesh.shard_group` is the group of a node and
/// `router/<id>` for a router.
fn attr(resource: &[KeyValue], key: &str) -> Option<String> {
    match resource.iter().find(|kv| kv.key == key)?.value.as_ref()?.value.as_ref()? {
        any_value::Value::StringValue(s) => Some(s.clone()),
        any_value::Value::IntValue(i) => Some(i.to_string()),
        _ => None,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The processes of the mesh; all killed when dropped.
struct Mesh {
    dir: tempfile::TempDir,
    router: SocketAddr,
    nodes: Vec<(String, SocketAddr, ChildGuard)>,
    router_proc: ChildGuard,
}

impl Mesh {
    fn logs(&self) -> String {
        let mut out = String::new();
        for (g, _, p) in &self.nodes {
            out.push_str(&format!("--- node {g}\n{}\n", p.log_text()));
        }
        out.push_str(&format!("--- router\n{}\n", self.router_proc.log_text()));
        out
    }

    fn tls(&self) -> Arc<rustls::ClientConfig> {
        let c = self.dir.path().join("certs");
        metamesh_tls::Credentials::load(&c.join("ca.pem"), &c.join("alice.pem"), &c.join("alice.key"))
            .unwrap()
            .client_config()
            .unwrap()
    }

    async fn channel(&self, addr: SocketAddr) -> Result<Channel, String> {
        metamesh_tls::connect(addr, self.tls(), "127.0.0.1").await.map_err(|e| e.to_string())
    }
}

fn spawn(name: &str, args: &[&str], config: &Path, env: &[(String, String)], log: &Path) -> ChildGuard {
    let mut command = Command::new(bin());
    command.args(args).arg("--config").arg(config).env("METAMESH_LOG", "info").envs(env.iter().cloned());
    ChildGuard::spawn(name, command, log)
}

/// Groups `g1` (tenant `a`) and `g2` (tenant `b`) of one replica each, and router `r1` logging
/// with `router_log`, every process exporting spans to `collector`.
fn start_mesh(collector: SocketAddr, router_log: &str) -> Mesh {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let c = d.join("certs");
    certs(
        &c,
        &["--node", "g1-1", "--node", "g2-1", "--router", "r1", "--client", "alice", "--trust-domain", TRUST_DOMAIN],
    );
    // The repository's model and roles; alice holds every role everywhere.
    let policies = d.join("policies");
    metamesh_testkit::policy::write_policy(
        &policies,
        &metamesh_testkit::policy::all_rights(&[format!("spiffe://{TRUST_DOMAIN}/client/alice")]),
        &[],
    );
    let groups = [("g1", "a", free_addr(), free_addr()), ("g2", "b", free_addr(), free_addr())];
    let mut map = String::from("version = 1\n");
    for (g, tenant, client, _) in &groups {
        map.push_str(&format!(
            "\n[[groups]]\nid = \"{g}\"\ntenants = [\"{tenant}\"]\nreplicas = [{{ id = 1, grpc = \"{client}\" }}]\n"
        ));
    }
    let map_path = d.join("mesh.toml");
    std::fs::write(&map_path, map).unwrap();

    // Spans exported every 100 ms instead of every 5 s.
    let env = vec![
        ("OTEL_EXPORTER_OTLP_ENDPOINT".to_owned(), format!("http://{collector}")),
        ("OTEL_BSP_SCHEDULE_DELAY".to_owned(), "100".to_owned()),
    ];
    let mut nodes = Vec::new();
    for (g, _, client, raft) in groups {
        let config = d.join(format!("{g}.toml"));
        std::fs::write(
            &config,
            format!(
                "[node]\nid = 1\nshard_group = \"{g}\"\ndata_dir = \"{data}\"\n\n\
                 [listen]\nclient = \"{client}\"\nraft = \"{raft}\"\nmetrics = \"off\"\n\n\
                 [tls]\nca = \"{c}/ca.pem\"\ncert = \"{c}/{g}-1.pem\"\nkey = \"{c}/{g}-1.key\"\n\
                 trust_domain = \"{TRUST_DOMAIN}\"\n\n\
                 [policy]\ndir = \"{policy}\"\n\n\
                 [mesh]\nmap = \"{map}\"\n\n\
                 [raft]\nheartbeat_ms = 50\nelection_timeout_min_ms = 300\nelection_timeout_max_ms = 600\n",
                data = d.join(format!("data-{g}")).display(),
                c = c.display(),
                policy = policies.display(),
                map = map_path.display(),
            ),
        )
        .unwrap();
        let proc = spawn(&format!("node {g}"), &["node"], &config, &env, &d.join(format!("{g}.log")));
        nodes.push((g.to_owned(), client, proc));
    }
    let router = free_addr();
    let config = d.join("router.toml");
    std::fs::write(
        &config,
        format!(
            "[router]\nid = \"r1\"\nmesh = \"{map}\"\nhealth_every_ms = 200\n\n\
             [listen]\ngrpc = \"{router}\"\nhttp = \"off\"\nmetrics = \"off\"\n\n\
             [tls]\nca = \"{c}/ca.pem\"\ncert = \"{c}/r1.pem\"\nkey = \"{c}/r1.key\"\n\
             trust_domain = \"{TRUST_DOMAIN}\"\n\n\
             [policy]\ndir = \"{policy}\"\n",
            map = map_path.display(),
            c = c.display(),
            policy = policies.display(),
        ),
    )
    .unwrap();
    let mut router_env = env.clone();
    router_env.push(("METAMESH_LOG".to_owned(), router_log.to_owned()));
    let router_proc = spawn("router r1", &["router"], &config, &router_env, &d.join("router.log"));
    Mesh { dir, router, nodes, router_proc }
}

/// Retries `call` (a fresh channel to `addr` each time) for up to 20 s, until it succeeds or
/// fails with something other than unreachable / no leader yet.
async fn retry<T, F, Fut>(mesh: &Mesh, addr: SocketAddr, what: &str, call: F) -> T
where
    F: Fn(Channel) -> Fut,
    Fut: std::future::Future<Output = Result<T, tonic::Status>>,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let last = match mesh.channel(addr).await {
            Ok(ch) => match call(ch).await {
                Ok(t) => return t,
                Err(s) if matches!(s.code(), tonic::Code::Unavailable | tonic::Code::DeadlineExceeded) => s.to_string(),
                Err(s) => panic!("{what}: {s}\n{}", mesh.logs()),
            },
            Err(e) => e,
        };
        assert!(Instant::now() < deadline, "{what}: never succeeded, last: {last}\n{}", mesh.logs());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_spans_the_router_and_both_shards_of_a_lineage_query() {
    lineage_query_trace("info").await;
}

/// Debug logs on the router (the log filter enables its debug spans, the trace filter, still
/// `info`, does not export them) must not cut the trace at the router.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_trace_survives_debug_logs_on_the_router() {
    lineage_query_trace("info,metamesh_router=debug").await;
}

async fn lineage_query_trace(router_log: &str) {
    // A plain-h2c OTLP/gRPC collector on 127.0.0.1.
    let collector = Collector::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let collector_addr = listener.local_addr().unwrap();
    let (stop_collector, stopped) = tokio::sync::oneshot::channel::<()>();
    let collector_task = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(collector.clone()))
            .serve_with_incoming_shutdown(tokio_stream::wrappers::TcpListenerStream::new(listener), async {
                let _ = stopped.await;
            }),
    );

    let mesh = start_mesh(collector_addr, router_log);
    let router = mesh.router;

    // Tenants, entities and the cross-shard edge, all through the router: it forwards each to
    // the group owning the tenant (the edge to `b`, which owns the run its endpoint is).
    for tenant in ["a", "b"] {
        retry(&mesh, router, &format!("create tenant {tenant}"), |ch| async move {
            match CatalogServiceClient::new(ch)
                .create_tenant(v1::CreateTenantRequest {
                    request_id: format!("t61-tenant-{tenant}"),
                    name: tenant.into(),
                    ..Default::default()
                })
                .await
            {
                Err(s) if s.code() == tonic::Code::AlreadyExists => Ok(()),
                other => other.map(drop),
            }
        })
        .await;
    }
    for (urn, status) in [(X, ""), (R, "COMPLETED")] {
        retry(&mesh, router, &format!("put {urn}"), |ch| async move {
            CatalogServiceClient::new(ch)
                .put_entity(v1::PutEntityRequest {
                    request_id: format!("t61-put-{urn}"),
                    urn: urn.into(),
                    status: status.into(),
                    properties_json: "{}".into(),
                    ..Default::default()
                })
                .await
        })
        .await;
    }
    retry(&mesh, router, "add the edge", |ch| async move {
        LineageServiceClient::new(ch)
            .add_edges(v1::AddEdgesRequest {
                request_id: "t61-edge".into(),
                tenant: String::new(),
                edges: vec![v1::EdgeSpec {
                    from_urn: X.into(),
                    to_urn: R.into(),
                    kind: "consumed".into(),
                    ..Default::default()
                }],
            })
            .await
    })
    .await;

    // Upstream from the run: `b`'s shard walks to x and reports it as its remote frontier,
    // which the router then expands on `a`'s shard.
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let mut request = tonic::Request::new(v1::ExpandRequest {
        urns: vec![R.into()],
        direction: v1::Direction::Upstream as i32,
        max_depth: 5,
        ..Default::default()
    });
    request.metadata_mut().insert("traceparent", format!("00-{trace_id}-{caller_span}-01").parse().unwrap());
    let reply = LineageServiceClient::new(mesh.channel(router).await.unwrap())
        .expand(request)
        .await
        .unwrap_or_else(|s| panic!("expand: {s}\n{}", mesh.logs()))
        .into_inner();
    let urns: HashSet<&str> = reply.nodes.iter().map(|n| n.urn.as_str()).collect();
    assert_eq!(urns, HashSet::from([X, R]), "{reply:#?}");
    assert_eq!(reply.edges.len(), 1, "{reply:#?}");
    assert!(!reply.partial, "{reply:#?}");

    // The router's server span continues the caller's; each shard's Expand span belongs to the
    // same trace, under a span of the router.
    let deadline = Instant::now() + Duration::from_secs(20);
    let (router_span, shard_spans, of_trace) = loop {
        let spans = collector.spans.lock().unwrap().clone();
        let of_trace: Vec<Received> = spans.into_iter().filter(|(_, s)| hex(&s.trace_id) == trace_id).collect();
        let by = |group: &str| {
            of_trace
                .iter()
                .find(|(r, s)| s.name == EXPAND && attr(r, "metamesh.shard_group").as_deref() == Some(group))
                .cloned()
        };
        if let (Some(router), Some(g1), Some(g2)) = (by("router/r1"), by("g1"), by("g2")) {
            break (router, [g1, g2], of_trace);
        }
        let seen: Vec<(Option<String>, String)> =
            of_trace.iter().map(|(r, s)| (attr(r, "metamesh.shard_group"), s.name.clone())).collect();
        assert!(Instant::now() < deadline, "spans of trace {trace_id} received: {seen:?}\n{}", mesh.logs());
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(hex(&router_span.1.parent_span_id), caller_span, "{:?}", router_span.1);
    let router_span_ids: HashSet<String> = of_trace
        .iter()
        .filter(|(r, _)| attr(r, "metamesh.shard_group").as_deref() == Some("router/r1"))
        .map(|(_, s)| hex(&s.span_id))
        .collect();
    for (resource, span) in &shard_spans {
        let parent = hex(&span.parent_span_id);
        assert!(
            router_span_ids.contains(&parent),
            "the span of {:?} has parent {parent}, not a router span ({router_span_ids:?})",
            attr(resource, "metamesh.shard_group")
        );
        assert_eq!(attr(resource, "metamesh.node.id").as_deref(), Some("1"));
    }
    // Three processes: the router's resource is its own.
    assert_eq!(attr(&router_span.0, "service.instance.id").as_deref(), Some("router/r1-0"), "{:?}", router_span.0);
    assert_eq!(attr(&router_span.0, "service.name").as_deref(), Some("metamesh-router"));
    assert_eq!(attr(&shard_spans[0].0, "service.name").as_deref(), Some("metamesh-node"));
    assert_ne!(attr(&shard_spans[0].0, "service.instance.id"), attr(&shard_spans[1].0, "service.instance.id"));

    drop(mesh);
    let _ = stop_collector.send(());
    let _ = collector_task.await;
}
