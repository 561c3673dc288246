//! The mesh CA: what it puts in certificates, that they chain to it (checked with the same
//! webpki verifier the listeners use), reloading it, and bundles on disk.

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use common::{mesh_ca, DOMAIN};
use metamesh_tls::config::roots_from_pem;
use metamesh_tls::{write_bundle, CertRequest, Credentials, Issued, MeshCa, Role, TlsError};
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, UnixTime};
use x509_parser::extensions::GeneralName;

const HOUR: Duration = Duration::from_secs(3600);

fn der(issued: &Issued) -> CertificateDer<'static> {
    CertificateDer::from_pem_slice(issued.cert_pem.as_bytes()).unwrap()
}

/// Whether `issued` verifies as a client certificate against `ca`, as a listener would see it.
fn chains_to(ca: &MeshCa, issued: &Issued) -> Result<(), rustls::Error> {
    let roots = Arc::new(roots_from_pem(ca.cert_pem()).unwrap());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider).build().unwrap();
    verifier.verify_client_cert(&der(issued), &[], UnixTime::now()).map(|_| ())
}

/// The SANs of a certificate, rendered as `uri:…`, `dns:…`, `ip:…`.
fn sans(issued: &Issued) -> Vec<String> {
    let der = der(issued);
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    let ext = cert.subject_alternative_name().unwrap().expect("san extension");
    ext.value
        .general_names
        .iter()
        .map(|name| match name {
            GeneralName::URI(uri) => format!("uri:{uri}"),
            GeneralName::DNSName(dns) => format!("dns:{dns}"),
            GeneralName::IPAddress(ip) => {
                let ip: [u8; 4] = (*ip).try_into().expect("ipv4");
                format!("ip:{}", IpAddr::from(ip))
            }
            other => format!("other:{other:?}"),
        })
        .collect()
}

/// `(common name, serverAuth, clientAuth)` of a certificate.
fn subject_and_ekus(issued: &Issued) -> (String, bool, bool) {
    let der = der(issued);
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    let cn = cert.subject().iter_common_name().next().unwrap().as_str().unwrap().to_owned();
    let eku = cert.extended_key_usage().unwrap().expect("eku extension").value;
    (cn, eku.server_auth, eku.client_auth)
}

#[test]
fn certificates_carry_spiffe_id_names_and_ekus_per_role() {
    let ca = mesh_ca();
    let cases = [
        (Role::Node, "n1", vec!["dns:localhost", "ip:127.0.0.1"], true),
        (Role::Router, "r1", vec!["dns:localhost", "ip:127.0.0.1"], true),
        (Role::Client, "etl", vec![], false),
    ];
    for (role, name, serving_sans, serves) in cases {
        let issued = ca.issue(role, name, HOUR).unwrap();
        let mut expected = vec![format!("uri:spiffe://{DOMAIN}/{}/{name}", role.as_str())];
        expected.extend(serving_sans.iter().map(|s| s.to_string()));

        assert_eq!(sans(&issued), expected, "{role:?}");
        assert_eq!(subject_and_ekus(&issued), (name.to_owned(), serves, true), "{role:?}");
        chains_to(&ca, &issued).unwrap();
    }
}

#[test]
fn extra_hostnames_become_dns_and_ip_sans() {
    let ca = mesh_ca();
    let request = CertRequest::new(Role::Node, "n1", HOUR).hostname("n1.mesh.internal").hostname("10.0.0.7");

    let issued = ca.issue_with(&request).unwrap();

    let sans = sans(&issued);
    assert!(sans.contains(&"dns:n1.mesh.internal".to_owned()), "{sans:?}");
    assert!(sans.contains(&format!("ip:{}", Ipv4Addr::new(10, 0, 0, 7))), "{sans:?}");
}

#[test]
fn expired_and_foreign_certificates_do_not_verify() {
    let ca = mesh_ca();
    let other = MeshCa::generate(DOMAIN).unwrap();

    let expired = chains_to(&ca, &ca.issue_expired(Role::Client, "old").unwrap()).unwrap_err();
    let foreign = chains_to(&ca, &other.issue(Role::Client, "old", HOUR).unwrap()).unwrap_err();

    assert!(format!("{expired:?}").contains("Expired"), "{expired:?}");
    // Same issuer name as the mesh CA, so webpki finds a candidate issuer and the signature fails.
    assert!(format!("{foreign:?}").contains("BadSignature"), "{foreign:?}");
}

