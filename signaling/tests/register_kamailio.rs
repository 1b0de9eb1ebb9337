//! #14 register trunks against a real upstream carrier: two Kamailio 5.6 instances (Debian's
//! package, started here with `tests/kamailio/carrier.cfg` on loopback addresses of their own)
//! are the carrier's primary and secondary registrar/proxy. Each requires REGISTER with digest
//! (`401`, qop=auth) and challenges every INVITE (`407`). The edge registers at both, refreshes
//! the bindings (Kamailio grants 10 s), places the PBX's calls through the primary, takes the
//! PSTN's call for a DID arriving at the contact it registered, and when the primary refuses
//! the registration (restarted with `-A REFUSE`: `403`) the calls go through the secondary.

#[macro_use]
mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::servers::{available, Kamailio};
use common::*;
use xtrunk_config::{Registration, Route, Target, Transport, TrunkKind};

const PBX_IP: [u8; 4] = [127, 0, 0, 2];
const PRIMARY_IP: [u8; 4] = [127, 0, 0, 3];
const SECONDARY_IP: [u8; 4] = [127, 0, 0, 4];
const PSTN_IP: [u8; 4] = [127, 0, 0, 5];
const USER: &str = "xtrunk-acct";
const PASSWORD: &str = "c4rrier-s3cret";

/// A carrier Kamailio (`carrier.cfg`) on `listen` relaying to `pstn`; `refuse`: it answers
/// every REGISTER and INVITE 403.
fn carrier(dir: &Path, tag: &str, listen: SocketAddr, pstn: SocketAddr, refuse: bool) -> Kamailio {
    let vars = [
        ("LISTEN", listen.to_string()),
        ("EXPIRES", "10".to_string()),
        ("PASSWORD", PASSWORD.to_string()),
        ("USER", USER.to_string()),
        ("PSTN_IP", pstn.ip().to_string()),
        ("PSTN", pstn.to_string()),
    ];
    Kamailio::start(dir, tag, "carrier.cfg", &vars, if refuse { &["REFUSE"] } else { &[] }, listen)
}

fn registration(registrar: SocketAddr) -> Registration {
    Registration {
        registrar,
        transport: Transport::Udp,
        domain: Some("carrier.test".into()),
        username: USER.into(),
        auth_username: None,
        password: PASSWORD.into(),
        expires_secs: 10,
        retry_secs: 2,
        contact_user: None,
    }
}

#[test]
fn registers_at_both_refreshes_calls_through_them_and_fails_over() {
    need_sipp!();
    if !available("kamailio") {
        eprintln!("kamailio not installed (scripts/setup installs it); skipping");
        return;
    }
    let (primary, secondary) =
        (SocketAddr::from((PRIMARY_IP, free_port())), SocketAddr::from((SECONDARY_IP, free_port())));
    let pstn = SocketAddr::from((PSTN_IP, free_port()));
    let pbx_port = free_port();
    let side = Sidecar::start("register-kamailio", &[], |c| {
        c.trunks[0].acl = vec!["127.0.0.2/32".parse().unwrap()];
        c.trunks[0].targets = vec![Target::udp(SocketAddr::from((PBX_IP, pbx_port)))];
        c.trunks[1].kind = TrunkKind::Register;
        c.trunks[1].targets.clear();
        c.trunks[1].registrations = vec![registration(primary), registration(secondary)];
        c.routes = vec![Route::to("", Some("pbx"), "carrier"), Route::to("", Some("carrier"), "pbx")];
    });
    let dir: PathBuf = side.dir.to_path_buf();
    let a = carrier(&dir, "primary", primary, pstn, false);
    let b = carrier(&dir, "secondary", secondary, pstn, false);
    // The PSTN side behind the carrier answers every call relayed to it.
    let pstn_uas = sipp_to(&dir, "pstn-uas", "uas_basic", pstn.port(), None, 10, &["-i", "127.0.0.5"]);

    // Both registrations come up (401 answered with the password).
    let contact = format!("<sip:{USER}@127.0.0.1:");
    assert!(
        a.wait_for(&format!("REGISTERED sip:{USER}@carrier.test {contact}"), 1, Duration::from_secs(10)),
        "primary"
    );
    assert!(
        b.wait_for(&format!("REGISTERED sip:{USER}@carrier.test {contact}"), 1, Duration::from_secs(10)),
        "secondary"
    );

    // Calls from the PBX go through the primary (407 answered), reach the PSTN.
    let pbx =
        sipp(&dir, "pbx-uac", "uac_basic", free_port(), Some(side.port), 5, &["-i", "127.0.0.2", "-r", "5"]).wait();
    assert_eq!((pbx.successful, pbx.failed), (5, 0), "{pbx:?}");
    assert_eq!((a.count("CALL sip:"), b.count("CALL sip:")), (5, 0), "every call through the primary");

    // A PSTN call for DID 15550001 reaches the registered contact; the edge takes the number
    // from To and routes it to the PBX.
    let pbx_uas = sipp_to(&dir, "pbx-uas", "uas_basic", pbx_port, None, 1, &["-i", "127.0.0.2"]);
    let inbound =
        sipp_to(&dir, "pstn-uac", "uac_routed", free_port(), Some(primary), 1, &["-i", "127.0.0.5", "-s", "15550001"])
            .wait();
    let got = pbx_uas.wait();
    assert_eq!((inbound.successful, got.successful), (1, 1), "inbound {inbound:?} at the PBX {got:?}");
    assert_eq!(a.count("INBOUND sip:"), 1);

    // Refreshes: Kamailio grants 10 s, the edge registers again at 7.5 s.
    assert!(a.wait_for("REGISTERED sip:", 2, Duration::from_secs(12)), "the primary's binding is refreshed");
    assert!(b.wait_for("REGISTERED sip:", 2, Duration::from_secs(5)), "the secondary's binding is refreshed");

    // The primary now refuses registrations: at its next refresh the edge takes it down and
    // sends calls to the secondary.
    a.stop();
    let a = carrier(&dir, "primary-refusing", primary, pstn, true);
    assert!(a.wait_for("REFUSED REGISTER", 1, Duration::from_secs(12)), "the edge's refresh met the refusal");
    std::thread::sleep(Duration::from_millis(300));
    let pbx =
        sipp(&dir, "pbx-uac2", "uac_basic", free_port(), Some(side.port), 5, &["-i", "127.0.0.2", "-r", "5"]).wait();
    assert_eq!((pbx.successful, pbx.failed), (5, 0), "after failover: {pbx:?}");
    assert_eq!(a.count("REFUSED INVITE"), 0, "no call to the refusing primary");
    assert_eq!(b.count("CALL sip:"), 5, "every call through the secondary");

    let pstn_got = pstn_uas.wait();
    let s = side.stop();
    a.stop();
    b.stop();
    assert_eq!(pstn_got.successful, 10, "{pstn_got:?}");
    let r = &s.metrics.registrations;
    assert!(r.came_up >= 2 && r.went_down >= 1 && r.failed >= 1, "{r:?}");
    assert!(r.challenged >= 2 + 10, "REGISTER 401s and INVITE 407s answered: {r:?}");
    assert_clean(&s);
}
