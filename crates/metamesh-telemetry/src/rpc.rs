//! One span and one latency sample per gRPC request, as a tower layer for tonic servers.
//!
//! The span (`rpc.system=grpc`, `rpc.service`, `rpc.method`, `rpc.grpc.status_code`, named
//! `<service>/<method>` in OpenTelemetry, kind server) continues the trace of the request's W3C
//! `traceparent`/`tracestate` headers. It stays open until the gRPC status is known: at once for
//! an error answered in the headers, otherwise when the response body ends with its trailers,
//! so streaming calls are measured whole. A response dropped before its status (the client went
//! away) counts as `CANCELLED`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Instant;

use http_body::{Body, Frame, SizeHint};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::metrics::{code_name, Metrics};
use crate::propagation::extract_trace_context;

/// Label value standing for any service or method a request named that the server does not
/// have: clients cannot grow the label set by inventing paths.
const UNKNOWN: &str = "unknown";

/// Wraps every request of a tonic server in an RPC span and records its latency in
/// [`Metrics`]. Apply with `tonic::transport::Server::builder().layer(RpcLayer::new(..))`.
#[derive(Clone)]
pub struct RpcLayer {
    metrics: Arc<Metrics>,
    /// `service/method` names whose spans are at debug level instead of info.
    quiet: Arc<[&'static str]>,
}

impl RpcLayer {
    pub fn new(metrics: Arc<Metrics>) -> RpcLayer {
        RpcLayer { metrics, quiet: Arc::new([]) }
    }

    /// Opens the spans of these `service/method`s at debug level, so the default `info`
    /// filters keep them out of logs and traces (Raft heartbeats arrive many times a second).
    /// Their latency is recorded all the same.
    pub fn with_debug_spans(mut self, methods: &[&'static str]) -> RpcLayer {
        self.quiet = methods.into();
        self
    }
}

impl<S> tower_layer::Layer<S> for RpcLayer {
    type Service = RpcService<S>;

