//! The gate on plain values: a snapshot with digest trunks, requests built from text.

use std::time::{Duration, Instant};

use super::digest::{authorization, Algorithm, Challenge};
use super::*;
use crate::sip::msg::parse;
use xtrunk_config::{Config, Host, Trunk, TrunkRole, TrunkUser};

const PBX_IP: &str = "203.0.113.9";

fn user(name: &str, password: &str) -> TrunkUser {
    TrunkUser {
        username: name.into(),
        password: Some(password.into()),
        ha1_md5: None,
        ha1_sha256: None,
        ha1_sha512_256: None,
    }
}

fn trunk(name: &str, auth: AuthMode, acl: &[&str], users: Vec<TrunkUser>) -> Trunk {
    let mut t: Trunk = Config::embedded_default().unwrap().trunks[0].clone();
    t.name = name.into();
    t.role = TrunkRole::Customer;
    t.auth = auth;
    t.acl = acl.iter().map(|a| a.parse().unwrap()).collect();
    t.users = users;
    t
}

fn snapshot() -> Snapshot {
    let mut cfg = Config::embedded_default().unwrap();
    cfg.node.name = "edge".into();
    cfg.trunks = vec![
        trunk("pbx-digest", AuthMode::Digest, &[], vec![user("alice", "secret")]),
        trunk("pbx-both", AuthMode::Both, &["198.51.100.0/24"], vec![user("bob", "hunter2")]),
        trunk("pbx-acl", AuthMode::Acl, &["192.0.2.0/24"], vec![]),
    ];
    cfg.routes.clear();
    cfg.snapshot(Host { cores: 2, check_paths: false }).unwrap()
}

fn invite(extra: &str) -> Message {
    let t = format!(
        "INVITE sip:100@edge SIP/2.0\r\nVia: SIP/2.0/UDP {PBX_IP}:5060;branch=z9hG4bKx\r\nFrom: <sip:a@b>;tag=1\r\n\
         To: <sip:100@edge>\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\nMax-Forwards: 70\r\n{extra}Content-Length: 0\r\n\r\n"
    );
    parse(t.as_bytes()).unwrap()
}

