//! #14 SIP over TLS with an independent TLS stack: OpenSSL's `s_client` as a PBX connecting to a
//! TLS listener, and `s_server` as a carrier the edge connects to (certificates made by the
//! test with the `openssl` command: a CA, the edge's, the carrier's). Debian 12's SIPp is built
//! without TLS (`-t l1` is missing), so OpenSSL carries the SIP text; the other side of each
//! call is a SIPp over UDP.

#[macro_use]
mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::Duration;

use common::*;
use xtrunk_config::{Listen, TlsFiles, Transport, TrunkTls};

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl").args(args).current_dir(dir).output().expect("openssl");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A CA and two certificates it signed: `edge` (edge.test, 127.0.0.1) and `carrier`
/// (carrier.test, 127.0.0.1; valid `carrier_days`: "0" makes one that expires at once).
fn make_certs(dir: &Path, carrier_days: &str) {
    openssl(dir, &["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "ca.key"]);
    openssl(
        dir,
        &["req", "-x509", "-new", "-key", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=xtrunk test CA"],
    );
    for (name, host, days) in [("edge", "edge.test", "2"), ("carrier", "carrier.test", carrier_days)] {
        openssl(dir, &["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", &format!("{name}.key")]);
        let csr = format!("{name}.csr");
        openssl(dir, &["req", "-new", "-key", &format!("{name}.key"), "-out", &csr, "-subj", &format!("/CN={host}")]);
        std::fs::write(dir.join(format!("{name}.ext")), format!("subjectAltName=DNS:{host},IP:127.0.0.1\n")).unwrap();
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                days,
                "-out",
                &format!("{name}.pem"),
                "-extfile",
                &format!("{name}.ext"),
            ],
        );
    }
}

/// An OpenSSL process whose stdout lines arrive on a channel.
struct Peer {
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
}

impl Peer {
    fn spawn(dir: &Path, args: &[&str]) -> Self {
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

    fn send(&mut self, msg: &str) {
        self.stdin.write_all(msg.as_bytes()).unwrap();
        self.stdin.flush().unwrap();
    }

    /// The next SIP message (head and `Content-Length` body) it printed, within `limit`.
    fn message(&self, limit: Duration) -> Option<String> {
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

    fn stderr(mut self) -> String {
        let _ = self.child.kill();
        let mut e = String::new();
        let _ = self.child.stderr.take().unwrap().read_to_string(&mut e);
        let _ = self.child.wait();
        e
    }
}

fn header<'a>(m: &'a str, name: &str) -> Option<&'a str> {
    m.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

const SDP: &str = "v=0\r\no=pbx 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 7000 RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\n";

#[test]
fn a_pbx_over_tls_places_a_call() {
    need_sipp!();
    let uas_port = free_port();
    let tls_port = free_port();
    let side = Sidecar::start("tls-in", &[uas_port], |c| {
        let dir = c.node.shm_path.parent().unwrap().to_path_buf();
        make_certs(&dir, "2");
        c.sip.listen.push(Listen {
            transport: Transport::Tls,
            addr: SocketAddr::from(([127, 0, 0, 1], tls_port)),
            tls: Some(TlsFiles { cert: dir.join("edge.pem"), key: dir.join("edge.key") }),
            advertised: None,
        });
    });
    let uas = sipp(&side.dir, "uas", "uas_basic", uas_port, None, 1, &[]);
    let connect = format!("127.0.0.1:{tls_port}");
    let mut pbx = Peer::spawn(
        &side.dir,
        &[
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
        ],
    );
    std::thread::sleep(Duration::from_millis(500));
    let via = "SIP/2.0/TLS 127.0.0.1:5999;branch=z9hG4bKtls1;rport".to_string();
    let inv = format!(
        "INVITE sip:4930123@edge.test;transport=tls SIP/2.0\r\nVia: {via}\r\nMax-Forwards: 70\r\nFrom: <sip:100@pbx.test>;tag=p1\r\nTo: <sip:4930123@edge.test>\r\nCall-ID: tls-call-1\r\nCSeq: 1 INVITE\r\nContact: <sip:100@127.0.0.1:5999;transport=tls>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{SDP}",
        SDP.len()
    );
    pbx.send(&inv);
    let ok = loop {
        let Some(m) = pbx.message(Duration::from_secs(10)) else {
            panic!("no final answer over TLS; s_client: {}", pbx.stderr());
        };
        if m.starts_with("SIP/2.0 200") {
            break m;
        }
        assert!(m.starts_with("SIP/2.0 1"), "unexpected: {m}");
    };
    let contact = header(&ok, "Contact").unwrap();
    assert!(contact.contains("transport=tls"), "our Contact names TLS: {contact}");
    let to = header(&ok, "To").unwrap().to_string();
    let target = contact.trim_matches(|c| c == '<' || c == '>').to_string();
    pbx.send(&format!("ACK {target} SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:5999;branch=z9hG4bKtls2;rport\r\nMax-Forwards: 70\r\nFrom: <sip:100@pbx.test>;tag=p1\r\nTo: {to}\r\nCall-ID: tls-call-1\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"));
    std::thread::sleep(Duration::from_millis(300));
    pbx.send(&format!("BYE {target} SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:5999;branch=z9hG4bKtls3;rport\r\nMax-Forwards: 70\r\nFrom: <sip:100@pbx.test>;tag=p1\r\nTo: {to}\r\nCall-ID: tls-call-1\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"));
    let bye_ok = pbx.message(Duration::from_secs(5)).expect("200 to BYE");
    assert!(bye_ok.starts_with("SIP/2.0 200"), "{bye_ok}");
    let b = uas.wait();
    let _ = pbx.stderr();
    let (s, cdrs) = side.stop_with_cdrs();
    assert_eq!(b.successful, 1, "{b:?}");
    assert_eq!(cdrs.len(), 1);
    assert_clean(&s);
}

/// The edge dials a carrier over TLS (s_server), checking its certificate against the trunk's
/// CA and name; a wrong name or an expired certificate is refused (logged, counted) and the
/// call fails over.
#[test]
fn the_edge_dials_a_tls_carrier_and_refuses_a_wrong_name_or_an_expired_certificate() {
    need_sipp!();
    for (name, days, good) in
        [("carrier.test", "2", true), ("someone-else.test", "2", false), ("carrier.test", "0", false)]
    {
        let tls_port = free_port();
        let side = Sidecar::start("tls-out", &[], |c| {
            let dir = c.node.shm_path.parent().unwrap().to_path_buf();
            make_certs(&dir, days);
            c.sip.listen.push(Listen {
                transport: Transport::Tls,
                addr: SocketAddr::from(([127, 0, 0, 1], 0)),
                tls: Some(TlsFiles { cert: dir.join("edge.pem"), key: dir.join("edge.key") }),
                advertised: None,
            });
            let t = c.trunks.iter_mut().find(|t| t.name == "carrier").unwrap();
            t.targets = vec![xtrunk_config::Target {
                transport: Transport::Tls,
                ..xtrunk_config::Target::udp(SocketAddr::from(([127, 0, 0, 1], tls_port)))
            }];
            t.tls = Some(TrunkTls { ca: Some(dir.join("ca.pem")), server_name: Some(name.into()) });
            // The test answers by hand through s_server: give it time on a loaded host.
            c.sip.target_timeout_ms = 8_000;
        });
        let accept = tls_port.to_string();
        let mut carrier = Peer::spawn(
            &side.dir,
            &["s_server", "-accept", &accept, "-cert", "carrier.pem", "-key", "carrier.key", "-quiet"],
        );
        assert!(xtrunk_signaling::testing::wait_port_bound(tls_port, Duration::from_secs(10)), "s_server did not bind");
        // A 0-day certificate's notAfter is its notBefore: a second later it has expired.
        std::thread::sleep(Duration::from_millis(1100));
        let pbx = sipp(&side.dir, "uac", "uac_busy", free_port(), Some(side.port), 1, &[]);
        if good {
            let inv = carrier.message(Duration::from_secs(10)).expect("the INVITE over TLS");
            assert!(inv.starts_with("INVITE sip:"), "{inv}");
            assert!(inv.lines().next().unwrap().contains(";transport=tls"), "{inv}");
            assert!(header(&inv, "Via").unwrap().starts_with("SIP/2.0/TLS "), "{inv}");
            let copy = |h: &str| header(&inv, h).unwrap().to_string();
            carrier.send(&format!(
                "SIP/2.0 486 Busy Here\r\nVia: {}\r\nFrom: {}\r\nTo: {};tag=c1\r\nCall-ID: {}\r\nCSeq: {}\r\nContent-Length: 0\r\n\r\n",
                copy("Via"),
                copy("From"),
                copy("To"),
                copy("Call-ID"),
                copy("CSeq")
            ));
        }
        let a = pbx.wait();
        let (s, cdrs) = side.stop_with_cdrs();
        let err = carrier.stderr();
        if good {
            assert!(a.ok, "the caller got the carrier's 486 (uac_busy): {a:?}");
            assert_eq!(cdrs[0]["attempts"][0]["code"], 486, "{cdrs:?}");
        } else {
            assert!(!a.ok, "no call through a carrier with the wrong name: {a:?}");
            assert_eq!(s.metrics.tcp.tls_failed, 1, "the handshake failure is counted");
            assert!(cdrs[0]["attempts"][0]["code"] != 486, "{cdrs:?}");
            println!("s_server saw: {err}");
        }
    }
}
