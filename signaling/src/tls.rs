//! SIP over TLS (RFC 3261 §26.3.1, RFC 5630 for `;transport=tls`): the certificates and
//! client settings of a configuration, and the record layer between a connection's socket and
//! its plaintext. rustls is sans-IO: the TCP table ([`crate::tcp`]) feeds it the socket's bytes
//! and writes out what it produces, on the mio loop like plain TCP.
//!
//! Listeners with `transport = "tls"` serve their `tls = { cert, key }`; targets with `transport
//! = "tls"` are checked against their trunk's `tls.ca` (else the host's CA bundle) and name
//! (`tls.server_name`, else the trunk's domain, else the target's IP). A handshake that fails
//! (expired, wrong name, unknown CA) closes the connection with a log line naming why, and the
//! call's target fails over like an unreachable one. SIGHUP loads the files again: new
//! connections get the new certificate, open ones keep theirs.
//!
//! Mutual TLS: a trunk's `tls = { cert, key }` is the client certificate shown to its TLS
//! targets; a listener with `tls.client_ca` asks its clients for one (verified against that CA;
//! a client without one is still served), and a trunk's `tls.peer_name` makes a certificate
//! naming it a condition for connections from the trunk's addresses ([`TlsSetup::check_peer`]).

use std::collections::HashMap;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::{ParsedCertificate, WebPkiClientVerifier};
use rustls::{ClientConfig, ClientConnection, Connection, RootCertStore, ServerConfig, ServerConnection};
use xtrunk_config::{Snapshot, Transport};

/// The host's CA bundle (Debian's ca-certificates), for trunks without `tls.ca`.
const SYSTEM_CAS: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Plaintext bytes rustls holds toward a peer before `write` reports it full.
const SEND_BUFFER: usize = 256 * 1024;

/// The TLS side of one configuration.
#[derive(Default)]
pub struct TlsSetup {
    /// Server settings by listener address.
    servers: HashMap<SocketAddr, Arc<ServerConfig>>,
    /// Client settings and the name to check, by TLS target address.
    clients: HashMap<SocketAddr, (Arc<ClientConfig>, ServerName<'static>)>,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn certs(path: &std::path::Path, key: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let v: Vec<_> = CertificateDer::pem_file_iter(path)
        .and_then(|i| i.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{key}: {}: {e}", path.display()))?;
    if v.is_empty() {
        return Err(format!("{key}: {}: no certificate in it", path.display()));
    }
    Ok(v)
}

fn roots(path: &std::path::Path, key: &str) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(certs(path, key)?);
    if added == 0 {
        return Err(format!("{key}: no usable CA certificate"));
    }
    Ok(roots)
}

fn private_key(path: &std::path::Path, key: &str) -> Result<PrivateKeyDer<'static>, String> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| format!("{key}: {}: {e}", path.display()))
}

/// Why a TLS peer's client certificate does not do for its trunk's `tls.peer_name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeerRefusal {
    /// The trunk wants a certificate and the client presented none.
    NoCertificate {
        /// The trunk's name.
        trunk: String,
    },
    /// The certificate does not carry the name.
    WrongName {
        /// The trunk's name.
        trunk: String,
        /// rustls's reason (it lists the names the certificate carries).
        reason: String,
    },
}

impl std::fmt::Display for PeerRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NoCertificate { trunk } => {
                write!(f, "trunk {trunk:?} requires a client certificate (tls.peer_name); none presented")
            }
            Self::WrongName { trunk, reason } => {
                write!(f, "client certificate refused for trunk {trunk:?} (tls.peer_name): {reason}")
            }
        }
    }
}

impl TlsSetup {
    /// Checks a server connection whose handshake is done against the `tls.peer_name` of the
    /// trunk whose ACL holds `peer`'s address (the chain itself was verified against the
    /// listener's `client_ca` by rustls during the handshake). A trunk without `peer_name`, or
    /// an address of no trunk, passes.
    pub fn check_peer(cfg: &Snapshot, peer: IpAddr, tls: &Connection) -> Result<(), PeerRefusal> {
        let Some(id) = cfg.trunk_by_acl(peer) else { return Ok(()) };
        let t = cfg.trunk(id);
        let Some(want) = t.tls.as_ref().and_then(|x| x.peer_name.as_deref()) else { return Ok(()) };
        let trunk = t.name.clone();
        let Some(cert) = tls.peer_certificates().and_then(|c| c.first()) else {
            return Err(PeerRefusal::NoCertificate { trunk });
        };
        let name = ServerName::try_from(want)
            .map_err(|e| PeerRefusal::WrongName { trunk: trunk.clone(), reason: e.to_string() })?;
        ParsedCertificate::try_from(cert)
            .and_then(|c| rustls::client::verify_server_name(&c, &name))
            .map_err(|e| PeerRefusal::WrongName { trunk, reason: e.to_string() })
    }

