//! The RPC layer on a real tonic server (gRPC health) in this process, with spans exported over
//! OTLP/gRPC to a collector that this test runs on 127.0.0.1. One test per binary: `init`
//! installs the process's global subscriber.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use metamesh_telemetry::{init, inject_trace_context, Metrics, RpcLayer, TelemetryOptions};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::{any_value, KeyValue};
use opentelemetry_proto::tonic::trace::v1::Span;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;
use tracing_opentelemetry::OpenTelemetrySpanExt;

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

fn attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a any_value::Value> {
    attrs.iter().find(|kv| kv.key == key).and_then(|kv| kv.value.as_ref()?.value.as_ref())
}

/// Binds 127.0.0.1:0 and hands the listener to `make`, which spawns the server.
fn spawn_server<F>(make: F) -> SocketAddr
where
    F: FnOnce(tokio_stream::wrappers::TcpListenerStream) -> tokio::task::JoinHandle<()>,
{
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
    make(tokio_stream::wrappers::TcpListenerStream::new(listener));
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpc_spans_continue_the_callers_trace_and_reach_the_collector() {
    // Export every 50 ms instead of every 5 s.
    std::env::set_var("OTEL_BSP_SCHEDULE_DELAY", "50");
    let collector = Collector::default();
    let collector_addr = spawn_server(|incoming| {
        let svc = TraceServiceServer::new(collector.clone());
        tokio::spawn(async move {
            tonic::transport::Server::builder().add_service(svc).serve_with_incoming(incoming).await.unwrap();
        })
    });
    let guard = init(&TelemetryOptions {
        log_filter: "warn".into(),
        otlp_endpoint: Some(format!("http://{collector_addr}")),
        node_id: 7,
        shard_group: "t1".into(),
        service_name: metamesh_telemetry::SERVICE_NAME,
    })
    .unwrap();
    assert!(guard.exporting());

    let metrics = Arc::new(Metrics::new(7, "t1"));
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_service_status("", tonic_health::ServingStatus::Serving).await;
    let layer = RpcLayer::new(metrics.clone());
    let addr = spawn_server(|incoming| {
        tokio::spawn(async move {
            tonic::transport::Server::builder()
                .layer(layer)
                .add_service(health_service)
                .serve_with_incoming(incoming)
                .await
                .unwrap();
        })
    });

    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}")).unwrap().connect().await.unwrap();
    let mut client = HealthClient::new(channel);
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let mut request = tonic::Request::new(HealthCheckRequest { service: String::new() });
    request.metadata_mut().insert("traceparent", format!("00-{trace_id}-{caller_span}-01").parse().unwrap());
    client.check(request).await.unwrap();
    // An unknown service: answered NOT_FOUND in the headers (trailers-only).
    let missing = client.check(HealthCheckRequest { service: "nope".into() }).await.unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);

    let text = metrics.render();
    for line in [
        r#"metamesh_rpc_duration_seconds_count{service="grpc.health.v1.Health",method="Check",code="OK"} 1"#,
        r#"metamesh_rpc_duration_seconds_count{service="grpc.health.v1.Health",method="Check",code="NOT_FOUND"} 1"#,
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
    }

    // The server span arrives at the collector as a child of the caller's span.
    let deadline = Instant::now() + Duration::from_secs(20);
    let (resource, span) = loop {
        let found = collector
            .spans
            .lock()
            .unwrap()
            .iter()
            .find(|(_, s)| hex(&s.trace_id) == trace_id && s.name == "grpc.health.v1.Health/Check")
            .cloned();
        if let Some(found) = found {
            break found;
        }
        assert!(Instant::now() < deadline, "no span of trace {trace_id} reached the collector");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(hex(&span.parent_span_id), caller_span);
    assert_eq!(span.kind, 2, "not a server span: {span:?}");
    assert_eq!(attr(&span.attributes, "rpc.system"), Some(&any_value::Value::StringValue("grpc".into())));
    assert_eq!(attr(&span.attributes, "rpc.method"), Some(&any_value::Value::StringValue("Check".into())));
    assert_eq!(attr(&span.attributes, "rpc.grpc.status_code"), Some(&any_value::Value::IntValue(0)));
    assert_eq!(attr(&resource, "service.name"), Some(&any_value::Value::StringValue("metamesh-node".into())));
    assert_eq!(attr(&resource, "metamesh.node.id"), Some(&any_value::Value::IntValue(7)));

    // Outgoing calls carry the current span's context: same trace, the span as parent.
    let span = tracing::info_span!("outgoing");
    let mut incoming = http::HeaderMap::new();
    incoming.insert("traceparent", format!("00-{trace_id}-{caller_span}-01").parse().unwrap());
    span.set_parent(metamesh_telemetry::extract_trace_context(&incoming)).unwrap();
    let metadata = span.in_scope(|| {
        let mut metadata = tonic::metadata::MetadataMap::new();
        inject_trace_context(&mut metadata);
        metadata
    });
    let traceparent = metadata.get("traceparent").expect("no traceparent injected").to_str().unwrap();
    assert!(traceparent.starts_with(&format!("00-{trace_id}-")), "{traceparent}");
    assert!(!traceparent.contains(caller_span), "the outgoing parent must be the current span: {traceparent}");

    guard.shutdown().await;
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
