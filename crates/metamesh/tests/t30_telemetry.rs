//! Telemetry of real `metamesh node` processes: the Prometheus `/metrics` endpoint scraped
//! over plain HTTP, and spans exported over OTLP/gRPC to a collector run by this test, carrying
//! the trace id of the caller's `traceparent` from the replica called to the leader it
//! forwards to.

mod common;

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use metamesh_proto::v1::admin_service_client::AdminServiceClient;
use metamesh_proto::v1::catalog_service_client::CatalogServiceClient;
use metamesh_proto::v1::{CreateTenantRequest, StatusRequest, TriggerSnapshotRequest};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::{any_value, KeyValue};
use opentelemetry_proto::tonic::trace::v1::Span;
use tonic::transport::Channel;

async fn channel(group: &ProcessGroup, i: usize) -> Channel {
    metamesh_tls::connect(group.nodes[i].client, group.client_tls("alice"), "127.0.0.1").await.unwrap()
}

/// The index (0-based) of the leader, as node 1 reports it.
async fn leader(group: &ProcessGroup) -> usize {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let reply = AdminServiceClient::new(channel(group, 0).await).status(StatusRequest {}).await;
        if let Some(leader) = reply.ok().and_then(|r| r.into_inner().leader_id) {
            return (leader - 1) as usize;
        }
        assert!(Instant::now() < deadline, "no leader elected");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `GET /metrics` over plain HTTP/1.0 with nothing but a socket: what any scraper sees.
fn scrape(addr: SocketAddr) -> Result<String, String> {
    let mut stream = std::net::TcpStream::connect(addr).map_err(|e| e.to_string())?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).map_err(|e| e.to_string())?;
    write!(stream, "GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n").map_err(|e| e.to_string())?;
    let mut response = String::new();
    stream.read_to_string(&mut response).map_err(|e| e.to_string())?;
    let (head, body) = response.split_once("\r\n\r\n").ok_or("no header end")?;
    if !head.starts_with("HTTP/1.0 200") && !head.starts_with("HTTP/1.1 200") {
        return Err(format!("unexpected response: {head}"));
    }
    if !head.to_ascii_lowercase().contains("content-type: application/openmetrics-text") {
        return Err(format!("not OpenMetrics text: {head}"));
    }
    Ok(body.to_owned())
}

/// The value of one series, written exactly as in the exposition (`name{labels}` or `name`).
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
}

