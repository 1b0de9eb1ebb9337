//! #14 accept-register trunks: a PBX registers its contact (RFC 3261 §10.3: `423` below the
//! minimum expiry, `200` listing the bindings), calls for the trunk then reach it at that
//! contact over the flow it registered from (SIPp as the PBX), a call with no binding is `480`,
//! and the binding survives a restart of the sidecar.

#[macro_use]
mod common;

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use common::*;
use xtrunk_config::{Route, TrunkKind, TrunkRole};

const OFFICE_IP: [u8; 4] = [127, 0, 0, 2];

fn office_side(name: &str, shm: Option<std::path::PathBuf>) -> Sidecar {
    Sidecar::start(name, &[], move |c| {
        c.trunks[0].acl = vec!["127.0.0.1/32".parse().unwrap()];
        let mut office = trunk("office", TrunkRole::Customer, &["127.0.0.2/32"], &[]);
        office.kind = TrunkKind::AcceptRegister;
        c.trunks.push(office);
        c.routes = vec![Route::to("", Some("pbx"), "office")];
        if let Some(p) = shm {
            c.node.shm_path = p;
        }
    })
}

/// Sends one REGISTER from `sock` and returns the response text.
fn register(sock: &UdpSocket, edge: u16, expires: u32, cseq: u32) -> String {
    let me = sock.local_addr().unwrap();
    let msg = format!(
        "REGISTER sip:127.0.0.1:{edge} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bKreg{cseq};rport\r\nMax-Forwards: 70\r\nFrom: <sip:office@edge>;tag=r1\r\nTo: <sip:office@edge>\r\nCall-ID: reg-office-1\r\nCSeq: {cseq} REGISTER\r\nContact: <sip:office@{me}>\r\nExpires: {expires}\r\nContent-Length: 0\r\n\r\n"
    );
    sock.send_to(msg.as_bytes(), ("127.0.0.1", edge)).unwrap();
    let mut buf = [0u8; 4096];
    sock.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let (n, _) = sock.recv_from(&mut buf).expect("an answer to REGISTER");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[test]
fn a_registered_pbx_gets_its_calls_and_keeps_its_binding_across_a_restart() {
    need_sipp!();
    // The ring path (and the bindings file next to it) outlives the first sidecar's directory.
    let keep = std::env::temp_dir().join(format!("xtrunk-registrar-{}", std::process::id()));
    std::fs::create_dir_all(&keep).unwrap();
    let shm = keep.join("shm");
    let side = office_side("registrar", Some(shm.clone()));
    // No binding yet: 480.
    let a = sipp(&side.dir, "uac0", "uac_basic", free_port(), Some(side.port), 1, &[]).wait();
    assert_eq!((a.successful, a.failed), (0, 1));

    let pbx_port = free_port();
    let sock = UdpSocket::bind(SocketAddr::from((OFFICE_IP, pbx_port))).unwrap();
    let brief = register(&sock, side.port, 30, 1);
    assert!(brief.starts_with("SIP/2.0 423"), "{brief}");
    assert!(brief.contains("Min-Expires: 60"), "{brief}");
    let ok = register(&sock, side.port, 120, 2);
    assert!(ok.starts_with("SIP/2.0 200"), "{ok}");
    assert!(ok.contains(&format!("Contact: <sip:office@127.0.0.2:{pbx_port}>;expires=120")), "{ok}");
    drop(sock);

    // The PBX answers on the port it registered from.
    let uas = sipp(&side.dir, "office", "uas_basic", pbx_port, None, 1, &["-i", "127.0.0.2"]);
    let a = sipp(&side.dir, "uac1", "uac_basic", free_port(), Some(side.port), 1, &[]).wait();
    let b = uas.wait();
    let s = side.stop();
    assert_eq!((a.successful, b.successful), (1, 1), "{a:?} {b:?}");
    assert_eq!(s.metrics.finals_to_caller.get(&480), Some(&1), "the call before the binding");

    // A new sidecar on the same ring path reads the binding back.
    let side = office_side("registrar2", Some(shm));
    let uas = sipp(&side.dir, "office2", "uas_basic", pbx_port, None, 1, &["-i", "127.0.0.2"]);
    let a = sipp(&side.dir, "uac2", "uac_basic", free_port(), Some(side.port), 1, &[]).wait();
    let b = uas.wait();
    let s = side.stop();
    assert_eq!((a.successful, b.successful), (1, 1), "after a restart: {a:?} {b:?}");
    assert_clean(&s);
    let _ = std::fs::remove_dir_all(&keep);
}

#[test]
fn register_from_outside_every_accept_register_trunk_is_403() {
    let side = office_side("registrar-403", None);
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap(); // the pbx trunk, not accept-register
    let r = register(&sock, side.port, 120, 1);
    let _ = side.stop();
    assert!(r.starts_with("SIP/2.0 403"), "{r}");
}

/// A PBX registering with digest credentials (SIPp `[authentication]`, MD5): `401` with
/// `WWW-Authenticate` first, `200` with the right password; its calls then reach it.
#[test]
fn a_pbx_registers_with_digest_and_gets_its_calls() {
    use xtrunk_config::{AuthMode, DigestAlgorithm, TrunkUser};
    need_sipp!();
    let side = Sidecar::start("registrar-digest", &[], |c| {
        c.trunks[0].acl = vec!["127.0.0.1/32".parse().unwrap()];
        let mut office = trunk("office", TrunkRole::Customer, &[], &[]);
        office.kind = TrunkKind::AcceptRegister;
        office.auth = AuthMode::Digest;
        office.users = vec![TrunkUser {
            username: "office".into(),
            password: Some("s3cret-office".into()),
            ha1_md5: None,
            ha1_sha256: None,
            ha1_sha512_256: None,
        }];
        c.trunks.push(office);
        c.routes = vec![Route::to("", Some("pbx"), "office")];
        c.sip.auth.algorithms = vec![DigestAlgorithm::Md5];
    });
    let pbx_port = free_port();
    let reg = sipp(&side.dir, "reg", "uac_register_auth", pbx_port, Some(side.port), 1, &["-i", "127.0.0.2"]).wait();
    assert_eq!((reg.successful, reg.failed), (1, 0), "401 then 200: {reg:?}");
    let uas = sipp(&side.dir, "office", "uas_basic", pbx_port, None, 1, &["-i", "127.0.0.2"]);
    let a = sipp(&side.dir, "uac", "uac_basic", free_port(), Some(side.port), 1, &[]).wait();
    let b = uas.wait();
    let s = side.stop();
    assert_eq!((a.successful, b.successful), (1, 1), "{a:?} {b:?}");
    assert_eq!(s.metrics.auth.ok.get("office"), Some(&1), "{:?}", s.metrics.auth);
    assert_clean(&s);
}
