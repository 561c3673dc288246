//! rustls configurations for mesh listeners and dialers, built from PEM files.
//!
//! Every configuration names the ring provider explicitly instead of relying on the process-wide
//! default: the default is whatever provider some dependency installed first, and with two
//! providers compiled in rustls refuses to pick one at run time.

use std::path::Path;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::TlsError;

/// ALPN id of HTTP/2, the only protocol gRPC speaks.
pub const ALPN_H2: &[u8] = b"h2";

/// ALPN id of HTTP/1.1, for HTTP clients that cannot speak HTTP/2 (Python `requests`).
pub const ALPN_HTTP1: &[u8] = b"http/1.1";

/// What the client-API listener offers: gRPC first, then plain HTTP/1.1.
pub const CLIENT_API_ALPN: &[&[u8]] = &[ALPN_H2, ALPN_HTTP1];

/// What the internal (Raft) listener offers: gRPC only.
pub const INTERNAL_ALPN: &[&[u8]] = &[ALPN_H2];

/// The one crypto provider of the mesh.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A peer's trust roots, certificate chain and key, loaded once and turned into configs.
#[derive(Debug)]
pub struct Credentials {
    /// The mesh CA certificates peers must chain to.
    roots: Arc<RootCertStore>,
    /// Our certificate first, then any intermediates.
    chain: Vec<CertificateDer<'static>>,
    /// The key of `chain[0]`.
    key: PrivateKeyDer<'static>,
}

impl Credentials {
    /// Loads the CA file, the certificate (chain) file and the key file.
    pub fn load(ca: &Path, cert: &Path, key: &Path) -> Result<Credentials, TlsError> {
        Ok(Credentials {
            roots: Arc::new(load_roots(ca)?),
            chain: parse_certs(&read(cert)?, &cert.display().to_string())?,
            key: parse_key(&read(key)?, &key.display().to_string())?,
        })
    }

    /// Builds credentials from PEM text already in memory (tests, a freshly issued bundle).
    pub fn from_pem(ca_pem: &str, cert_pem: &str, key_pem: &str) -> Result<Credentials, TlsError> {
        Ok(Credentials {
            roots: Arc::new(roots_from_pem(ca_pem)?),
            chain: parse_certs(cert_pem.as_bytes(), "certificate pem")?,
            key: parse_key(key_pem.as_bytes(), "key pem")?,
        })
    }

    /// The trust roots.
    pub fn roots(&self) -> &RootCertStore {
        &self.roots
    }

    /// A server config that requires every client to present a certificate chained to the mesh
    /// CA, offering the given ALPN protocols (see [`CLIENT_API_ALPN`], [`INTERNAL_ALPN`]).
    ///
    /// Expired, foreign or missing client certificates fail the handshake itself; what a
    /// verified peer may do is decided afterwards ([`crate::serve::PeerPolicy`]).
    pub fn server_config(&self, alpn: &[&[u8]]) -> Result<Arc<ServerConfig>, TlsError> {
        let provider = provider();
        let verifier = WebPkiClientVerifier::builder_with_provider(self.roots.clone(), provider.clone()).build()?;
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_client_cert_verifier(verifier)
            .with_single_cert(self.chain.clone(), self.key.clone_key())?;
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(Arc::new(config))
    }

    /// A server config for HTTP clients: a client certificate is optional (callers without one
    /// authenticate otherwise, by API key), but one that is presented must chain to the mesh
    /// CA. Offers `h2` and `http/1.1`.
    pub fn http_server_config(&self) -> Result<Arc<ServerConfig>, TlsError> {
        let provider = provider();
        let verifier = WebPkiClientVerifier::builder_with_provider(self.roots.clone(), provider.clone())
            .allow_unauthenticated()
            .build()?;
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_client_cert_verifier(verifier)
            .with_single_cert(self.chain.clone(), self.key.clone_key())?;
        config.alpn_protocols = CLIENT_API_ALPN.iter().map(|p| p.to_vec()).collect();
        Ok(Arc::new(config))
    }

    /// A client config presenting our certificate and trusting only the mesh CA; offers `h2`.
    pub fn client_config(&self) -> Result<Arc<ClientConfig>, TlsError> {
        let mut config = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(self.roots.clone())
            .with_client_auth_cert(self.chain.clone(), self.key.clone_key())?;
        config.alpn_protocols = vec![ALPN_H2.to_vec()];
        Ok(Arc::new(config))
    }
}

/// [`Credentials::server_config`] from files.
pub fn server_config(ca: &Path, cert: &Path, key: &Path, alpn: &[&[u8]]) -> Result<Arc<ServerConfig>, TlsError> {
    Credentials::load(ca, cert, key)?.server_config(alpn)
}

/// [`Credentials::client_config`] from files.
pub fn client_config(ca: &Path, cert: &Path, key: &Path) -> Result<Arc<ClientConfig>, TlsError> {
    Credentials::load(ca, cert, key)?.client_config()
}

/// A client config that trusts the mesh CA but presents no certificate: mesh listeners must
/// refuse it, which is what it exists to show. Offers `h2`.
pub fn anonymous_client_config(roots: RootCertStore) -> Result<Arc<ClientConfig>, TlsError> {
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![ALPN_H2.to_vec()];
    Ok(Arc::new(config))
}

/// Loads the trust roots (one or more CA certificates, e.g. old and new during a rotation).
pub fn load_roots(ca: &Path) -> Result<RootCertStore, TlsError> {
    roots_from(&read(ca)?, &ca.display().to_string())
}

/// Trust roots from PEM text in memory.
pub fn roots_from_pem(ca_pem: &str) -> Result<RootCertStore, TlsError> {
    roots_from(ca_pem.as_bytes(), "ca pem")
}

/// Builds a root store; `origin` names the source in errors.
fn roots_from(pem: &[u8], origin: &str) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in parse_certs(pem, origin)? {
        roots.add(cert).map_err(|e| pem_error(origin, format!("unusable ca certificate: {e}")))?;
    }
    Ok(roots)
}

/// Every certificate in `pem`; at least one.
fn parse_certs(pem: &[u8], origin: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(origin, e.to_string()))?;
    if certs.is_empty() {
        return Err(pem_error(origin, "no certificate found".into()));
    }
    Ok(certs)
}

/// The first private key (PKCS#8, PKCS#1 or SEC1) in `pem`.
fn parse_key(pem: &[u8], origin: &str) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| match e {
        rustls_pki_types::pem::Error::NoItemsFound => pem_error(origin, "no private key found".into()),
        e => pem_error(origin, e.to_string()),
    })
}

/// Reads a whole file, naming it in the error.
fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read { path: path.to_owned(), source })
}

fn pem_error(origin: &str, reason: String) -> TlsError {
    TlsError::Pem { origin: origin.to_owned(), reason }
}