fn with_creds(auth: &mut Auth, now: Instant, ip: IpAddr, alg: Algorithm, u: &str, p: &str, nc: u32) -> Message {
    let ch = auth.challenges(now, ip, false);
    let (realm, nonce, _, _) = Challenge::parse(&ch[0]).unwrap();
    let h = authorization(alg, u, &realm, p, &nonce, "INVITE", "sip:100@edge", (nc, "cn0"));
    invite(&format!("Proxy-Authorization: {h}\r\n"))
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

#[test]
fn challenges_sha256_first_then_md5() {
    let cfg = snapshot();
    let mut a = Auth::new(&cfg, &Seed::from(1), Instant::now());
    let ch = a.challenges(Instant::now(), ip(PBX_IP), false);
    assert_eq!(ch.len(), 2);
    assert!(ch[0].starts_with("Digest realm=\"edge\", nonce=\"") && ch[0].contains("algorithm=SHA-256"));
    assert!(ch[1].contains("algorithm=MD5") && ch[1].contains("qop=\"auth\""));
}

#[test]
fn acl_trunks_pass_as_before_and_outsiders_are_challenged() {
    let cfg = snapshot();
    let now = Instant::now();
    let mut a = Auth::new(&cfg, &Seed::from(1), now);
    assert_eq!(a.gate(&cfg, &invite(""), ip("192.0.2.1"), now).gate, Gate::Pass(None));
    let v = a.gate(&cfg, &invite(""), ip(PBX_IP), now);
    assert_eq!(v, Verdict { gate: Gate::Challenge { stale: false }, failed: Some("no_credentials") });
}

#[test]
fn good_credentials_every_algorithm_identify_the_trunk() {
    let cfg = snapshot();
    let now = Instant::now();
    let mut a = Auth::new(&cfg, &Seed::from(1), now);
    let t = cfg.trunk_by_name("pbx-digest").unwrap();
    for (nc, alg) in [(1, Algorithm::Sha256), (2, Algorithm::Md5)] {
        // The same nonce (same second, same source): the count goes up.
        let req = with_creds(&mut a, now, ip(PBX_IP), alg, "alice", "secret", nc);
        assert_eq!(a.gate(&cfg, &req, ip(PBX_IP), now).gate, Gate::Pass(Some(t)), "{alg:?}");
    }
    // SHA-512-256 is not offered by default: refused like a wrong password.
    let req = with_creds(&mut a, now, ip(PBX_IP), Algorithm::Sha512_256, "alice", "secret", 3);
    assert_eq!(a.gate(&cfg, &req, ip(PBX_IP), now).failed, Some("algorithm"));
}

#[test]
fn unknown_user_and_bad_password_get_the_same_challenge() {
    let cfg = snapshot();
    let now = Instant::now();
    let mut a = Auth::new(&cfg, &Seed::from(1), now);
    let bad = with_creds(&mut a, now, ip(PBX_IP), Algorithm::Md5, "alice", "wrong", 1);
    let unknown = with_creds(&mut a, now, ip(PBX_IP), Algorithm::Md5, "mallory", "secret", 1);
    let (v1, v2) = (a.gate(&cfg, &bad, ip(PBX_IP), now), a.gate(&cfg, &unknown, ip(PBX_IP), now));
    assert_eq!(v1.gate, v2.gate);
    assert_eq!((v1.failed, v2.failed), (Some("bad_password"), Some("unknown_user")));
}

#[test]
fn replayed_nonce_count_and_foreign_source_refused() {
    let cfg = snapshot();
    let now = Instant::now();
    let mut a = Auth::new(&cfg, &Seed::from(1), now);
    let req = with_creds(&mut a, now, ip(PBX_IP), Algorithm::Sha256, "alice", "secret", 1);
    assert!(matches!(a.gate(&cfg, &req, ip(PBX_IP), now).gate, Gate::Pass(Some(_))));
    assert_eq!(a.gate(&cfg, &req, ip(PBX_IP), now).failed, Some("replay"));
    // The nonce was issued to another address.
    assert_eq!(a.gate(&cfg, &req, ip("203.0.113.10"), now).failed, Some("bad_nonce"));
}

#[test]
fn stale_nonce_with_right_password_gets_stale_true() {
    let cfg = snapshot();
    let now = Instant::now();
    let mut a = Auth::new(&cfg, &Seed::from(1), now);
    let req = with_creds(&mut a, now, ip(PBX_IP), Algorithm::Md5, "alice", "secret", 1);
    let later = now + Duration::from_secs(301);
    assert_eq!(a.gate(&cfg, &req, ip(PBX_IP), later), Verdict { gate: Gate::Challenge { stale: true }, failed: None });
    let bad = with_creds(&mut a, now, ip(PBX_IP), Algorithm::Md5, "alice", "nope", 1);
    assert_eq!(a.gate(&cfg, &bad, ip(PBX_IP), later).gate, Gate::Challenge { stale: false });
}

#[test]
fn both_needs_the_acl_and_the_trunks_own_user() {
    let cfg = snapshot();
    let now = Instant::now();
    let mut a = Auth::new(&cfg, &Seed::from(1), now);
    let inside = ip("198.51.100.4");
    assert_eq!(a.gate(&cfg, &invite(""), inside, now).gate, Gate::Challenge { stale: false });
    let bob = with_creds(&mut a, now, inside, Algorithm::Md5, "bob", "hunter2", 1);
    assert_eq!(a.gate(&cfg, &bob, inside, now).gate, Gate::Pass(cfg.trunk_by_name("pbx-both")));
    let alice = with_creds(&mut a, now, inside, Algorithm::Md5, "alice", "secret", 1);
    assert_eq!(a.gate(&cfg, &alice, inside, now).failed, Some("wrong_trunk"));
    // bob from outside the ACL: a "both" user cannot come from anywhere.
    let out = with_creds(&mut a, now, ip(PBX_IP), Algorithm::Md5, "bob", "hunter2", 1);
    assert_eq!(a.gate(&cfg, &out, ip(PBX_IP), now).failed, Some("wrong_trunk"));
}

#[test]
fn digest_uri_is_the_request_uri_or_its_host_part() {
    assert!(uri_matches("sip:100@edge:5060", "sip:100@edge:5060"));
    assert!(uri_matches("sip:100@edge:5060", "sip:edge:5060"));
    assert!(!uri_matches("sip:100@edge:5060", "sip:other:5060"));
    assert!(!uri_matches("sip:100@edge:5060", "sip:200@edge:5060"));
    assert!(!uri_matches("sip:edge", "sip:x"));
}

#[test]
fn no_digest_trunk_means_unknown_source() {
    let mut raw = Config::embedded_default().unwrap();
    raw.trunks.retain(|t| t.auth == AuthMode::Acl);
    let cfg = raw.snapshot(Host { cores: 2, check_paths: false }).unwrap();
    let now = Instant::now();
    let mut a = Auth::new(&cfg, &Seed::from(1), now);
    assert_eq!(a.gate(&cfg, &invite(""), ip(PBX_IP), now).gate, Gate::Unknown);
}

#[test]
fn ha1_in_config_and_rfc2069_md5() {
    let mut raw = Config::embedded_default().unwrap();
    raw.node.name = "edge".into();
    let ha1 = Algorithm::Md5.ha1("carol", "edge", "pw");
    let u = TrunkUser {
        username: "carol".into(),
        password: None,
        ha1_md5: Some(ha1.to_uppercase()),
        ha1_sha256: None,
        ha1_sha512_256: None,
    };
    raw.trunks = vec![trunk("p", AuthMode::Digest, &[], vec![u])];
    raw.routes.clear();
    let cfg = raw.snapshot(Host { cores: 2, check_paths: false }).unwrap();
    let now = Instant::now();
    let mut a = Auth::new(&cfg, &Seed::from(1), now);
    let ch = a.challenges(now, ip(PBX_IP), false);
    let (_, nonce, _, _) = Challenge::parse(&ch[1]).unwrap();
    let r = digest::response(Algorithm::Md5, &ha1, &nonce, None, "INVITE", "sip:100@edge");
    let h =
        format!("Digest username=\"carol\", realm=\"edge\", nonce=\"{nonce}\", uri=\"sip:100@edge\", response=\"{r}\"");
    let req = invite(&format!("Authorization: {h}\r\n"));
    assert!(matches!(a.gate(&cfg, &req, ip(PBX_IP), now).gate, Gate::Pass(Some(_))));
    // SHA-256 has no HA1 for carol.
    let req = with_creds(&mut a, now, ip(PBX_IP), Algorithm::Sha256, "carol", "pw", 1);
    assert_eq!(a.gate(&cfg, &req, ip(PBX_IP), now).failed, Some("algorithm"));
}