/// Scrapes `addr` until `ready` holds for the exposition, which it returns.
async fn scrape_until(addr: SocketAddr, what: &str, ready: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let last = match tokio::task::spawn_blocking(move || scrape(addr)).await.unwrap() {
            Ok(text) if ready(&text) => return text,
            Ok(text) => text,
            Err(e) => e,
        };
        assert!(Instant::now() < deadline, "{what} never showed on {addr}; last scrape:\n{last}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_endpoint_reports_raft_state_rpc_latency_and_snapshot_size() {
    let metrics: Vec<SocketAddr> = (0..3).map(|_| free_addr()).collect();
    let group = ProcessGroup::start_with_env(3, |id| {
        vec![("METAMESH_LISTEN__METRICS".to_owned(), metrics[id as usize - 1].to_string())]
    });
    for i in 0..3 {
        group.wait_serving(i).await;
    }
    let leader = leader(&group).await;
    // A write through a follower: served there, forwarded to the leader. On a loaded machine
    // a new election may start between finding the leader and writing: the follower then
    // answers UNAVAILABLE, and the client retries (the request id makes it one write).
    let via = (leader + 1) % 3;
    let mut catalog = CatalogServiceClient::new(channel(&group, via).await);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let revision = loop {
        let request = CreateTenantRequest { request_id: "t30-1".into(), name: "acme".into(), ..Default::default() };
        match catalog.create_tenant(request).await {
            Ok(reply) => break reply.into_inner().revision,
            Err(s) if s.code() == tonic::Code::Unavailable && std::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(200)).await
            }
            Err(s) => panic!("create_tenant through replica {via}: {s}"),
        }
    };
    assert!(revision >= 1);

    let created =
        r#"metamesh_rpc_duration_seconds_count{service="metamesh.v1.CatalogService",method="CreateTenant",code="OK"}"#;
    let text = scrape_until(metrics[via], "the write", |t| {
        value(t, "metamesh_raft_last_applied_index").is_some_and(|a| a >= revision as f64)
            && value(t, created).is_some()
    })
    .await;
    assert!(value(&text, "metamesh_raft_term").unwrap() >= 1.0, "{text}");
    assert_eq!(value(&text, "metamesh_raft_leader_id"), Some((leader + 1) as f64), "{text}");
    assert_eq!(value(&text, "metamesh_raft_is_leader"), Some(0.0), "{text}");
    assert_eq!(value(&text, "metamesh_raft_voters"), Some(3.0), "{text}");
    assert_eq!(value(&text, created), Some(1.0), "{text}");
    assert!(value(&text, "metamesh_raft_apply_lag_entries").is_some(), "{text}");
    assert!(
        text.contains(&format!(r#"metamesh_node_info{{node_id="{}",shard_group="s1""#, via + 1)),
        "no node info:\n{text}"
    );

    // The leader served the forwarded write on its Raft listener and tracks its followers.
    let forwarded =
        r#"metamesh_rpc_duration_seconds_count{service="metamesh.raft.v1.RaftService",method="Forward",code="OK"}"#;
    let text = scrape_until(metrics[leader], "the leader's state", |t| {
        value(t, "metamesh_raft_is_leader") == Some(1.0)
            && (1..=3).all(|n| {
                value(t, &format!(r#"metamesh_raft_matched_index{{node_id="{n}"}}"#))
                    .is_some_and(|m| m >= revision as f64)
            })
    })
    .await;
    assert!(value(&text, forwarded).is_some_and(|n| n >= 1.0), "no Forward sample on the leader:\n{text}");

    // A snapshot: its file's size and last index show on the next scrape.
    assert_eq!(value(&text, "metamesh_raft_snapshot_size_bytes"), Some(0.0), "{text}");
    let reply = AdminServiceClient::new(channel(&group, via).await)
        .trigger_snapshot(TriggerSnapshotRequest { wait: true })
        .await
        .unwrap()
        .into_inner();
    assert!(reply.snapshot_index.is_some_and(|i| i >= revision), "{reply:?}");
    let text = scrape_until(metrics[via], "the snapshot", |t| {
        value(t, "metamesh_raft_snapshot_size_bytes").is_some_and(|b| b > 0.0)
            && value(t, "metamesh_raft_snapshot_index").is_some_and(|i| i >= revision as f64)
    })
    .await;
    assert!(text.ends_with("# EOF\n"), "{text}");
}

/// A span as received, with the attributes of the resource (node) that sent it.
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

fn node_id(resource: &[KeyValue]) -> Option<i64> {
    match resource.iter().find(|kv| kv.key == "metamesh.node.id")?.value.as_ref()?.value.as_ref()? {
        any_value::Value::IntValue(id) => Some(*id),
        _ => None,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otlp_export_carries_the_callers_trace_to_the_leader() {
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

    // Export batches every 100 ms instead of every 5 s.
    let group = ProcessGroup::start_with_env(3, |_| {
        vec![
            ("OTEL_EXPORTER_OTLP_ENDPOINT".to_owned(), format!("http://{collector_addr}")),
            ("OTEL_BSP_SCHEDULE_DELAY".to_owned(), "100".to_owned()),
        ]
    });
    for i in 0..3 {
        group.wait_serving(i).await;
    }
    let leader = leader(&group).await;
    let via = (leader + 1) % 3;

    let trace_id = "0af7651916cd43dd8448eb211c80319c";
    let caller_span = "b7ad6b7169203331";
    let mut request = tonic::Request::new(CreateTenantRequest {
        request_id: "t30-2".into(),
        name: "acme".into(),
        ..Default::default()
    });
    request.metadata_mut().insert("traceparent", format!("00-{trace_id}-{caller_span}-01").parse().unwrap());
    CatalogServiceClient::new(channel(&group, via).await).create_tenant(request).await.unwrap();

    // The replica called opened a server span under the caller's span; the leader's server span
    // for the forwarded write belongs to the same trace.
    let deadline = Instant::now() + Duration::from_secs(20);
    let (served, forwarded) = loop {
        let spans = collector.spans.lock().unwrap().clone();
        let of_trace: Vec<&Received> = spans.iter().filter(|(_, s)| hex(&s.trace_id) == trace_id).collect();
        let find = |name: &str| of_trace.iter().find(|(_, s)| s.name == name).map(|x| (*x).clone());
        let served = find("metamesh.v1.CatalogService/CreateTenant");
        let forwarded = find("metamesh.raft.v1.RaftService/Forward");
        if let (Some(served), Some(forwarded)) = (served, forwarded) {
            break (served, forwarded);
        }
        let names: Vec<(Option<i64>, String)> = of_trace.iter().map(|(r, s)| (node_id(r), s.name.clone())).collect();
        assert!(Instant::now() < deadline, "spans of trace {trace_id} received: {names:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(hex(&served.1.parent_span_id), caller_span, "{:?}", served.1);
    assert_eq!(node_id(&served.0), Some(via as i64 + 1));
    assert_eq!(node_id(&forwarded.0), Some(leader as i64 + 1));
    assert!(
        served.0.iter().any(|kv| kv.key == "service.name"
            && kv.value.as_ref().and_then(|v| v.value.as_ref())
                == Some(&any_value::Value::StringValue("metamesh-node".into()))),
        "{:?}",
        served.0
    );

    drop(group);
    let _ = stop_collector.send(());
    let _ = collector_task.await;
}
