//! `identify` over certificates shaped every way a peer's might be: the principal is the URI
//! SAN, else the common name; the role comes from the SPIFFE path only.

mod common;

use std::time::Duration;

use common::{mesh_ca, DOMAIN};
use metamesh_tls::{identify, PeerRole, Role};
use rcgen::{CertificateParams, DistinguishedName, DnType, KeyPair, SanType};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

/// A self-signed certificate with exactly these URI SANs, DNS SANs and common name.
fn cert(uris: &[&str], dns: &[&str], cn: Option<&str>) -> Vec<u8> {
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    if let Some(cn) = cn {
        params.distinguished_name.push(DnType::CommonName, cn);
    }
    params.distinguished_name.push(DnType::OrganizationName, "metamesh tests");
    params.subject_alt_names = uris.iter().map(|u| SanType::URI(u.to_string().try_into().unwrap())).collect();
    params.subject_alt_names.extend(dns.iter().map(|d| SanType::DnsName(d.to_string().try_into().unwrap())));
    params.self_signed(&KeyPair::generate().unwrap()).unwrap().der().to_vec()
}

/// `principal role` or the error message, for one-line expectations.
fn show(der: &[u8]) -> String {
    match identify(der) {
        Ok(id) => format!("{} {:?}", id.principal, id.role),
        Err(e) => format!("error: {e}"),
    }
}

#[test]
fn identity_table() {
    let cases: &[(&str, Vec<u8>, &str)] = &[
        ("uri and cn: uri wins", cert(&["spiffe://m/node/n1"], &[], Some("n1")), "spiffe://m/node/n1 Node"),
        ("uri only", cert(&["spiffe://m/router/r1"], &[], None), "spiffe://m/router/r1 Router"),
        ("spiffe client", cert(&["spiffe://m/client/etl"], &[], Some("etl")), "spiffe://m/client/etl Client"),
        ("unknown spiffe role", cert(&["spiffe://m/admin/x"], &[], None), "spiffe://m/admin/x Client"),
        ("spiffe without name", cert(&["spiffe://m/node"], &[], None), "spiffe://m/node Client"),
        ("non-spiffe uri", cert(&["https://m/node/n1"], &[], Some("n1")), "https://m/node/n1 Client"),
        ("cn only", cert(&[], &[], Some("alice")), "alice Client"),
        ("cn named like a node", cert(&[], &[], Some("spiffe://m/node/n1")), "spiffe://m/node/n1 Client"),
        ("dns san is not a principal", cert(&[], &["svc.example"], Some("svc")), "svc Client"),
        ("neither", cert(&[], &["svc.example"], None), "error: certificate has neither a uri san nor a common name"),
        (
            "two uri sans",
            cert(&["spiffe://m/node/n1", "spiffe://m/client/c"], &[], Some("n1")),
            "error: certificate has 2 uri sans, expected at most one",
        ),
    ];
    for (what, der, expected) in cases {
        assert_eq!(show(der), *expected, "{what}");
    }
}

#[test]
fn mesh_issued_certificates_identify_as_their_spiffe_id() {
    let ca = mesh_ca();
    for (role, peer_role) in
        [(Role::Node, PeerRole::Node), (Role::Router, PeerRole::Router), (Role::Client, PeerRole::Client)]
    {
        let issued = ca.issue(role, "x1", Duration::from_secs(60)).unwrap();
        let der = CertificateDer::from_pem_slice(issued.cert_pem.as_bytes()).unwrap();

        let id = identify(&der).unwrap();

        assert_eq!(id.principal.as_str(), format!("spiffe://{DOMAIN}/{}/x1", role.as_str()));
        assert_eq!(id.role, peer_role);
        assert_eq!(id.trust_domain(), Some(DOMAIN));
    }
}

#[test]
fn malformed_der_is_an_error() {
    let der = cert(&["spiffe://m/node/n1"], &[], None);
    let mut trailing = der.clone();
    trailing.push(0);

    assert!(show(b"not a certificate").starts_with("error: cannot parse certificate"));
    assert!(show(&der[..der.len() / 2]).starts_with("error: cannot parse certificate"));
    assert_eq!(show(&trailing), "error: cannot parse certificate: trailing bytes after the certificate");
}
