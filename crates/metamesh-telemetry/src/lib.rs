//! Telemetry of a metamesh process: logs, traces and metrics.
//!
//! - [`init`] installs the process's `tracing` subscriber: a log layer on stderr filtered by the
//!   log filter, and, when an OTLP endpoint is configured, an OpenTelemetry layer whose spans go
//!   to that collector over OTLP/gRPC (batched). It returns a [`TelemetryGuard`] that flushes and
//!   shuts the exporter down.
//! - [`RpcLayer`] wraps a tonic server: one span per RPC, continuing the caller's W3C trace
//!   context (`traceparent`/`tracestate` headers), and one latency sample per RPC in
//!   [`Metrics`], labelled by service, method and gRPC status code.
//! - [`Metrics`] is the Prometheus registry of a node (RPC latency, Raft state fed as
//!   [`RaftSample`]s, snapshot size read at scrape time); [`serve_metrics`] serves it on
//!   `GET /metrics` over plain HTTP.
//! - [`inject_trace_context`] writes the current span's trace context into outgoing gRPC
//!   metadata, so a call to another replica continues the same trace.
//!
//! This crate knows neither openraft nor the node's configuration: the binary maps both onto
//! the plain types here. See `docs/telemetry.md` for what an operator sees.

mod init;
mod metrics;
mod propagation;
mod rpc;
mod server;

pub use init::{init, TelemetryError, TelemetryGuard, TelemetryOptions, SERVICE_NAME, TRACE_FILTER_ENV};
pub use metrics::{Metrics, RaftSample, OPENMETRICS_CONTENT_TYPE};
pub use propagation::{extract_trace_context, inject_trace_context};
pub use rpc::{RpcLayer, RpcService};
pub use server::serve_metrics;