    fn layer(&self, inner: S) -> RpcService<S> {
        RpcService { inner, layer: self.clone() }
    }
}

/// The service [`RpcLayer`] makes.
#[derive(Clone)]
pub struct RpcService<S> {
    inner: S,
    layer: RpcLayer,
}

macro_rules! rpc_span {
    ($level:expr, $name:expr, $service:expr, $method:expr) => {
        tracing::span!(
            $level,
            "grpc request",
            otel.name = %$name,
            otel.kind = "server",
            otel.status_code = tracing::field::Empty,
            rpc.system = "grpc",
            rpc.service = %$service,
            rpc.method = %$method,
            rpc.grpc.status_code = tracing::field::Empty,
        )
    };
}

impl<S, ReqBody, ResBody> tower_service::Service<http::Request<ReqBody>> for RpcService<S>
where
    S: tower_service::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ResBody: Body,
{
    type Response = http::Response<ObservedBody<ResBody>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let (service, method) = split_path(request.uri().path());
        let name = format!("{service}/{method}");
        let span = if self.layer.quiet.contains(&name.as_str()) {
            rpc_span!(tracing::Level::DEBUG, name, service, method)
        } else {
            rpc_span!(tracing::Level::INFO, name, service, method)
        };
        // Fails only when no OpenTelemetry layer is installed or the span is disabled: then
        // there is no trace to continue.
        let _ = span.set_parent(extract_trace_context(request.headers()));
        let mut observer = Observer {
            metrics: self.layer.metrics.clone(),
            service,
            method,
            span: Some(span.clone()),
            start: Instant::now(),
        };
        let future = span.in_scope(|| self.inner.call(request));
        Box::pin(
            async move {
                match future.await {
                    Ok(response) => {
                        // A call that fails before any message answers with its status in the
                        // headers ("trailers-only"): it is over now.
                        if let Some(code) = grpc_status(response.headers()) {
                            observer.finish(code);
                        }
                        Ok(response.map(|inner| ObservedBody { inner, observer }))
                    }
                    Err(e) => {
                        observer.finish(tonic::Code::Unknown);
                        Err(e)
                    }
                }
            }
            .instrument(span),
        )
    }
}

/// `/package.Service/Method` → (`package.Service`, `Method`).
fn split_path(path: &str) -> (String, String) {
    match path.strip_prefix('/').and_then(|p| p.split_once('/')) {
        Some((service, method)) if !service.is_empty() && !method.is_empty() && !method.contains('/') => {
            (service.to_owned(), method.to_owned())
        }
        _ => (UNKNOWN.to_owned(), UNKNOWN.to_owned()),
    }
}

fn grpc_status(headers: &http::HeaderMap) -> Option<tonic::Code> {
    let value = headers.get("grpc-status")?.to_str().ok()?;
    Some(value.parse::<i32>().map_or(tonic::Code::Unknown, tonic::Code::from_i32))
}

/// Closes an RPC's span and records its latency, exactly once.
struct Observer {
    metrics: Arc<Metrics>,
    service: String,
    method: String,
    /// `None` once finished.
    span: Option<tracing::Span>,
    start: Instant,
}

impl Observer {
    fn finish(&mut self, code: tonic::Code) {
        let Some(span) = self.span.take() else { return };
        span.record("rpc.grpc.status_code", code as i32);
        if is_server_error(code) {
            span.record("otel.status_code", "ERROR");
        }
        let (service, method) = if code == tonic::Code::Unimplemented {
            (UNKNOWN, UNKNOWN)
        } else {
            (self.service.as_str(), self.method.as_str())
        };
        self.metrics.observe_rpc(service, method, code, self.start.elapsed());
        tracing::debug!(parent: &span, code = code_name(code), "rpc finished");
    }
}

impl Drop for Observer {
    fn drop(&mut self) {
        self.finish(tonic::Code::Cancelled);
    }
}

/// The OpenTelemetry semantic conventions mark a server span as failed only for the codes
/// that mean the server is at fault, not for a caller's mistake such as `NOT_FOUND`.
fn is_server_error(code: tonic::Code) -> bool {
    use tonic::Code::*;
    matches!(code, Unknown | DeadlineExceeded | Unimplemented | Internal | Unavailable | DataLoss)
}

pin_project_lite::pin_project! {
    /// A response body that finishes its RPC's [`Observer`] when the trailers carrying the gRPC
    /// status go out (or the body ends or is dropped without them).
    pub struct ObservedBody<B> {
        #[pin]
        inner: B,
        observer: Observer,
    }
}

impl<B: Body> Body for ObservedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let this = self.project();
        let frame = ready!(this.inner.poll_frame(cx));
        match &frame {
            Some(Ok(frame)) => {
                if let Some(trailers) = frame.trailers_ref() {
                    this.observer.finish(grpc_status(trailers).unwrap_or(tonic::Code::Unknown));
                }
            }
            Some(Err(_)) => this.observer.finish(tonic::Code::Internal),
            None => this.observer.finish(tonic::Code::Unknown),
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_into_service_and_method() {
        let split = |p: &str| split_path(p);
        assert_eq!(
            split("/metamesh.v1.CatalogService/PutEntity"),
            ("metamesh.v1.CatalogService".into(), "PutEntity".into())
        );
        for bad in ["/", "", "/x", "/x/", "//m", "/a/b/c", "no-slash"] {
            assert_eq!(split(bad), (UNKNOWN.into(), UNKNOWN.into()), "{bad:?}");
        }
    }

    #[test]
    fn grpc_status_header_parses() {
        let mut h = http::HeaderMap::new();
        assert_eq!(grpc_status(&h), None);
        h.insert("grpc-status", "5".parse().unwrap());
        assert_eq!(grpc_status(&h), Some(tonic::Code::NotFound));
        h.insert("grpc-status", "x".parse().unwrap());
        assert_eq!(grpc_status(&h), Some(tonic::Code::Unknown));
    }
}
