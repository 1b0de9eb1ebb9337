//! Digest authentication and scanner resistance over real UDP against the in-process sidecar,
//! with our own small client (issue #14): SHA-256 (Debian's SIPp has MD5 only), byte-identical
//! answers for an unknown user and a wrong password, replayed and stale nonces, and a scripted
//! sweep of 500 extensions from a source outside every ACL.

#[macro_use]
mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use common::*;
use xtrunk_config::{AuthMode, Config, Route, TrunkRole, TrunkUser};
use xtrunk_signaling::auth::digest::{authorization, Algorithm, Challenge};

/// A digest-only PBX trunk ("pbx", alice/secret) and a carrier at 127.0.0.1:`carrier`.
fn digest_config(c: &mut Config, carrier: u16) {
    let mut pbx = trunk("pbx", TrunkRole::Customer, &[], &[]);
    pbx.auth = AuthMode::Digest;
    pbx.users = vec![TrunkUser {
        username: "alice".into(),
        password: None,
        ha1_md5: None,
        ha1_sha256: Some(Algorithm::Sha256.ha1("alice", "xtrunk-test", "secret")),
        ha1_sha512_256: None,
    }];
    c.node.name = "xtrunk-test".into();
    c.trunks = vec![pbx, trunk("carrier", TrunkRole::Carrier, &[], &[carrier])];
    c.routes = vec![Route::to("", Some("pbx"), "carrier")];
}

struct Client {
    sock: UdpSocket,
    to: SocketAddr,
    n: u32,
}

impl Client {
    fn new(ip: &str, port: u16) -> Self {
        let sock = UdpSocket::bind((ip, 0)).unwrap();
        Self { sock, to: SocketAddr::from(([127, 0, 0, 1], port)), n: 0 }
    }

    fn local(&self) -> SocketAddr {
        self.sock.local_addr().unwrap()
    }

    /// A request; returns its Call-ID and branch.
    fn send(&mut self, method: &str, ext: &str, call_id: &str, extra: &str) -> String {
        self.n += 1;
        let (l, n) = (self.local(), self.n);
        let uri = format!("sip:{ext}@{}", self.to);
        let branch = format!("z9hG4bKc{n}");
        let (ctype, body) = if method == "INVITE" {
            (
                "Content-Type: application/sdp\r\n",
                "v=0\r\no=a 1 1 IN IP4 127.0.0.9\r\ns=-\r\nc=IN IP4 127.0.0.9\r\nt=0 0\r\nm=audio 7000 RTP/AVP 8\r\n",
            )
        } else {
            ("", "")
        };
        let m = format!(
            "{method} {uri} SIP/2.0\r\nVia: SIP/2.0/UDP {l};branch={branch};rport\r\nFrom: <sip:pbx@{l}>;tag=f{n}\r\n\
             To: <sip:{ext}@{}>\r\nCall-ID: {call_id}\r\nCSeq: 1 {method}\r\nContact: <sip:pbx@{l}>\r\nMax-Forwards: 70\r\n\
             {extra}{ctype}Content-Length: {}\r\n\r\n{body}",
            self.to,
            body.len()
        );
        self.sock.send_to(m.as_bytes(), self.to).unwrap();
        branch
    }

    /// The next final response for `call_id` within `wait`.
    fn final_for(&self, call_id: &str, wait: Duration) -> Option<String> {
        let end = Instant::now() + wait;
        let mut buf = vec![0u8; 65_535];
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            self.sock.set_read_timeout(Some(left.max(Duration::from_millis(1)))).unwrap();
            let Ok((n, _)) = self.sock.recv_from(&mut buf) else { return None };
            let r = String::from_utf8_lossy(&buf[..n]).into_owned();
            if header(&r, "Call-ID").as_deref() == Some(call_id) && !r.starts_with("SIP/2.0 1") {
                return Some(r);
            }
        }
        None
    }

    /// ACKs a non-2xx final (same branch; To with the response's tag).
    fn ack(&self, resp: &str, ext: &str, branch: &str) {
        let l = self.local();
        let m = format!(
            "ACK sip:{ext}@{} SIP/2.0\r\nVia: SIP/2.0/UDP {l};branch={branch};rport\r\nFrom: {}\r\nTo: {}\r\n\
             Call-ID: {}\r\nCSeq: 1 ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
            self.to,
            header(resp, "From").unwrap(),
            header(resp, "To").unwrap(),
            header(resp, "Call-ID").unwrap()
        );
        self.sock.send_to(m.as_bytes(), self.to).unwrap();
    }
}

