//! The mesh certificate authority: mints the certificates that every listener and every service
//! client of one mesh presents.
//!
//! A certificate names its holder twice: a SPIFFE URI SAN `spiffe://<trust-domain>/<role>/<name>`
//! (what [`crate::identity`] reads back as the principal and role) and the common name `<name>`
//! (for tools that only show the subject). Node and router certificates also serve, so they carry
//! `localhost`, `127.0.0.1` and any extra hostnames, and both TLS web server and client EKUs;
//! client certificates carry the client EKU only, so they can never be presented as a server.

use std::fs;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use time::OffsetDateTime;

use crate::TlsError;

/// How long a generated mesh CA stays valid: long enough that nobody rotates it by surprise.
const CA_VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 60 * 60);

/// How far `not_before` is moved into the past, so that a peer whose clock is a little behind
/// the issuer's does not reject a certificate minted a moment ago.
const CLOCK_SKEW: Duration = Duration::from_secs(5 * 60);

/// What a certificate holder is in the mesh; it becomes the first segment of the SPIFFE path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// A shard replica: serves the client API and the internal Raft port.
    Node,
    /// A router: serves the client API and calls nodes on behalf of callers.
    Router,
    /// A service client: only ever dials.
    Client,
}

impl Role {
    /// The SPIFFE path segment for this role.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Node => "node",
            Role::Router => "router",
            Role::Client => "client",
        }
    }

    /// Whether certificates of this role may be presented by a listener.
    fn serves(self) -> bool {
        matches!(self, Role::Node | Role::Router)
    }
}

/// A freshly issued certificate and its private key, both PEM.
#[derive(Clone)]
pub struct Issued {
    /// The leaf certificate (PEM, one `CERTIFICATE` block).
    pub cert_pem: String,
    /// The leaf's private key (PEM, PKCS#8); keep it out of logs.
    pub key_pem: String,
}

impl std::fmt::Debug for Issued {
    /// Elides the key: an `Issued` printed by accident must not leak it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issued").field("cert_pem", &self.cert_pem).field("key_pem", &"[elided]").finish()
    }
}

/// Everything that goes into one leaf certificate; [`CertRequest::new`] fills sensible defaults.
#[derive(Clone, Debug)]
pub struct CertRequest {
    /// The holder's role (SPIFFE path segment and EKUs).
    pub role: Role,
    /// The holder's name: last SPIFFE path segment, common name, and file name in bundles.
    pub name: String,
    /// Extra DNS names or IP addresses the holder serves on, beyond `localhost` and `127.0.0.1`.
    pub hostnames: Vec<String>,
    /// Start of validity.
    pub not_before: OffsetDateTime,
    /// End of validity.
    pub not_after: OffsetDateTime,
}

impl CertRequest {
    /// A request valid from a few minutes ago (clock skew) for `validity` from now.
    pub fn new(role: Role, name: &str, validity: Duration) -> Self {
        let now = OffsetDateTime::now_utc();
        CertRequest {
            role,
            name: name.to_owned(),
            hostnames: Vec::new(),
            not_before: now - CLOCK_SKEW,
            not_after: now.checked_add(to_time(validity)).unwrap_or(now),
        }
    }

    /// Adds an extra hostname (DNS name or IP address) to the subject alternative names.
    pub fn hostname(mut self, hostname: &str) -> Self {
        self.hostnames.push(hostname.to_owned());
        self
    }

    /// Replaces the validity window, for example with one in the past.
    pub fn valid_between(mut self, not_before: OffsetDateTime, not_after: OffsetDateTime) -> Self {
        self.not_before = not_before;
        self.not_after = not_after;
        self
    }
}

/// The mesh's certificate authority: the root every peer is checked against.
pub struct MeshCa {
    /// The SPIFFE trust domain of every certificate this CA issues.
    trust_domain: String,
    /// The CA certificate, as handed to peers as their trust root.
    cert_pem: String,
    /// The CA key, kept as PEM so that the CA can be written out again.
    key_pem: String,
    /// rcgen's signer: the CA's subject, key identifier and key.
    issuer: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for MeshCa {
    /// Elides the key, like [`Issued`].
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeshCa").field("trust_domain", &self.trust_domain).finish_non_exhaustive()
    }
}

