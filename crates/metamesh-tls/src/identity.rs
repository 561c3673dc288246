//! Who is on the other end: the principal and mesh role read from a verified peer certificate.
//!
//! The principal is the certificate's URI SAN when it has one (the SPIFFE ID our CA issues),
//! else its common name (certificates from tools that know nothing of SPIFFE). The role comes
//! from the SPIFFE path only: a node or router role grants access to internal ports and to
//! forwarding principals, so it is never inferred from a common name or a non-SPIFFE URI, and
//! anything unrecognised is the least privileged role, [`PeerRole::Client`].
//!
//! [`identify`] does not verify anything: call it only on a certificate rustls has already
//! chained to the mesh CA.

use std::fmt;

use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;

use crate::TlsError;

/// The authenticated name of a peer, as policies and audit records spell it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Principal(String);

impl Principal {
    /// The principal as text, e.g. `spiffe://prod.example/client/etl`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<Principal> for String {
    fn from(principal: Principal) -> String {
        principal.0
    }
}

/// What the peer is in the mesh, which decides the ports it may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PeerRole {
    /// A shard replica (`spiffe://<domain>/node/<name>`).
    Node,
    /// A router (`spiffe://<domain>/router/<name>`), trusted to forward callers' principals.
    Router,
    /// Anyone else holding a certificate from the mesh CA.
    Client,
}

/// A peer's identity: its principal and its role.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Identity {
    /// The name policies are written against.
    pub principal: Principal,
    /// The role derived from the SPIFFE path.
    pub role: PeerRole,
}

impl Identity {
    /// A client known by other means than a certificate (an HTTP API key standing for
    /// `principal`): always a client, never a node or router.
    pub fn without_certificate(principal: &str) -> Identity {
        Identity { principal: Principal(principal.to_owned()), role: PeerRole::Client }
    }

    /// The SPIFFE trust domain, when the principal is a SPIFFE ID.
    pub fn trust_domain(&self) -> Option<&str> {
        let rest = self.principal.as_str().strip_prefix("spiffe://")?;
        Some(rest.split_once('/').map_or(rest, |(domain, _)| domain))
    }
}

/// Reads the identity out of a DER certificate (the peer's end-entity certificate).
///
/// Refuses certificates that name more than one URI SAN or, lacking one, more than one common
/// name: picking one of several would let whoever ordered the names choose the principal.
pub fn identify(cert_der: &[u8]) -> Result<Identity, TlsError> {
    let (rest, cert) =
        x509_parser::parse_x509_certificate(cert_der).map_err(|e| TlsError::ParseCertificate(e.to_string()))?;
    if !rest.is_empty() {
        return Err(TlsError::ParseCertificate("trailing bytes after the certificate".into()));
    }
    if let Some(uri) = uri_san(&cert)? {
        return Ok(Identity { role: spiffe_role(uri), principal: Principal(uri.to_owned()) });
    }
    let cn = common_name(&cert)?;
    Ok(Identity { principal: Principal(cn.to_owned()), role: PeerRole::Client })
}

/// The certificate's single URI SAN, if it has one.
fn uri_san<'a>(cert: &X509Certificate<'a>) -> Result<Option<&'a str>, TlsError> {
    let sans = cert.subject_alternative_name().map_err(|e| TlsError::ParseCertificate(e.to_string()))?;
    let uris: Vec<&str> = sans
        .iter()
        .flat_map(|ext| ext.value.general_names.iter())
        .filter_map(|name| match name {
            GeneralName::URI(uri) => Some(*uri),
            _ => None,
        })
        .collect();
    match uris.as_slice() {
        [] => Ok(None),
        [""] => Err(TlsError::ParseCertificate("empty uri san".into())),
        [uri] => Ok(Some(uri)),
        _ => Err(TlsError::AmbiguousPrincipal { what: "uri sans", count: uris.len() }),
    }
}

/// The certificate's single, non-empty common name.
fn common_name<'a>(cert: &'a X509Certificate<'_>) -> Result<&'a str, TlsError> {
    let names: Vec<_> = cert.subject().iter_common_name().collect();
    match names.as_slice() {
        [] => Err(TlsError::NoPrincipal),
        [name] => {
            let name = name.as_str().map_err(|e| TlsError::ParseCertificate(format!("common name: {e}")))?;
            if name.is_empty() {
                Err(TlsError::NoPrincipal)
            } else {
                Ok(name)
            }
        }
        _ => Err(TlsError::AmbiguousPrincipal { what: "common names", count: names.len() }),
    }
}

/// The role a URI SAN grants: node or router only for `spiffe://<domain>/node|router/<name>`.
fn spiffe_role(uri: &str) -> PeerRole {
    let Some(rest) = uri.strip_prefix("spiffe://") else {
        return PeerRole::Client;
    };
    let Some((_domain, path)) = rest.split_once('/') else {
        return PeerRole::Client;
    };
    match path.split_once('/') {
        Some(("node", name)) if !name.is_empty() => PeerRole::Node,
        Some(("router", name)) if !name.is_empty() => PeerRole::Router,
        _ => PeerRole::Client,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_from_spiffe_paths() {
        let cases = [
            ("spiffe://mesh/node/n1", PeerRole::Node),
            ("spiffe://mesh/router/r1", PeerRole::Router),
            ("spiffe://mesh/client/c1", PeerRole::Client),
            ("spiffe://mesh/node/", PeerRole::Client),
            ("spiffe://mesh/node", PeerRole::Client),
            ("spiffe://mesh", PeerRole::Client),
            ("spiffe://mesh/Node/n1", PeerRole::Client),
            ("spiffe://mesh/admin/node/n1", PeerRole::Client),
            ("https://mesh/node/n1", PeerRole::Client),
            ("urn:node:n1", PeerRole::Client),
        ];
        for (uri, role) in cases {
            assert_eq!(spiffe_role(uri), role, "{uri}");
        }
    }
}
