//! #14 SIP over TLS with an independent TLS stack: OpenSSL's `s_client` as a PBX connecting to a
//! TLS listener, and `s_server` as a carrier the edge connects to (certificates made by the
//! test with the `openssl` command: a CA, the edge's, the carrier's). Debian 12's SIPp is built
//! without TLS (`-t l1` is missing), so OpenSSL carries the SIP text; the other side of each
//! call is a SIPp over UDP.

#[macro_use]
mod common;

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use common::tls::*;
use common::*;
use xtrunk_config::{Listen, TlsFiles, Transport, TrunkTls};

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
            tls: Some(TlsFiles { cert: dir.join("edge.pem"), key: dir.join("edge.key"), client_ca: None }),
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
                tls: Some(TlsFiles { cert: dir.join("edge.pem"), key: dir.join("edge.key"), client_ca: None }),
                advertised: None,
            });
            let t = c.trunks.iter_mut().find(|t| t.name == "carrier").unwrap();
            t.targets = vec![xtrunk_config::Target {
                transport: Transport::Tls,
                ..xtrunk_config::Target::udp(SocketAddr::from(([127, 0, 0, 1], tls_port)))
            }];
            t.tls =
                Some(TrunkTls { ca: Some(dir.join("ca.pem")), server_name: Some(name.into()), ..Default::default() });
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

/// A TLS listener on `port` serving `edge.pem`, asking clients for certificates of `ca.pem`
/// when `client_ca`.
fn tls_listener(dir: &std::path::Path, port: u16, client_ca: bool) -> Listen {
    Listen {
        transport: Transport::Tls,
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        tls: Some(TlsFiles {
            cert: dir.join("edge.pem"),
            key: dir.join("edge.key"),
            client_ca: client_ca.then(|| dir.join("ca.pem")),
        }),
        advertised: None,
    }
}

/// Mutual TLS inbound: the listener asks for client certificates and the PBX trunk requires
/// one naming `pbx.test`. Its own certificate is served; one naming someone else, or none, is
/// refused before any SIP is read (counted `tls_peer_refused`); one of an unknown CA fails the
/// handshake (`tls_failed`).
#[test]
fn a_trunk_with_peer_name_admits_only_a_client_certificate_naming_it() {
    let tls_port = free_port();
    let side = Sidecar::start("tls-mutual-in", &[], |c| {
        let dir = c.node.shm_path.parent().unwrap().to_path_buf();
        make_certs(&dir, "2");
        make_cert(&dir, "ca", "pbx", "pbx.test", "2");
        make_cert(&dir, "ca", "intruder", "intruder.test", "2");
        // The right name from a CA the listener does not trust: the handshake itself fails.
        make_ca(&dir, "other-ca", "someone else's CA");
        make_cert(&dir, "other-ca", "stranger", "pbx.test", "2");
        c.sip.listen.push(tls_listener(&dir, tls_port, true));
        let t = c.trunks.iter_mut().find(|t| t.name == "pbx").unwrap();
        t.tls = Some(TrunkTls { peer_name: Some("pbx.test".into()), ..Default::default() });
    });
    let cases: [(&[&str], bool); 4] = [
        (&["-cert", "pbx.pem", "-key", "pbx.key"], true),
        (&["-cert", "intruder.pem", "-key", "intruder.key"], false),
        (&[], false),
        (&["-cert", "stranger.pem", "-key", "stranger.key"], false),
    ];
    for (i, (args, admitted)) in cases.into_iter().enumerate() {
        let mut pbx = Peer::client(&side.dir, tls_port, args);
        pbx.send(&options(i as u32 + 1));
        let answer = pbx.message(Duration::from_secs(if admitted { 10 } else { 3 }));
        let err = pbx.stderr();
        if admitted {
            let a = answer.unwrap_or_else(|| panic!("no answer with the trunk's certificate; s_client: {err}"));
            assert!(a.starts_with("SIP/2.0 200"), "{a}");
        } else {
            assert!(answer.is_none(), "case {i}: answered without a certificate naming pbx.test: {answer:?}");
        }
    }
    let s = side.stop();
    assert_eq!(s.metrics.tcp.tls_peer_refused, 2, "wrong name, no certificate: {:?}", s.metrics.tcp);
    assert_eq!(s.metrics.tcp.tls_failed, 1, "unknown CA: {:?}", s.metrics.tcp);
}

