//! Who is calling: the one function every handler runs first.
//!
//! The principal comes from the verified client certificate (`metamesh_tls` put a `PeerInfo` into
//! the request). A router calls on behalf of its own callers and names them in the
//! [`PRINCIPAL_HEADER`] metadata; only a peer whose certificate says *router* may do so, since
//! the header would otherwise let any client act as anyone. The authorization layer (`authz`)
//! runs the same function before any handler.

use metamesh_core::limits::MAX_SHORT_BYTES;
use metamesh_tls::{Identity, PeerRole};
use tonic::{Request, Status};

/// Metadata a router sets to the principal it forwards.
pub const PRINCIPAL_HEADER: &str = "x-metamesh-principal";

/// Metadata a follower sets, on UNAVAILABLE, to the leader's address (where to retry).
pub const LEADER_HEADER: &str = "x-metamesh-leader";

/// The authenticated caller of one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// Who the request is for: recorded as `created_by`/`updated_by`, keyed for idempotency and,
    /// later, checked against the policy.
    pub principal: String,
    /// The peer that sent the request (the router, when the principal was forwarded): kept for
    /// logs and for policies about the transport.
    pub peer: Identity,
    /// Whether the principal was forwarded by a router rather than read from the certificate.
    pub forwarded: bool,
    /// The digest of the policy the request was authorized under (set by the authorization
    /// layer; recorded with every change in the audit log).
    pub policy_digest: Option<String>,
}

/// The caller of `request`.
///
/// - no verified peer (the request did not come through `metamesh_tls::incoming`):
///   UNAUTHENTICATED;
/// - [`PRINCIPAL_HEADER`] from a peer that is not a router: PERMISSION_DENIED;
/// - a forwarded principal that is empty, not text, repeated or over 256 bytes:
///   INVALID_ARGUMENT naming the header.
pub fn authenticate<T>(request: &Request<T>) -> Result<Caller, Status> {
    authenticate_parts(request.extensions(), request.metadata())
}

/// [`authenticate`] from the parts of a request (for the authorization layer, which runs before
/// tonic decodes the message).
pub fn authenticate_parts(
    extensions: &tonic::Extensions,
    metadata: &tonic::metadata::MetadataMap,
) -> Result<Caller, Status> {
    let peer = extensions
        .get::<metamesh_tls::PeerInfo>()
        .ok_or_else(|| Status::unauthenticated("no verified client certificate on this connection"))?;
    let identity = peer.identity.clone();
    let mut forwarded = metadata.get_all(PRINCIPAL_HEADER).iter();
    let Some(value) = forwarded.next() else {
        return Ok(Caller {
            principal: identity.principal.to_string(),
            peer: identity,
            forwarded: false,
            policy_digest: None,
        });
    };
    if identity.role != PeerRole::Router {
        tracing::warn!(peer = %identity.principal, "non-router peer tried to forward a principal");
        return Err(Status::permission_denied(format!(
            "only routers may set `{PRINCIPAL_HEADER}`; `{}` is not a router",
            identity.principal
        )));
    }
    let bad = |why: &str| Status::invalid_argument(format!("invalid `{PRINCIPAL_HEADER}`: {why}"));
    if forwarded.next().is_some() {
        return Err(bad("given more than once"));
    }
    let principal = value.to_str().map_err(|_| bad("not visible ascii text"))?.trim();
    if principal.is_empty() {
        return Err(bad("empty"));
    }
    if principal.len() > MAX_SHORT_BYTES {
        return Err(bad("longer than 256 bytes"));
    }
    Ok(Caller { principal: principal.to_owned(), peer: identity, forwarded: true, policy_digest: None })
}
