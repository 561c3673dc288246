//! Exit codes and error reports.
//!
//! Scripts need to tell apart "the node said no" (fix the request), "you called me wrong" (fix
//! the command line or the certificate paths) and "nobody answered" (retry later, or elsewhere),
//! so each failure is classified once, here, from the error chain:
//!
//! | exit | meaning |
//! |---|---|
//! | 1 | the node refused or failed the request (any gRPC status), or a check came out negative |
//! | 2 | usage or configuration error: bad arguments, a missing or unreadable file (clap uses 2 too) |
//! | 3 | the node is unreachable: address not resolvable, connection refused, TLS handshake failed |
//!
//! A refusal prints the gRPC code, the message and every `ErrorDetails` entry, because the
//! detail's `field` is what tells the user which argument to fix.

use std::fmt;
use std::process::ExitCode;

use metamesh_proto::v1;
use prost::Message;
use serde_json::json;

use crate::output::Output;

/// The node refused or failed the request.
pub const EXIT_REFUSED: u8 = 1;
/// Bad arguments or configuration.
pub const EXIT_USAGE: u8 = 2;
/// The node could not be reached.
pub const EXIT_UNREACHABLE: u8 = 3;

/// Marks an error as the user's: bad arguments, a missing file (exit 2).
#[derive(Debug)]
pub struct Usage(pub String);

impl fmt::Display for Usage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

/// Marks an error as a connectivity failure (exit 3).
#[derive(Debug)]
pub struct Unreachable(pub String);

impl fmt::Display for Unreachable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Unreachable {}

/// A usage error with this message.
pub fn usage(message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(Usage(message.into()))
}

/// The exit code of a failed command.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    if err.downcast_ref::<Usage>().is_some() {
        return EXIT_USAGE;
    }
    if err.downcast_ref::<Unreachable>().is_some() {
        return EXIT_UNREACHABLE;
    }
    match err.downcast_ref::<tonic::Status>().and_then(std::error::Error::source) {
        // A status made by tonic from a transport error, not an answer from the node. With TLS
        // 1.3 the node checks our certificate after the handshake, so a refused certificate
        // surfaces here, on the first call.
        Some(transport) if rustls_cause(transport).is_some() => EXIT_USAGE,
        Some(_) => EXIT_UNREACHABLE,
        // The node's own answer, including its UNAVAILABLE ("no leader, retry").
        None => EXIT_REFUSED,
    }
}

/// The rustls error somewhere in `err`'s chain, as text: the node answered, TLS refused.
///
/// rustls reports through an `io::Error` whose *payload* is the `rustls::Error`, and
/// `io::Error::source()` skips its payload, so each link is also opened as an `io::Error`.
pub fn rustls_cause(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut cause = Some(err);
    while let Some(e) = cause {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return Some(tls.to_string());
        }
        let payload = e.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref());
        if let Some(tls) = payload.and_then(|p| p.downcast_ref::<rustls::Error>()) {
            return Some(tls.to_string());
        }
        cause = e.source();
    }
    None
}

/// A status's message, followed by its transport cause when tonic made it from one
/// ("transport error" alone says nothing).
fn status_message(status: &tonic::Status) -> String {
    let mut causes = Vec::new();
    let mut cause = std::error::Error::source(status);
    while let Some(e) = cause {
        causes.push(e);
        cause = e.source();
    }
    let mut message = status.message().to_owned();
    if !causes.is_empty() {
        message = format!("{message}: {}", chain_text(causes.into_iter()));
    }
    if let Some(tls) = std::error::Error::source(status).and_then(rustls_cause) {
        if !message.contains(&tls) {
            message.push_str(&format!(": {tls}"));
        }
    }
    message
}

/// Prints `err` on stderr (as text, or as one JSON document with `--output json`) and returns
/// the exit code.
pub fn report(err: &anyhow::Error, output: Output) -> ExitCode {
    let status = err.chain().find_map(|c| c.downcast_ref::<tonic::Status>());
    // Context added on the way up ("batch 3 (lines 1001-1500)"), outermost first.
    let context: Vec<String> =
        err.chain().take_while(|c| c.downcast_ref::<tonic::Status>().is_none()).map(|c| c.to_string()).collect();
    match (status, output) {
        (Some(status), Output::Table) => {
            let prefix = context.iter().map(|c| format!("{c}: ")).collect::<String>();
            eprintln!("error: {prefix}{}: {}", code_name(status.code()), status_message(status));
            // With TLS 1.3 a node checks our certificate after the handshake: a refusal arrives
            // as an alert during the first call, or just as a closed connection.
            match exit_code(err) {
                EXIT_USAGE => eprintln!("  tls was refused during the call: check that --cert is issued by the mesh ca"),
                EXIT_UNREACHABLE => eprintln!(
                    "  the connection failed during the call; if every call fails so, check that --cert is issued by the mesh ca"
                ),
                _ => {}
            }
            for d in details(status) {
                let field = if d.field.is_empty() { String::new() } else { format!("field `{}`: ", d.field) };
                // The first detail usually repeats the status message; say it once.
                let message = if d.message == status.message() { String::new() } else { format!(": {}", d.message) };
                if !field.is_empty() || !message.is_empty() {
                    eprintln!("  {field}{}{message}", d.code);
                }
            }
        }
        (Some(status), Output::Json) => {
            let details: Vec<_> = details(status)
                .iter()
                .map(|d| json!({"code": d.code, "field": d.field, "message": d.message}))
                .collect();
            let doc = json!({"error": {
                "code": code_name(status.code()),
                "message": status_message(status),
                "context": context,
                "details": details,
            }});
            eprintln!("{doc}");
        }
        (None, Output::Table) => eprintln!("error: {}", chain_text(err.chain())),
        (None, Output::Json) => eprintln!("{}", json!({"error": {"message": chain_text(err.chain())}})),
    }
    ExitCode::from(exit_code(err))
}