/// Mutual TLS outbound: a carrier (`s_server -Verify`) that requires a client certificate
/// gets the trunk's `tls.cert`; without one it refuses the handshake and the call fails.
#[test]
fn the_edge_presents_the_trunks_client_certificate_to_a_carrier_that_requires_one() {
    need_sipp!();
    for with_cert in [true, false] {
        let tls_port = free_port();
        let side = Sidecar::start("tls-mutual-out", &[], |c| {
            let dir = c.node.shm_path.parent().unwrap().to_path_buf();
            make_certs(&dir, "2");
            make_cert(&dir, "ca", "edge-client", "edge.test", "2");
            c.sip.listen.push(tls_listener(&dir, 0, false));
            let t = c.trunks.iter_mut().find(|t| t.name == "carrier").unwrap();
            t.targets = vec![xtrunk_config::Target {
                transport: Transport::Tls,
                ..xtrunk_config::Target::udp(SocketAddr::from(([127, 0, 0, 1], tls_port)))
            }];
            t.tls = Some(TrunkTls {
                ca: Some(dir.join("ca.pem")),
                server_name: Some("carrier.test".into()),
                cert: with_cert.then(|| dir.join("edge-client.pem")),
                key: with_cert.then(|| dir.join("edge-client.key")),
                peer_name: None,
            });
            c.sip.target_timeout_ms = 8_000;
        });
        let accept = tls_port.to_string();
        let mut carrier = Peer::spawn(
            &side.dir,
            &[
                "s_server",
                "-accept",
                &accept,
                "-cert",
                "carrier.pem",
                "-key",
                "carrier.key",
                "-Verify",
                "1",
                "-CAfile",
                "ca.pem",
                "-quiet",
            ],
        );
        assert!(xtrunk_signaling::testing::wait_port_bound(tls_port, Duration::from_secs(10)), "s_server did not bind");
        let pbx = sipp(&side.dir, "uac", "uac_busy", free_port(), Some(side.port), 1, &[]);
        if with_cert {
            let inv = carrier.message(Duration::from_secs(10)).expect("the INVITE over mutual TLS");
            assert!(inv.starts_with("INVITE sip:"), "{inv}");
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
        if with_cert {
            assert!(a.ok, "the caller got the carrier's 486: {a:?}; s_server: {err}");
            assert_eq!(cdrs[0]["attempts"][0]["code"], 486, "{cdrs:?}");
        } else {
            assert!(!a.ok, "no call without the client certificate: {a:?}");
            assert_eq!(s.metrics.tcp.tls_failed, 1, "the refused handshake is counted: {:?}", s.metrics.tcp);
            println!("s_server saw: {err}");
        }
    }
}

const SRTP_SDP: &str = "v=0\r\no=pbx 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 7000 RTP/SAVP 8\r\na=rtpmap:8 PCMA/8000\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR\r\n";

/// `srtp_with_tls` on a trunk whose `srtp` is off: over TLS its calls must use SRTP. A `sips:`
/// call with SDES crypto goes through (our answer carries crypto, our Contact is `sips:`
/// without `;transport=tls`, RFC 5630); an RTP-only offer over TLS is refused 488.
#[test]
fn srtp_with_tls_takes_a_sips_call_with_sdes_and_refuses_rtp_only() {
    need_sipp!();
    let uas_port = free_port();
    let tls_port = free_port();
    let side = Sidecar::start("tls-srtp", &[uas_port], |c| {
        let dir = c.node.shm_path.parent().unwrap().to_path_buf();
        make_certs(&dir, "2");
        c.sip.listen.push(tls_listener(&dir, tls_port, false));
        let t = c.trunks.iter_mut().find(|t| t.name == "pbx").unwrap();
        t.srtp_with_tls = true;
        t.srtp_suites = vec!["AES_CM_128_HMAC_SHA1_80".into()];
    });
    let uas = sipp(&side.dir, "uas", "uas_basic", uas_port, None, 1, &[]);
    let mut pbx = Peer::client(&side.dir, tls_port, &[]);
    pbx.send(&invite("sips:4930123@edge.test", "tls-srtp-1", SRTP_SDP));
    let ok = pbx.final_response(Duration::from_secs(10)).expect("a final answer to the SRTP call");
    assert!(ok.starts_with("SIP/2.0 200"), "{ok}");
    assert!(
        ok.contains("m=audio ") && ok.contains("RTP/SAVP") && ok.contains("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"),
        "{ok}"
    );
    let contact = header(&ok, "Contact").unwrap();
    assert!(
        contact.starts_with("<sips:") && !contact.contains("transport="),
        "sips: Contact toward a sips: caller: {contact}"
    );
    let bye_ok = ack_and_bye(&mut pbx, &ok, "tls-srtp-1").expect("200 to BYE");
    assert!(bye_ok.starts_with("SIP/2.0 200"), "{bye_ok}");
    pbx.send(&invite("sip:4930123@edge.test;transport=tls", "tls-srtp-2", SDP));
    let refused = pbx.final_response(Duration::from_secs(10)).expect("a final answer to the RTP-only call");
    assert!(refused.starts_with("SIP/2.0 488"), "RTP-only over TLS: {refused}");
    let b = uas.wait();
    let _ = pbx.stderr();
    let (s, cdrs) = side.stop_with_cdrs();
    assert_eq!(b.successful, 1, "{b:?}");
    assert_eq!(cdrs.iter().filter(|c| c["srtp"][0] == true).count(), 1, "{cdrs:?}");
    assert_clean(&s);
}

/// RFC 5630: a `sips:` Request-URI over UDP is refused (480), never served in the clear.
#[test]
fn a_sips_request_over_udp_is_refused() {
    let side = Sidecar::start("tls-sips-udp", &[], |_| {});
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let me = sock.local_addr().unwrap();
    let inv = invite("sips:4930123@edge.test", "udp-sips-1", SDP)
        .replace("SIP/2.0/TLS 127.0.0.1:5999", &format!("SIP/2.0/UDP {me}"));
    sock.send_to(inv.as_bytes(), ("127.0.0.1", side.port)).unwrap();
    let mut buf = [0u8; 4096];
    let n = sock.recv(&mut buf).expect("an answer to the sips: INVITE over UDP");
    let r = String::from_utf8_lossy(&buf[..n]).to_string();
    assert!(r.starts_with("SIP/2.0 480"), "{r}");
    let s = side.stop();
    assert_eq!(s.active_calls, 0);
}

/// SIGHUP (the reload flag) swaps the listener's certificate: a new connection is served the
/// new one (its fingerprint), and a connection opened before keeps working.
#[test]
fn a_reload_swaps_the_certificate_and_keeps_open_connections() {
    let tls_port = free_port();
    // A carrier target and a session count the media range holds: the file must validate.
    let side = Sidecar::start_reloadable("tls-swap", &[free_port()], |c| {
        let dir = c.node.shm_path.parent().unwrap().to_path_buf();
        make_certs(&dir, "2");
        c.sip.listen.push(tls_listener(&dir, tls_port, false));
        c.datapath.max_sessions = 1000;
    });
    let dir = side.dir.to_path_buf();
    let old = fingerprint(&std::fs::read_to_string(dir.join("edge.pem")).unwrap());
    let mut open = Peer::client(&dir, tls_port, &[]);
    open.send(&options(1));
    let a = open.message(Duration::from_secs(10)).expect("OPTIONS answered before the swap");
    assert!(a.starts_with("SIP/2.0 200"), "{a}");
    assert_eq!(fingerprint(&served_certificate(&dir, tls_port)), old);
    // The operator replaces the files (same paths) and sends SIGHUP.
    make_cert(&dir, "ca", "edge-new", "edge.test", "2");
    std::fs::copy(dir.join("edge-new.pem"), dir.join("edge.pem")).unwrap();
    std::fs::copy(dir.join("edge-new.key"), dir.join("edge.key")).unwrap();
    let new = fingerprint(&std::fs::read_to_string(dir.join("edge.pem")).unwrap());
    assert_ne!(old, new);
    side.reload();
    assert_eq!(fingerprint(&served_certificate(&dir, tls_port)), new, "a new connection gets the new certificate");
    open.send(&options(2));
    let b = open.message(Duration::from_secs(10)).expect("the connection opened before the swap still works");
    assert!(b.starts_with("SIP/2.0 200"), "{b}");
    let _ = open.stderr();
    let s = side.stop();
    assert_eq!(s.metrics.tcp.tls_failed, 0);
}

/// A `sips:` dialog keeps `sips:` toward its caller: the callee hangs up (`uas_bye`) and the
/// edge's BYE over the caller's TLS connection carries a `sips:` Contact (RFC 3261 §12.1.1).
#[test]
fn a_sips_dialog_keeps_a_sips_contact_in_the_edges_requests() {
    need_sipp!();
    let uas_port = free_port();
    let tls_port = free_port();
    let side = Sidecar::start("tls-sips-bye", &[uas_port], |c| {
        let dir = c.node.shm_path.parent().unwrap().to_path_buf();
        make_certs(&dir, "2");
        c.sip.listen.push(tls_listener(&dir, tls_port, false));
    });
    let uas = sipp(&side.dir, "uas", "uas_bye", uas_port, None, 1, &[]);
    let mut pbx = Peer::client(&side.dir, tls_port, &[]);
    pbx.send(&invite("sips:4930123@edge.test", "tls-sips-bye", SDP));
    let ok = pbx.final_response(Duration::from_secs(10)).expect("a final answer");
    assert!(ok.starts_with("SIP/2.0 200"), "{ok}");
    assert!(header(&ok, "Contact").unwrap().starts_with("<sips:"), "{ok}");
    let to = header(&ok, "To").unwrap().to_string();
    let target = header(&ok, "Contact").unwrap().trim_matches(|c| c == '<' || c == '>').to_string();
    pbx.send(&format!("ACK {target} SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:5999;branch=z9hG4bKsbye-a;rport\r\nMax-Forwards: 70\r\nFrom: <sip:100@pbx.test>;tag=p1\r\nTo: {to}\r\nCall-ID: tls-sips-bye\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"));
    let bye = pbx.message(Duration::from_secs(10)).expect("the callee's BYE relayed over TLS");
    assert!(bye.starts_with("BYE sip:100@127.0.0.1:5999;transport=tls SIP/2.0"), "{bye}");
    let contact = header(&bye, "Contact").unwrap();
    assert!(contact.starts_with("<sips:") && !contact.contains("transport="), "{contact}");
    let copy = |h: &str| header(&bye, h).unwrap().to_string();
    pbx.send(&format!(
        "SIP/2.0 200 OK\r\nVia: {}\r\nFrom: {}\r\nTo: {}\r\nCall-ID: {}\r\nCSeq: {}\r\nContent-Length: 0\r\n\r\n",
        copy("Via"),
        copy("From"),
        copy("To"),
        copy("Call-ID"),
        copy("CSeq")
    ));
    let b = uas.wait();
    let _ = pbx.stderr();
    let (s, _) = side.stop_with_cdrs();
    assert_eq!(b.successful, 1, "{b:?}");
    assert_clean(&s);
}