impl MeshCa {
    /// Generates a self-signed CA for `trust_domain`, valid for ten years.
    ///
    /// The CA itself carries the URI SAN `spiffe://<trust-domain>` so that [`MeshCa::from_pem`]
    /// can recover the trust domain from the certificate alone.
    pub fn generate(trust_domain: &str) -> Result<MeshCa, TlsError> {
        check_trust_domain(trust_domain)?;
        let key = KeyPair::generate()?;
        let now = OffsetDateTime::now_utc();
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::OrganizationName, "metamesh");
        params.distinguished_name.push(DnType::CommonName, format!("{trust_domain} mesh ca"));
        params.subject_alt_names = vec![SanType::URI(format!("spiffe://{trust_domain}").try_into()?)];
        // Path length 0: the mesh CA signs leaves only, never intermediates.
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        params.not_before = now - CLOCK_SKEW;
        params.not_after = now + to_time(CA_VALIDITY);
        let cert = params.self_signed(&key)?;
        Ok(MeshCa {
            trust_domain: trust_domain.to_owned(),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            issuer: Issuer::new(params, key),
        })
    }

    /// Loads a CA written earlier (by [`write_bundle`] or an operator).
    ///
    /// Checks that the certificate is a CA, that the key is its key, and that it names a trust
    /// domain: issuing under a mismatched key would produce certificates nobody accepts.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<MeshCa, TlsError> {
        let der = first_certificate(cert_pem, "ca certificate")?;
        let (rest, cert) =
            x509_parser::parse_x509_certificate(&der).map_err(|e| TlsError::ParseCertificate(e.to_string()))?;
        if !rest.is_empty() {
            return Err(TlsError::ParseCertificate("trailing bytes after the certificate".into()));
        }
        if !cert.is_ca() {
            return Err(TlsError::InvalidCa("certificate is not a ca"));
        }
        let trust_domain = ca_trust_domain(&cert)?;
        let key = KeyPair::from_pem(key_pem)?;
        if key.public_key_raw() != cert.public_key().subject_public_key.data.as_ref() {
            return Err(TlsError::InvalidCa("key does not match the ca certificate"));
        }
        let issuer = Issuer::from_ca_cert_der(&der, key)?;
        Ok(MeshCa { trust_domain, cert_pem: cert_pem.to_owned(), key_pem: key_pem.to_owned(), issuer })
    }

    /// The SPIFFE trust domain of this mesh.
    pub fn trust_domain(&self) -> &str {
        &self.trust_domain
    }

    /// The CA certificate (PEM): the trust root every peer loads.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA private key (PEM).
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// The SPIFFE ID a certificate for `role` and `name` carries.
    pub fn spiffe_id(&self, role: Role, name: &str) -> String {
        format!("spiffe://{}/{}/{}", self.trust_domain, role.as_str(), name)
    }

    /// Issues a certificate for `role` and `name`, valid for `validity` from now.
    pub fn issue(&self, role: Role, name: &str, validity: Duration) -> Result<Issued, TlsError> {
        self.issue_with(&CertRequest::new(role, name, validity))
    }

    /// Issues a certificate whose validity ended yesterday: for tests that expiry is enforced.
    pub fn issue_expired(&self, role: Role, name: &str) -> Result<Issued, TlsError> {
        let now = OffsetDateTime::now_utc();
        let day = time::Duration::days(1);
        self.issue_with(&CertRequest::new(role, name, Duration::ZERO).valid_between(now - day - day, now - day))
    }

    /// Issues a certificate exactly as `request` describes.
    pub fn issue_with(&self, request: &CertRequest) -> Result<Issued, TlsError> {
        check_name(&request.name)?;
        if request.not_after <= request.not_before {
            return Err(TlsError::InvalidValidity("not_after must be later than not_before"));
        }
        let mut params = CertificateParams::default();
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, request.name.as_str());
        params.subject_alt_names = vec![SanType::URI(self.spiffe_id(request.role, &request.name).try_into()?)];
        if request.role.serves() {
            params.subject_alt_names.push(SanType::DnsName("localhost".try_into()?));
            params.subject_alt_names.push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        }
        for hostname in &request.hostnames {
            let san = match hostname.parse::<IpAddr>() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => SanType::DnsName(
                    hostname.as_str().try_into().map_err(|_| TlsError::InvalidHostname(hostname.clone()))?,
                ),
            };
            if !params.subject_alt_names.contains(&san) {
                params.subject_alt_names.push(san);
            }
        }
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = if request.role.serves() {
            vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth]
        } else {
            vec![ExtendedKeyUsagePurpose::ClientAuth]
        };
        params.use_authority_key_identifier_extension = true;
        params.not_before = request.not_before;
        params.not_after = request.not_after;
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(Issued { cert_pem: cert.pem(), key_pem: key.serialize_pem() })
    }
}

/// Where [`write_bundle`] put each file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BundlePaths {
    /// `<dir>/ca.pem`: the trust root.
    pub ca_cert: PathBuf,
    /// `<dir>/ca.key` (mode 0600).
    pub ca_key: PathBuf,
    /// `<dir>/<name>.pem`: the leaf certificate.
    pub cert: PathBuf,
    /// `<dir>/<name>.key` (mode 0600).
    pub key: PathBuf,
}