/// An error chain as `outer: inner: …`, leaving out links that only repeat the one before
/// (hyper and tonic wrap "transport error" and io errors twice over).
fn chain_text<'a>(chain: impl Iterator<Item = &'a (dyn std::error::Error + 'static)>) -> String {
    let mut parts: Vec<String> = Vec::new();
    for link in chain {
        let text = link.to_string();
        match parts.last_mut() {
            Some(last) if last.contains(&text) => {}
            // A link that restates the one before and adds to it replaces it.
            Some(last) if text.starts_with(last.as_str()) => *last = text,
            _ => parts.push(text),
        }
    }
    parts.join(": ")
}

/// The `ErrorDetails` entries a node attached to a status; none when it attached nothing
/// decodable (statuses made by tonic itself carry no details).
pub fn details(status: &tonic::Status) -> Vec<v1::ErrorDetail> {
    if status.details().is_empty() {
        return Vec::new();
    }
    v1::ErrorDetails::decode(status.details()).map(|d| d.errors).unwrap_or_default()
}

/// The canonical gRPC name of a code, as in the proto docs and grpcurl (`INVALID_ARGUMENT`).
pub fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "OK",
        Cancelled => "CANCELLED",
        Unknown => "UNKNOWN",
        InvalidArgument => "INVALID_ARGUMENT",
        DeadlineExceeded => "DEADLINE_EXCEEDED",
        NotFound => "NOT_FOUND",
        AlreadyExists => "ALREADY_EXISTS",
        PermissionDenied => "PERMISSION_DENIED",
        ResourceExhausted => "RESOURCE_EXHAUSTED",
        FailedPrecondition => "FAILED_PRECONDITION",
        Aborted => "ABORTED",
        OutOfRange => "OUT_OF_RANGE",
        Unimplemented => "UNIMPLEMENTED",
        Internal => "INTERNAL",
        Unavailable => "UNAVAILABLE",
        DataLoss => "DATA_LOSS",
        Unauthenticated => "UNAUTHENTICATED",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn classification_follows_the_chain() {
        assert_eq!(exit_code(&usage("bad")), EXIT_USAGE);
        let wrapped = Err::<(), _>(usage("bad")).context("while reading").unwrap_err();
        assert_eq!(exit_code(&wrapped), EXIT_USAGE);
        let unreachable = Err::<(), _>(anyhow::anyhow!("refused")).context(Unreachable("down".into())).unwrap_err();
        assert_eq!(exit_code(&unreachable), EXIT_UNREACHABLE);
        let refused = Err::<(), _>(tonic::Status::invalid_argument("no")).context("batch 2").unwrap_err();
        assert_eq!(exit_code(&refused), EXIT_REFUSED);
        // The node's own UNAVAILABLE (no leader) is an answer, not a lost connection.
        assert_eq!(exit_code(&anyhow::Error::new(tonic::Status::unavailable("no leader"))), EXIT_REFUSED);
        assert_eq!(exit_code(&anyhow::anyhow!("other")), EXIT_REFUSED);
    }

    #[test]
    fn chains_drop_repeated_links() {
        let err = anyhow::anyhow!("connection refused")
            .context("transport error: connection refused")
            .context("transport error")
            .context("node a:1 is unreachable");
        assert_eq!(chain_text(err.chain()), "node a:1 is unreachable: transport error: connection refused");
    }

    #[test]
    fn details_decode_and_tolerate_absence() {
        let d = v1::ErrorDetails {
            errors: vec![v1::ErrorDetail { code: "invalid_argument".into(), field: "urn".into(), message: "m".into() }],
        };
        let status = tonic::Status::with_details(tonic::Code::InvalidArgument, "m", d.encode_to_vec().into());
        assert_eq!(details(&status)[0].field, "urn");
        assert!(details(&tonic::Status::internal("x")).is_empty());
        assert_eq!(code_name(tonic::Code::FailedPrecondition), "FAILED_PRECONDITION");
    }
}
