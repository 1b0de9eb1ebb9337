//! TLS helpers of the #14 tests: certificates made with the `openssl` command, and OpenSSL
//! `s_client`/`s_server` processes that carry SIP text (Debian 12's SIPp has no TLS).

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::Duration;

pub(crate) fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl").args(args).current_dir(dir).output().expect("openssl");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A CA (`ca.pem`, `ca.key`) with subject `cn`, under file prefix `name`.
pub(crate) fn make_ca(dir: &Path, name: &str, cn: &str) {
    openssl(dir, &["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", &format!("{name}.key")]);
    let subj = format!("/CN={cn}");
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-new",
            "-key",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.pem"),
            "-days",
            "2",
            "-subj",
            &subj,
        ],
    );
}

/// `name.pem`/`name.key`: a certificate for `host` (and 127.0.0.1) signed by CA `ca`, valid
/// `days` ("0" makes one that expires at once).
pub(crate) fn make_cert(dir: &Path, ca: &str, name: &str, host: &str, days: &str) {
    openssl(dir, &["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", &format!("{name}.key")]);
    let csr = format!("{name}.csr");
    openssl(dir, &["req", "-new", "-key", &format!("{name}.key"), "-out", &csr, "-subj", &format!("/CN={host}")]);
    std::fs::write(dir.join(format!("{name}.ext")), format!("subjectAltName=DNS:{host},IP:127.0.0.1\n")).unwrap();
    let (ca_pem, ca_key) = (format!("{ca}.pem"), format!("{ca}.key"));
    let out = format!("{name}.pem");
    let ext = format!("{name}.ext");
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca_pem,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-days",
            days,
            "-out",
            &out,
            "-extfile",
            &ext,
        ],
    );
}

/// A CA and two certificates it signed: `edge` (edge.test, 127.0.0.1) and `carrier`
/// (carrier.test, 127.0.0.1; valid `carrier_days`).
pub(crate) fn make_certs(dir: &Path, carrier_days: &str) {
    make_ca(dir, "ca", "xtrunk test CA");
    make_cert(dir, "ca", "edge", "edge.test", "2");
    make_cert(dir, "ca", "carrier", "carrier.test", carrier_days);
}

