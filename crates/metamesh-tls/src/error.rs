//! The one error type of the crate.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

/// Everything that can go wrong while minting certificates, loading them, identifying a peer or
/// dialling one.
///
/// One enum rather than one per module because callers (the node, the router, the CLI) handle
/// them the same way: report the message and stop. Variants name the file or value at fault so
/// that the message alone tells an operator what to fix.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The trust domain is not a valid SPIFFE trust domain.
    #[error("invalid trust domain {domain:?}: {reason}")]
    InvalidTrustDomain { domain: String, reason: &'static str },

    /// A certificate name cannot be a SPIFFE path segment, a common name or a file name.
    #[error("invalid certificate name {name:?}: {reason}")]
    InvalidName { name: String, reason: &'static str },

    /// An extra hostname is neither an IP address nor a valid DNS name.
    #[error("invalid hostname {0:?}")]
    InvalidHostname(String),

    /// The validity window is empty or out of range.
    #[error("invalid validity: {0}")]
    InvalidValidity(&'static str),

    /// rcgen refused to build or sign a certificate.
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),

    /// The PEM given as a mesh CA is not usable as one.
    #[error("invalid mesh ca: {0}")]
    InvalidCa(&'static str),

    /// A file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },

    /// A file could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write { path: PathBuf, source: io::Error },

    /// PEM text (from a file or from memory) holds nothing usable.
    #[error("invalid pem in {origin}: {reason}")]
    Pem { origin: String, reason: String },

    /// A peer certificate is not parseable DER X.509.
    #[error("cannot parse certificate: {0}")]
    ParseCertificate(String),

    /// A certificate carries no URI SAN and no common name to take a principal from.
    #[error("certificate has neither a uri san nor a common name")]
    NoPrincipal,

    /// A certificate names more than one principal of the same kind.
    #[error("certificate has {count} {what}, expected at most one")]
    AmbiguousPrincipal { what: &'static str, count: usize },

    /// rustls refused the configuration (for example a key that does not match the certificate).
    #[error("invalid tls configuration: {0}")]
    Config(#[from] rustls::Error),

    /// The client-certificate verifier could not be built from the roots.
    #[error("cannot build client certificate verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),

    /// The server name to check the peer against is not a DNS name or IP address.
    #[error("invalid server name {0:?}")]
    InvalidServerName(String),

    /// The gRPC channel could not be established.
    #[error("cannot connect to {addr}: {source}")]
    Connect { addr: SocketAddr, source: tonic::transport::Error },
}