#[test]
fn reloaded_ca_issues_certificates_that_chain_to_the_original() {
    let ca = mesh_ca();

    let reloaded = MeshCa::from_pem(ca.cert_pem(), ca.key_pem()).unwrap();
    let issued = reloaded.issue(Role::Node, "n3", HOUR).unwrap();

    assert_eq!(reloaded.trust_domain(), DOMAIN);
    chains_to(&ca, &issued).unwrap();
}

#[test]
fn from_pem_refuses_mismatched_keys_and_leaf_certificates() {
    let ca = mesh_ca();
    let other = mesh_ca();
    let leaf = ca.issue(Role::Node, "n1", HOUR).unwrap();

    let mismatched = MeshCa::from_pem(ca.cert_pem(), other.key_pem()).unwrap_err();
    let not_ca = MeshCa::from_pem(&leaf.cert_pem, &leaf.key_pem).unwrap_err();
    let garbage = MeshCa::from_pem("not pem", ca.key_pem()).unwrap_err();

    assert_eq!(mismatched.to_string(), "invalid mesh ca: key does not match the ca certificate");
    assert_eq!(not_ca.to_string(), "invalid mesh ca: certificate is not a ca");
    assert!(matches!(garbage, TlsError::Pem { .. }), "{garbage}");
}

#[test]
fn bad_names_and_trust_domains_are_refused() {
    let ca = mesh_ca();
    for name in ["", "a/b", "../x", ".hidden", "-flag", "sp ace", &"x".repeat(65)] {
        let err = ca.issue(Role::Client, name, HOUR).unwrap_err();
        assert!(matches!(err, TlsError::InvalidName { .. }), "{name:?}: {err}");
    }
    for domain in ["", "Upper.case", "a/b", "spiffe://x"] {
        let err = MeshCa::generate(domain).unwrap_err();
        assert!(matches!(err, TlsError::InvalidTrustDomain { .. }), "{domain:?}: {err}");
    }
    let now = time::OffsetDateTime::now_utc();
    let empty = CertRequest::new(Role::Client, "c", HOUR).valid_between(now, now - time::Duration::seconds(1));
    assert!(matches!(ca.issue_with(&empty), Err(TlsError::InvalidValidity(_))));
}

#[test]
fn bundle_is_written_loadable_and_keys_are_private() {
    let ca = mesh_ca();
    let dir = tempfile::tempdir().unwrap();
    let issued = ca.issue(Role::Node, "n1", HOUR).unwrap();

    let paths = write_bundle(&dir.path().join("certs"), &ca, "n1", &issued).unwrap();

    assert_eq!(std::fs::read_to_string(&paths.ca_cert).unwrap(), ca.cert_pem());
    assert_eq!(std::fs::read_to_string(&paths.cert).unwrap(), issued.cert_pem);
    assert_eq!(paths.key.file_name().unwrap(), "n1.key");
    Credentials::load(&paths.ca_cert, &paths.cert, &paths.key).unwrap();
    let reloaded = MeshCa::from_pem(
        &std::fs::read_to_string(&paths.ca_cert).unwrap(),
        &std::fs::read_to_string(&paths.ca_key).unwrap(),
    )
    .unwrap();
    assert_eq!(reloaded.cert_pem(), ca.cert_pem());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for key in [&paths.ca_key, &paths.key] {
            let mode = std::fs::metadata(key).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", key.display());
        }
    }
    let clash = write_bundle(dir.path(), &ca, "ca", &issued).unwrap_err();
    assert!(matches!(clash, TlsError::InvalidName { .. }), "{clash}");
}

#[test]
fn load_errors_name_the_file() {
    let ca = mesh_ca();
    let dir = tempfile::tempdir().unwrap();
    let paths = write_bundle(dir.path(), &ca, "n1", &ca.issue(Role::Node, "n1", HOUR).unwrap()).unwrap();
    let missing = dir.path().join("missing.pem");

    let no_file = Credentials::load(&paths.ca_cert, &missing, &paths.key).unwrap_err();
    let key_as_cert = Credentials::load(&paths.ca_cert, &paths.key, &paths.key).unwrap_err();
    let cert_as_key = Credentials::load(&paths.ca_cert, &paths.cert, &paths.cert).unwrap_err();

    assert!(no_file.to_string().starts_with(&format!("cannot read {}:", missing.display())), "{no_file}");
    assert_eq!(key_as_cert.to_string(), format!("invalid pem in {}: no certificate found", paths.key.display()));
    assert_eq!(cert_as_key.to_string(), format!("invalid pem in {}: no private key found", paths.cert.display()));
}
