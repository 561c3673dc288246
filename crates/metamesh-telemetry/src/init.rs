//! The process's `tracing` subscriber: logs on stderr, spans to an OTLP collector.

use std::io::IsTerminal;
use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry::KeyValue;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// The OpenTelemetry `service.name` of a node.
pub const SERVICE_NAME: &str = "metamesh-node";

/// Environment variable holding the filter of the spans exported over OTLP (env-filter syntax,
/// default `info`). Separate from the log filter, so quiet logs do not mean missing traces.
pub const TRACE_FILTER_ENV: &str = "METAMESH_TRACE_FILTER";

/// How long shutting down may take to flush the spans still queued.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// What [`init`] needs to know.
#[derive(Clone, Debug)]
pub struct TelemetryOptions {
    /// `tracing` env-filter directives for the log lines on stderr.
    pub log_filter: String,
    /// OTLP/gRPC collector URL (`http://host:4317`); `None` exports no spans.
    pub otlp_endpoint: Option<String>,
    /// The node's id, exported as the `metamesh.node.id` resource attribute.
    pub node_id: u64,
    /// The node's shard group, exported as `metamesh.shard_group` (`router/<id>` for a router).
    pub shard_group: String,
    /// The exported `service.name`: [`SERVICE_NAME`] for nodes, `metamesh-router` for routers.
    pub service_name: &'static str,
}

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("invalid log filter {filter:?}: {source}")]
    LogFilter { filter: String, source: tracing_subscriber::filter::ParseError },
    #[error("invalid {TRACE_FILTER_ENV} {filter:?}: {source}")]
    TraceFilter { filter: String, source: tracing_subscriber::filter::ParseError },
    #[error(
        "otlp endpoint {0}: https is not supported yet (the exporter is built without TLS); \
         point it at a collector on plain http, such as a local agent that forwards over TLS"
    )]
    HttpsUnsupported(String),
    #[error("otlp exporter for {endpoint}: {source}")]
    Exporter { endpoint: String, source: opentelemetry_otlp::ExporterBuildError },
    #[error("installing the tracing subscriber: {0}")]
    Install(#[from] tracing_subscriber::util::TryInitError),
}

/// Keeps the span exporter alive; flushes queued spans and stops it on [`shutdown`] or drop.
///
/// [`shutdown`]: TelemetryGuard::shutdown
#[must_use = "dropping the guard stops span export"]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl TelemetryGuard {
    /// Whether spans are exported over OTLP.
    pub fn exporting(&self) -> bool {
        self.provider.is_some()
    }

    /// Flushes the queued spans and stops the exporter, off the async workers: the flush blocks
    /// until the export (driven by this runtime's tasks) completes or times out.
    pub async fn shutdown(mut self) {
        if let Some(provider) = self.provider.take() {
            let _ = tokio::task::spawn_blocking(move || shutdown_provider(&provider)).await;
        }
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            // Not called from async code on purpose (use `shutdown`); a plain thread keeps this
            // from blocking the caller's runtime worker while the exporter needs it.
            let _ = std::thread::spawn(move || shutdown_provider(&provider)).join();
        }
    }
}

fn shutdown_provider(provider: &SdkTracerProvider) {
    if let Err(e) = provider.shutdown_with_timeout(SHUTDOWN_TIMEOUT) {
        eprintln!("warning: flushing spans at shutdown: {e}");
    }
}

/// Installs the global subscriber: stderr logs filtered by `options.log_filter`, plus the
/// OpenTelemetry layer when `options.otlp_endpoint` is set (spans filtered by
/// [`TRACE_FILTER_ENV`], default `info`). Must run inside a Tokio runtime when exporting: the
/// exporter's gRPC channel runs on it.
///
/// The batch span processor takes its settings from the standard `OTEL_BSP_*` variables
/// (`OTEL_BSP_SCHEDULE_DELAY` in milliseconds, default 5000), the sampler from
/// `OTEL_TRACES_SAMPLER` (default: follow the caller's sampling decision, sample new traces).
pub fn init(options: &TelemetryOptions) -> Result<TelemetryGuard, TelemetryError> {
    let log_filter = EnvFilter::builder()
        .parse(&options.log_filter)
        .map_err(|source| TelemetryError::LogFilter { filter: options.log_filter.clone(), source })?;
    let logs = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_filter(log_filter);

    let Some(endpoint) = options.otlp_endpoint.as_deref().filter(|e| !e.is_empty()) else {
        tracing_subscriber::registry().with(logs).try_init()?;
        return Ok(TelemetryGuard { provider: None });
    };
    if endpoint.get(..8).is_some_and(|scheme| scheme.eq_ignore_ascii_case("https://")) {
        return Err(TelemetryError::HttpsUnsupported(endpoint.to_owned()));
    }
    let trace_filter = std::env::var(TRACE_FILTER_ENV).ok().filter(|f| !f.is_empty()).unwrap_or_else(|| "info".into());
    let trace_filter = EnvFilter::builder()
        .parse(&trace_filter)
        .map_err(|source| TelemetryError::TraceFilter { filter: trace_filter.clone(), source })?;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .build()
        .map_err(|source| TelemetryError::Exporter { endpoint: endpoint.to_owned(), source })?;
    let resource = Resource::builder()
        .with_service_name(options.service_name)
        .with_attributes([
            KeyValue::new("service.instance.id", format!("{}-{}", options.shard_group, options.node_id)),
            KeyValue::new("service.version", env!("CARGO_PKG_VERSION")),
            KeyValue::new("metamesh.node.id", options.node_id as i64),
            KeyValue::new("metamesh.shard_group", options.shard_group.clone()),
        ])
        .build();
    let provider = SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource).build();
    let spans = tracing_opentelemetry::layer().with_tracer(provider.tracer("metamesh")).with_filter(trace_filter);
    tracing_subscriber::registry().with(logs).with(spans).try_init()?;
    Ok(TelemetryGuard { provider: Some(provider) })
}