    /// Loads every TLS listener's certificate and key and every TLS target's trust settings;
    /// the error names the key whose file is missing or bad.
    pub fn load(cfg: &Snapshot, listeners: &[(crate::transport::Transport, SocketAddr)]) -> Result<Self, String> {
        let mut out = Self::default();
        for (i, l) in cfg.sip.listen.iter().enumerate().filter(|(_, l)| l.transport == Transport::Tls) {
            let Some(files) = &l.tls else { return Err(format!("sip.listen[{i}].tls: missing")) };
            let chain = certs(&files.cert, &format!("sip.listen[{i}].tls.cert"))?;
            let key = private_key(&files.key, &format!("sip.listen[{i}].tls.key"))?;
            let b = ServerConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .map_err(|e| e.to_string())?;
            let b = match &files.client_ca {
                None => b.with_no_client_auth(),
                Some(ca) => {
                    let k = format!("sip.listen[{i}].tls.client_ca");
                    let v = WebPkiClientVerifier::builder_with_provider(Arc::new(roots(ca, &k)?), provider())
                        .allow_unauthenticated()
                        .build()
                        .map_err(|e| format!("{k}: {e}"))?;
                    b.with_client_cert_verifier(v)
                }
            };
            let sc = b.with_single_cert(chain, key).map_err(|e| format!("sip.listen[{i}].tls: {e}"))?;
            let sc = Arc::new(sc);
            // The bound address (port 0 resolved) of this listener.
            for (_, a) in listeners.iter().filter(|(t, a)| {
                *t == crate::transport::Transport::Tls
                    && a.ip() == l.addr.ip()
                    && (l.addr.port() == 0 || a.port() == l.addr.port())
            }) {
                out.servers.insert(*a, Arc::clone(&sc));
            }
        }
        for (i, t) in cfg.trunks.iter().enumerate() {
            let tls_targets: Vec<SocketAddr> =
                t.targets.iter().filter(|x| x.transport == Transport::Tls).map(|x| x.addr).collect();
            if tls_targets.is_empty() {
                continue;
            }
            let ca = t.tls.as_ref().and_then(|x| x.ca.clone());
            let (path, key) = match &ca {
                Some(p) => (p.clone(), format!("trunk[{i}].tls.ca")),
                None => (SYSTEM_CAS.into(), format!("trunk[{i}].tls.ca (default {SYSTEM_CAS})")),
            };
            let b = ClientConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .map_err(|e| e.to_string())?
                .with_root_certificates(roots(&path, &key)?);
            let mine = t.tls.as_ref().and_then(|x| x.cert.as_ref().zip(x.key.as_ref()));
            let cc = match mine {
                None => b.with_no_client_auth(),
                Some((c, k)) => {
                    let chain = certs(c, &format!("trunk[{i}].tls.cert"))?;
                    b.with_client_auth_cert(chain, private_key(k, &format!("trunk[{i}].tls.key"))?)
                        .map_err(|e| format!("trunk[{i}].tls.cert: {e}"))?
                }
            };
            let cc = Arc::new(cc);
            for a in tls_targets {
                let name = t.tls.as_ref().and_then(|x| x.server_name.clone()).or_else(|| {
                    t.domain
                        .as_ref()
                        .map(|d| d.rsplit_once(':').map_or(d.as_str(), |(h, _)| h).trim_end_matches('.').to_string())
                });
                let name = match name {
                    Some(n) => ServerName::try_from(n).map_err(|e| format!("trunk[{i}].tls.server_name: {e}"))?,
                    None => ServerName::IpAddress(a.ip().into()),
                };
                out.clients.insert(a, (Arc::clone(&cc), name));
            }
        }
        Ok(out)
    }

    /// A server connection for a client that connected to listener `local`, if it is TLS.
    pub fn accept(&self, local: SocketAddr) -> Option<io::Result<Connection>> {
        let sc = self.servers.get(&local)?;
        Some(ServerConnection::new(Arc::clone(sc)).map(Connection::from).map_err(io::Error::other))
    }

    /// A client connection toward TLS target `remote` (None: not a configured TLS target).
    pub fn connect(&self, remote: SocketAddr) -> Option<io::Result<Connection>> {
        let (cc, name) = self.clients.get(&remote)?;
        Some(ClientConnection::new(Arc::clone(cc), name.clone()).map(Connection::from).map_err(io::Error::other))
    }

    /// Whether `local` is a TLS listener.
    pub fn serves(&self, local: SocketAddr) -> bool {
        self.servers.contains_key(&local)
    }
}

/// Prepares a new connection (bounded plaintext buffer).
pub fn limit(c: &mut Connection) {
    c.set_buffer_limit(Some(SEND_BUFFER));
}

/// Reads plaintext from `tls` over `sock` into `buf`: `Ok(0)` at the end of the stream,
/// `WouldBlock` when nothing is ready. Handshake messages are answered on the way.
pub fn read(tls: &mut Connection, sock: &mut (impl Read + Write), buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match tls.reader().read(buf) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
        if tls.read_tls(sock)? == 0 {
            return Ok(0);
        }
        if let Err(e) = tls.process_new_packets() {
            // The alert that says why goes out first.
            let _ = tls.write_tls(sock);
            return Err(io::Error::new(ErrorKind::InvalidData, e));
        }
        flush(tls, sock)?;
    }
}

/// Writes plaintext `data` into `tls` and as many records as `sock` takes; `WouldBlock` when
/// rustls's buffer is full.
pub fn write(tls: &mut Connection, sock: &mut impl Write, data: &[u8]) -> io::Result<usize> {
    let n = tls.writer().write(data)?;
    flush(tls, sock)?;
    if n == 0 && !data.is_empty() {
        return Err(ErrorKind::WouldBlock.into());
    }
    Ok(n)
}

/// Writes the records rustls has ready, until `sock` would block.
pub fn flush(tls: &mut Connection, sock: &mut impl Write) -> io::Result<()> {
    while tls.wants_write() {
        match tls.write_tls(sock) {
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(()),
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
