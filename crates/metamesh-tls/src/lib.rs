//! Transport security of the mesh: every listener speaks TLS, every peer holds a certificate
//! from the mesh CA, and every request knows who sent it.
//!
//! Code map:
//! - [`certs`]: the mesh CA ([`MeshCa`]) and the node, router and client certificates it issues,
//!   with SPIFFE IDs `spiffe://<trust-domain>/<role>/<name>`; bundles written to disk.
//! - [`identity`]: the principal and role read back from a verified certificate.
//! - [`config`]: rustls server and client configurations from PEM files, ring provider only;
//!   servers always require a client certificate chained to the mesh CA.
//! - [`serve`]: an accept stream for `tonic::transport::Server::serve_with_incoming` that does
//!   the handshakes, enforces the listener's [`PeerPolicy`] and hands handlers a [`PeerInfo`].
//! - [`channel`]: tonic channels to mesh listeners over the same rustls configs.
//!
//! Invariant: no code path reaches a crypto provider other than ring, and none uses the
//! process-default provider (two compiled-in providers make rustls refuse to choose).

pub mod certs;
pub mod channel;
pub mod config;
mod error;
pub mod identity;
pub mod serve;

pub use certs::{write_bundle, BundlePaths, CertRequest, Issued, MeshCa, Role};
pub use channel::{connect, MeshConnector};
pub use config::{Credentials, CLIENT_API_ALPN, INTERNAL_ALPN};
pub use error::TlsError;
pub use identity::{identify, Identity, PeerRole, Principal};
pub use serve::{incoming, peer_info, PeerInfo, PeerPolicy, TlsConn};