/// Writes `ca.pem`, `ca.key`, `<name>.pem` and `<name>.key` into `dir` (created if missing).
///
/// Meant for development meshes and tests, where one directory holds everything; a production
/// node is given its own key and the CA certificate only. Keys are created with mode 0600 on
/// unix so that they are never readable by others, not even between create and chmod.
pub fn write_bundle(dir: &Path, ca: &MeshCa, name: &str, issued: &Issued) -> Result<BundlePaths, TlsError> {
    check_name(name)?;
    if name == "ca" {
        return Err(TlsError::InvalidName { name: name.into(), reason: "would overwrite the ca files" });
    }
    fs::create_dir_all(dir).map_err(|source| TlsError::Write { path: dir.to_owned(), source })?;
    let paths = BundlePaths {
        ca_cert: dir.join("ca.pem"),
        ca_key: dir.join("ca.key"),
        cert: dir.join(format!("{name}.pem")),
        key: dir.join(format!("{name}.key")),
    };
    write_file(&paths.ca_cert, ca.cert_pem(), false)?;
    write_file(&paths.ca_key, ca.key_pem(), true)?;
    write_file(&paths.cert, &issued.cert_pem, false)?;
    write_file(&paths.key, &issued.key_pem, true)?;
    Ok(paths)
}

/// Writes `contents` to `path`, owner-only when `secret`.
///
/// The file is written beside its destination and renamed over it, so a reader (a replica
/// loading `ca.pem` while a client certificate is issued next to it) sees the old file or the
/// new one, never a truncated one. A file that already holds `contents` is left alone.
fn write_file(path: &Path, contents: &str, secret: bool) -> Result<(), TlsError> {
    let fail = |source| TlsError::Write { path: path.to_owned(), source };
    if fs::read(path).is_ok_and(|old| old == contents.as_bytes()) {
        // Unchanged; a key file still loses any wider permissions it was given.
        #[cfg(unix)]
        if secret {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(path, fs::Permissions::from_mode(0o600)).map_err(fail)?;
        }
        return Ok(());
    }
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".{}.{n}.tmp", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = secret;
    let written = options.open(&tmp).and_then(|mut file| {
        file.write_all(contents.as_bytes())?;
        file.sync_all()
    });
    if let Err(e) = written.and_then(|()| fs::rename(&tmp, path)) {
        let _ = fs::remove_file(&tmp);
        return Err(fail(e));
    }
    Ok(())
}

/// Checks a SPIFFE trust domain: lowercase letters, digits, `.`, `-` and `_` only.
fn check_trust_domain(domain: &str) -> Result<(), TlsError> {
    let fail = |reason| Err(TlsError::InvalidTrustDomain { domain: domain.into(), reason });
    if domain.is_empty() {
        return fail("empty");
    }
    if domain.len() > 255 {
        return fail("longer than 255 bytes");
    }
    if !domain.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'_')) {
        return fail("only lowercase letters, digits, '.', '-' and '_' are allowed");
    }
    Ok(())
}

/// Checks a holder name: it becomes a SPIFFE path segment, a common name (at most 64
/// characters) and a file name, so it must be safe as all three.
fn check_name(name: &str) -> Result<(), TlsError> {
    let fail = |reason| Err(TlsError::InvalidName { name: name.into(), reason });
    if name.is_empty() {
        return fail("empty");
    }
    if name.len() > 64 {
        return fail("longer than 64 bytes");
    }
    if name.starts_with(['.', '-']) {
        return fail("must not start with '.' or '-'");
    }
    if !name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_')) {
        return fail("only letters, digits, '.', '-' and '_' are allowed");
    }
    Ok(())
}

/// The trust domain named by a CA certificate's `spiffe://<domain>` URI SAN.
fn ca_trust_domain(cert: &x509_parser::certificate::X509Certificate<'_>) -> Result<String, TlsError> {
    let sans = cert.subject_alternative_name().map_err(|e| TlsError::ParseCertificate(e.to_string()))?;
    let domain = sans
        .iter()
        .flat_map(|ext| ext.value.general_names.iter())
        .find_map(|name| match name {
            x509_parser::extensions::GeneralName::URI(uri) => uri.strip_prefix("spiffe://"),
            _ => None,
        })
        .ok_or(TlsError::InvalidCa("certificate has no spiffe://<trust-domain> uri san"))?;
    let domain = domain.trim_end_matches('/');
    check_trust_domain(domain)?;
    Ok(domain.to_owned())
}

/// The first certificate in `pem`.
fn first_certificate(pem: &str, origin: &str) -> Result<rustls_pki_types::CertificateDer<'static>, TlsError> {
    use rustls_pki_types::pem::PemObject;
    let der = rustls_pki_types::CertificateDer::pem_slice_iter(pem.as_bytes())
        .next()
        .ok_or_else(|| TlsError::Pem { origin: origin.into(), reason: "no certificate found".into() })?
        .map_err(|e| TlsError::Pem { origin: origin.into(), reason: e.to_string() })?;
    Ok(der)
}

/// Converts a std duration, saturating instead of panicking on absurd values.
fn to_time(duration: Duration) -> time::Duration {
    time::Duration::try_from(duration).unwrap_or(time::Duration::MAX)
}