fn header(m: &str, name: &str) -> Option<String> {
    m.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
    })
}

fn headers<'a>(m: &'a str, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    m.lines().filter_map(move |l| {
        let (n, v) = l.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// `m` with tag, branch and nonce values and the Call-ID replaced by `*`.
fn mask(m: &str) -> String {
    let mut out = String::new();
    for line in m.split("\r\n") {
        if line.to_ascii_lowercase().starts_with("call-id:") {
            out.push_str("Call-ID: *\r\n");
            continue;
        }
        let mut l = line.to_string();
        for key in ["branch=", "tag=", "nonce=\""] {
            let mut from = 0;
            while let Some(i) = l[from..].find(key).map(|i| i + from + key.len()) {
                let end = l[i..].find([';', ',', '>', '"', ' ']).map_or(l.len(), |j| i + j);
                l.replace_range(i..end, "*");
                from = i + 1;
            }
        }
        out.push_str(&l);
        out.push_str("\r\n");
    }
    out
}

/// Sends an INVITE with no credentials and returns the challenge (ACKed).
fn challenge(c: &mut Client, ext: &str, call_id: &str) -> String {
    let b = c.send("INVITE", ext, call_id, "");
    let r = c.final_for(call_id, Duration::from_secs(3)).expect("a challenge");
    c.ack(&r, ext, &b);
    assert!(r.starts_with("SIP/2.0 407 Proxy Authentication Required\r\n"), "{r}");
    r
}

fn creds(r: &str, alg: Algorithm, user: &str, pass: &str, uri: &str, nc: u32) -> String {
    let v = headers(r, "Proxy-Authenticate").find(|v| v.contains(alg.as_str())).expect("offered");
    let (realm, nonce, a, _) = Challenge::parse(v).unwrap();
    assert_eq!(a, alg);
    format!(
        "Proxy-Authorization: {}\r\n",
        authorization(alg, user, &realm, pass, &nonce, "INVITE", uri, (nc, "c0ffee"))
    )
}

#[test]
fn sha256_call_with_our_client_reaches_the_carrier() {
    let cport = free_port();
    let carrier = UdpSocket::bind(("127.0.0.1", cport)).unwrap();
    let side = Sidecar::start("digest-sha256", &[cport], |c| digest_config(c, cport));
    let mut c = Client::new("127.0.0.2", side.port);
    let r = challenge(&mut c, "4930123", "sha1");
    let offered: Vec<&str> = headers(&r, "Proxy-Authenticate").collect();
    assert_eq!(offered.len(), 2, "{r}");
    assert!(offered[0].contains("algorithm=SHA-256") && offered[1].contains("algorithm=MD5"), "{offered:?}");
    assert!(header(&r, "Server").is_none() && header(&r, "User-Agent").is_none(), "{r}");
    let uri = format!("sip:4930123@{}", c.to);
    let auth = creds(&r, Algorithm::Sha256, "alice", "secret", &uri, 1);
    c.send("INVITE", "4930123", "sha2", &auth);
    carrier.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let mut buf = vec![0u8; 65_535];
    let (n, _) = carrier.recv_from(&mut buf).expect("the call reaches the carrier");
    assert!(buf[..n].starts_with(b"INVITE "));
    let s = side.stop();
    assert_eq!(s.metrics.auth.ok.get("pbx"), Some(&1));
}

#[test]
fn unknown_user_and_wrong_password_are_byte_identical() {
    let cport = free_port();
    let side = Sidecar::start("digest-enum", &[cport], |c| digest_config(c, cport));
    let mut c = Client::new("127.0.0.2", side.port);
    let uri = format!("sip:100@{}", c.to);
    let mut answers = Vec::new();
    for (i, (user, pass)) in [("alice", "wrong"), ("nobody", "secret"), ("alice", "wrong")].iter().enumerate() {
        let r = challenge(&mut c, "100", &format!("e{i}a"));
        let auth = creds(&r, Algorithm::Sha256, user, pass, &uri, 1);
        let id = format!("e{i}b");
        let b = c.send("INVITE", "100", &id, &auth);
        let r = c.final_for(&id, Duration::from_secs(3)).expect("an answer");
        c.ack(&r, "100", &b);
        answers.push(r);
    }
    // Every request differs only in its branch, From tag and Call-ID (masked); the answers
    // differ only in what we generate per request (tag, nonce).
    let masked: Vec<String> = answers.iter().map(|a| mask(a)).collect();
    assert_eq!(masked[0], masked[1], "byte for byte, after masking");
    assert_eq!(masked[0], masked[2]);
    assert!(masked[1].starts_with("SIP/2.0 407 "), "{}", masked[1]);
    let s = side.stop();
    assert_eq!(s.metrics.auth.failed.get("bad_password"), Some(&2));
    assert_eq!(s.metrics.auth.failed.get("unknown_user"), Some(&1));
}

#[test]
fn replayed_nonce_count_and_stale_nonce() {
    let cport = free_port();
    let carrier = UdpSocket::bind(("127.0.0.1", cport)).unwrap();
    let side = Sidecar::start("digest-replay", &[cport], |c| {
        digest_config(c, cport);
        c.sip.auth.nonce_lifetime_secs = 1;
    });
    let mut c = Client::new("127.0.0.2", side.port);
    let uri = format!("sip:200@{}", c.to);
    let r = challenge(&mut c, "200", "r1");
    let auth = creds(&r, Algorithm::Sha256, "alice", "secret", &uri, 1);
    c.send("INVITE", "200", "r2", &auth);
    carrier.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let mut buf = vec![0u8; 65_535];
    assert!(carrier.recv_from(&mut buf).is_ok(), "the first use is a call");
    // The same credentials again (same nonce, same nc): a fresh challenge, not stale.
    let b = c.send("INVITE", "200", "r3", &auth);
    let again = c.final_for("r3", Duration::from_secs(3)).expect("an answer");
    c.ack(&again, "200", &b);
    assert!(again.starts_with("SIP/2.0 407 ") && !again.contains("stale=true"), "{again}");
    // Right password, nonce past its lifetime: stale=true.
    let r = challenge(&mut c, "200", "s1");
    std::thread::sleep(Duration::from_millis(2100));
    let auth = creds(&r, Algorithm::Sha256, "alice", "secret", &uri, 1);
    let b = c.send("INVITE", "200", "s2", &auth);
    let st = c.final_for("s2", Duration::from_secs(3)).expect("an answer");
    c.ack(&st, "200", &b);
    assert!(st.starts_with("SIP/2.0 407 ") && st.contains("stale=true"), "{st}");
    let s = side.stop();
    assert_eq!(s.metrics.auth.failed.get("replay"), Some(&1));
    assert_eq!(s.metrics.auth.stale, 1);
}

/// What a scanner can tell from an answer: its status line and header names, the challenge
/// with its nonce masked.
fn shape(r: &str) -> String {
    let mut s: Vec<String> = vec![r.lines().next().unwrap_or("").to_string()];
    let names: BTreeSet<&str> = r.lines().skip(1).filter_map(|l| l.split_once(':').map(|(n, _)| n)).collect();
    s.extend(names.into_iter().map(String::from));
    s.extend(headers(r, "Proxy-Authenticate").map(mask));
    s.join("|")
}

#[test]
fn a_sweep_of_500_extensions_learns_nothing_and_is_banned_then_unbanned() {
    let cport = free_port();
    let carrier = UdpSocket::bind(("127.0.0.1", cport)).unwrap();
    carrier.set_nonblocking(true).unwrap();
    let side = Sidecar::start("digest-sweep", &[cport], |c| {
        digest_config(c, cport);
        c.sip.auth.ban_failures = 100;
        c.sip.auth.ban_secs = 3;
    });
    let mut c = Client::new("127.0.0.4", side.port);
    for ext in 0..500 {
        for m in ["OPTIONS", "REGISTER", "INVITE"] {
            c.send(m, &format!("{}", 1000 + ext), &format!("{m}-{ext}"), "");
        }
        if ext % 20 == 0 {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    // Collect every answer for a second.
    let mut by_method: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut answered = BTreeSet::new();
    let mut buf = vec![0u8; 65_535];
    c.sock.set_read_timeout(Some(Duration::from_millis(1000))).unwrap();
    while let Ok((n, _)) = c.sock.recv_from(&mut buf) {
        let r = String::from_utf8_lossy(&buf[..n]).into_owned();
        let id = header(&r, "Call-ID").unwrap_or_default();
        let method = id.split('-').next().unwrap_or("").to_string();
        by_method.entry(method).or_default().insert(shape(&r));
        answered.insert(id);
    }
    for (m, shapes) in &by_method {
        assert_eq!(shapes.len(), 1, "{m}: the answers differ: {shapes:#?}");
    }
    assert!(!by_method.contains_key("OPTIONS"), "OPTIONS from an outsider are not answered");
    assert!(answered.len() <= 100, "{} probes answered before the ban", answered.len());
    let mut b2 = [0u8; 2048];
    assert!(carrier.recv_from(&mut b2).is_err(), "no call is placed");
    // Still banned: silence.
    let id = "REGISTER-late";
    c.send("REGISTER", "1", id, "");
    assert!(c.final_for(id, Duration::from_millis(500)).is_none());
    // After the ban time the source is heard again.
    std::thread::sleep(Duration::from_millis(3000));
    let id = "REGISTER-after";
    c.send("REGISTER", "1", id, "");
    let r = c.final_for(id, Duration::from_secs(2)).expect("answered after the ban");
    assert!(r.starts_with("SIP/2.0 403 "), "{r}");
    let s = side.stop();
    assert_eq!(s.metrics.auth.bans, 1);
    assert!(s.metrics.auth.banned_drops >= 1000, "{:?}", s.metrics.auth);
    assert_eq!(s.metrics.calls_started, 0);
}

#[test]
fn unknown_source_403_or_silence() {
    for (mode, want) in [(xtrunk_config::UnknownSource::Forbidden, true), (xtrunk_config::UnknownSource::Drop, false)] {
        let cport = free_port();
        let side = Sidecar::start("unknown-source", &[cport], |c| {
            c.trunks[0].acl = vec!["127.0.0.1/32".parse().unwrap()];
            c.sip.unknown_source = mode;
        });
        let mut c = Client::new("127.0.0.6", side.port);
        for m in ["INVITE", "REGISTER", "OPTIONS"] {
            let id = format!("u-{m}");
            c.send(m, "100", &id, "");
            let r = c.final_for(&id, Duration::from_millis(600));
            let expect = want && m != "OPTIONS";
            assert_eq!(r.is_some(), expect, "{mode:?} {m}: {r:?}");
            if let Some(r) = r {
                assert!(r.starts_with("SIP/2.0 403 "), "{r}");
            }
        }
        let s = side.stop();
        assert_eq!(s.metrics.calls_started, 0);
        assert_eq!(s.metrics.auth.unknown_dropped, if want { 0 } else { 2 });
    }
}

/// A challenge keeps no transaction, yet a retransmitted INVITE (its 407 lost) gets the same
/// 407 byte for byte: same To tag, same nonce (`auth::recent`). One challenge is counted.
#[test]
fn a_retransmitted_invite_gets_the_same_challenge_bytes() {
    let cport = free_port();
    let side = Sidecar::start("digest-retrans", &[cport], |c| digest_config(c, cport));
    let c = Client::new("127.0.0.2", side.port);
    let l = c.local();
    let body = "v=0\r\no=a 1 1 IN IP4 127.0.0.9\r\ns=-\r\nc=IN IP4 127.0.0.9\r\nt=0 0\r\nm=audio 7000 RTP/AVP 8\r\n";
    let inv = format!(
        "INVITE sip:4930123@{to} SIP/2.0\r\nVia: SIP/2.0/UDP {l};branch=z9hG4bKretx1;rport\r\nFrom: <sip:pbx@{l}>;tag=fr\r\n\
         To: <sip:4930123@{to}>\r\nCall-ID: retx-1\r\nCSeq: 1 INVITE\r\nContact: <sip:pbx@{l}>\r\nMax-Forwards: 70\r\n\
         Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
        body.len(),
        to = c.to
    );
    c.sock.send_to(inv.as_bytes(), c.to).unwrap();
    let first = c.final_for("retx-1", Duration::from_secs(3)).expect("a challenge");
    c.sock.send_to(inv.as_bytes(), c.to).unwrap();
    let second = c.final_for("retx-1", Duration::from_secs(3)).expect("the challenge again");
    assert!(first.starts_with("SIP/2.0 407 "), "{first}");
    assert_eq!(first, second, "a retransmission is answered with the same bytes");
    c.ack(&first, "4930123", "z9hG4bKretx1");
    let s = side.stop();
    assert_eq!(s.metrics.auth.challenges, 1, "{:?}", s.metrics.auth);
}