/// SHA-256 fingerprint of a PEM certificate (file or text), as `openssl x509` prints it.
pub(crate) fn fingerprint(pem: &str) -> String {
    let mut c = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(pem.as_bytes()).unwrap();
    let out = c.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The certificate a new TLS connection to `port` is served (PEM), by a one-shot `s_client`.
pub(crate) fn served_certificate(dir: &Path, port: u16) -> String {
    let out = Command::new("openssl")
        .args(["s_client", "-connect", &format!("127.0.0.1:{port}"), "-CAfile", "ca.pem", "-servername", "edge.test"])
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .expect("s_client");
    let text = String::from_utf8_lossy(&out.stdout);
    let (Some(a), Some(b)) = (text.find("-----BEGIN CERTIFICATE-----"), text.find("-----END CERTIFICATE-----")) else {
        panic!("no certificate from s_client: {text} {}", String::from_utf8_lossy(&out.stderr));
    };
    text[a..b + "-----END CERTIFICATE-----".len()].to_string() + "\n"
}

/// An OpenSSL process whose stdout lines arrive on a channel.
pub(crate) struct Peer {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
}

impl Peer {
    pub(crate) fn spawn(dir: &Path, args: &[&str]) -> Self {
        let mut child = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn openssl");
        let stdin = child.stdin.take().unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    return;
                }
            }
        });
        Self { child, stdin, lines }
    }

    /// `s_client` to a local TLS port, checking the edge's certificate; `extra`: more
    /// arguments (`-cert`, `-key`).
    pub(crate) fn client(dir: &Path, port: u16, extra: &[&str]) -> Self {
        let connect = format!("127.0.0.1:{port}");
        let mut args = vec![
            "s_client",
            "-connect",
            &connect,
            "-CAfile",
            "ca.pem",
            "-servername",
            "edge.test",
            "-verify_return_error",
            "-quiet",
            "-ign_eof",
        ];
        args.extend_from_slice(extra);
        let p = Self::spawn(dir, &args);
        std::thread::sleep(Duration::from_millis(500));
        p
    }

    pub(crate) fn send(&mut self, msg: &str) {
        // A peer that the edge closed: the write fails, the test sees no answer.
        let _ = self.stdin.write_all(msg.as_bytes());
        let _ = self.stdin.flush();
    }

    /// The next SIP message (head and `Content-Length` body) it printed, within `limit`.
    pub(crate) fn message(&self, limit: Duration) -> Option<String> {
        let deadline = std::time::Instant::now() + limit;
        let mut head = String::new();
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let l = self.lines.recv_timeout(left).ok()?;
            let l = l.trim_end_matches('\r');
            if l.is_empty() && head.is_empty() {
                continue;
            }
            if l.is_empty() {
                break;
            }
            head.push_str(l);
            head.push_str("\r\n");
        }
        let len = header(&head, "Content-Length").and_then(|v| v.parse::<usize>().ok()).unwrap_or(0);
        let mut body = String::new();
        while body.len() < len {
            let l = self.lines.recv_timeout(Duration::from_secs(2)).ok()?;
            body.push_str(l.trim_end_matches('\r'));
            body.push_str("\r\n");
        }
        Some(format!("{head}\r\n{body}"))
    }

    /// The final response (skipping 1xx) within `limit`.
    pub(crate) fn final_response(&self, limit: Duration) -> Option<String> {
        loop {
            let m = self.message(limit)?;
            if !m.starts_with("SIP/2.0 1") {
                return Some(m);
            }
        }
    }

    pub(crate) fn stderr(mut self) -> String {
        let _ = self.child.kill();
        let mut e = String::new();
        let _ = self.child.stderr.take().unwrap().read_to_string(&mut e);
        let _ = self.child.wait();
        e
    }
}

pub(crate) fn header<'a>(m: &'a str, name: &str) -> Option<&'a str> {
    m.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// An OPTIONS over TLS from `127.0.0.1:5999`.
pub(crate) fn options(n: u32) -> String {
    format!("OPTIONS sip:edge.test;transport=tls SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:5999;branch=z9hG4bKopt{n};rport\r\nMax-Forwards: 70\r\nFrom: <sip:100@pbx.test>;tag=o{n}\r\nTo: <sip:edge.test>\r\nCall-ID: tls-options-{n}\r\nCSeq: {n} OPTIONS\r\nContent-Length: 0\r\n\r\n")
}

/// An INVITE over TLS to `ruri` with `sdp`.
pub(crate) fn invite(ruri: &str, call_id: &str, sdp: &str) -> String {
    format!(
        "INVITE {ruri} SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:5999;branch=z9hG4bK{call_id};rport\r\nMax-Forwards: 70\r\nFrom: <sip:100@pbx.test>;tag=p1\r\nTo: <sip:4930123@edge.test>\r\nCall-ID: {call_id}\r\nCSeq: 1 INVITE\r\nContact: <sip:100@127.0.0.1:5999;transport=tls>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    )
}

/// ACK and BYE for the dialog of a 2xx `ok` to [`invite`] (over the same connection).
pub(crate) fn ack_and_bye(peer: &mut Peer, ok: &str, call_id: &str) -> Option<String> {
    let contact = header(ok, "Contact")?;
    let to = header(ok, "To")?.to_string();
    let target = contact.trim_matches(|c| c == '<' || c == '>').to_string();
    let common = format!("Max-Forwards: 70\r\nFrom: <sip:100@pbx.test>;tag=p1\r\nTo: {to}\r\nCall-ID: {call_id}\r\n");
    peer.send(&format!("ACK {target} SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:5999;branch=z9hG4bK{call_id}a;rport\r\n{common}CSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"));
    std::thread::sleep(Duration::from_millis(300));
    peer.send(&format!("BYE {target} SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:5999;branch=z9hG4bK{call_id}b;rport\r\n{common}CSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"));
    peer.message(Duration::from_secs(5))
}
