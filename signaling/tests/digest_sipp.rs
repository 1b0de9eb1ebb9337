//! Digest authentication with real SIPp peers (issue #14): a PBX outside every ACL places calls
//! with its credentials; wrong password and unknown user get a fresh `407` and no call.
//!
//! The PBX runs on 127.0.0.2 (no trunk's ACL holds it, no target is there); the carrier on
//! 127.0.0.1. Debian's SIPp 3.6.1 computes MD5 digests only (`auth.c`: MD5 and AKAv1-MD5), and
//! takes the first `Proxy-Authenticate` it sees, so these runs offer MD5 alone
//! (`sip.auth.algorithms = ["MD5"]`); SHA-256 is tested in `digest.rs` with our own client.

#[macro_use]
mod common;

use common::*;
use xtrunk_config::{AuthMode, Config, DigestAlgorithm, Route, TrunkRole, TrunkUser};

const PBX_IP: &str = "127.0.0.2";

/// A digest-only PBX trunk ("pbx", user alice/secret) and the carrier at `carrier`.
fn digest_config(c: &mut Config, carrier: u16) {
    let mut pbx = trunk("pbx", TrunkRole::Customer, &[], &[]);
    pbx.auth = AuthMode::Digest;
    pbx.users = vec![TrunkUser {
        username: "alice".into(),
        password: Some("secret".into()),
        ha1_md5: None,
        ha1_sha256: None,
        ha1_sha512_256: None,
    }];
    c.trunks = vec![pbx, trunk("carrier", TrunkRole::Carrier, &[], &[carrier])];
    c.routes = vec![Route::to("", Some("pbx"), "carrier")];
    c.sip.auth.algorithms = vec![DigestAlgorithm::Md5];
}

#[test]
fn authenticated_pbx_places_md5_calls() {
    need_sipp!();
    let uas_port = free_port();
    let side = Sidecar::start("digest-md5", &[uas_port], |c| digest_config(c, uas_port));
    let carrier = sipp(&side.dir, "uas", "uas_basic", uas_port, None, 10, &[]);
    let pbx = sipp(
        &side.dir,
        "uac",
        "uac_auth",
        free_port(),
        Some(side.port),
        10,
        &["-r", "10", "-i", PBX_IP, "-au", "alice", "-ap", "secret"],
    );
    let a = pbx.wait();
    let b = carrier.wait();
    let s = side.stop();
    assert!(a.ok && b.ok, "uac {a:?} uas {b:?} {:?}", s.metrics);
    assert_eq!((a.successful, b.successful), (10, 10));
    assert_eq!(s.metrics.auth.ok.get("pbx"), Some(&10));
    assert_eq!(s.metrics.auth.challenges, 10);
    assert!(s.metrics.auth.failed.is_empty(), "{:?}", s.metrics.auth);
    assert_clean(&s);
}

/// Wrong password and unknown user: each gets a fresh 407 (SIPp checks it), no call is placed,
/// and the two are counted apart only in the metrics.
#[test]
fn wrong_password_and_unknown_user_get_a_new_challenge() {
    need_sipp!();
    let uas_port = free_port();
    let side = Sidecar::start("digest-refused", &[uas_port], |c| digest_config(c, uas_port));
    let carrier = std::net::UdpSocket::bind(("127.0.0.1", uas_port)).unwrap();
    carrier.set_nonblocking(true).unwrap();
    for (tag, user, pass) in [("badpw", "alice", "wrong"), ("nouser", "mallory", "secret")] {
        let extra = ["-r", "10", "-i", PBX_IP, "-au", user, "-ap", pass];
        let a = sipp(&side.dir, tag, "uac_auth_refused", free_port(), Some(side.port), 5, &extra).wait();
        assert!(a.ok && a.successful == 5, "{tag}: {a:?}");
    }
    let s = side.stop();
    assert_eq!(s.metrics.auth.failed.get("bad_password"), Some(&5));
    assert_eq!(s.metrics.auth.failed.get("unknown_user"), Some(&5));
    assert!(s.metrics.auth.ok.is_empty());
    let mut buf = [0u8; 2048];
    assert!(carrier.recv_from(&mut buf).is_err(), "a call reached the carrier");
    assert_clean(&s);
}
