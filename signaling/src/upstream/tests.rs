use std::time::{Duration, Instant};

use xtrunk_config::Config;

use super::*;
use crate::sip::msg::{parse, HName};

const TEXT: &str = r#"
[[trunk]]
name = "pbx"
role = "customer"
acl = ["10.0.0.0/8"]
targets = [{ addr = "10.0.0.1:5060" }]

[[trunk]]
name = "kwebbl"
role = "carrier"
kind = "register"

[[trunk.registration]]
registrar = "192.0.2.10:5060"
username = "3100"
password = "pw"

[[trunk.registration]]
registrar = "192.0.2.20:5060"
domain = "sip.kwebbl.example"
username = "3100"
password = "pw"
expires_secs = 300

[[route]]
prefix = ""
from_trunk = "pbx"
trunk = "kwebbl"
"#;

fn snap(text: &str) -> Snapshot {
    let mut cfg = Config::embedded_default().unwrap();
    let extra: Config = Config::parse(&format!("{}\n{text}", xtrunk_config::DEFAULT_TOML), "test").unwrap();
    cfg.trunks = extra.trunks;
    cfg.routes = extra.routes;
    cfg.resolve_names().unwrap()
}

fn counter() -> impl FnMut() -> String {
    let mut n = 0;
    move || {
        n += 1;
        format!("id{n}")
    }
}

#[test]
fn registrars_are_the_trunks_targets_in_order() {
    let s = snap(TEXT);
    let t = s.trunk(s.trunk_by_name("kwebbl").unwrap());
    let v: Vec<_> = t.targets.iter().map(|x| (x.addr.to_string(), x.priority)).collect();
    assert_eq!(v, [("192.0.2.10:5060".to_string(), 0), ("192.0.2.20:5060".to_string(), 1)]);
    assert_eq!(t.registrations[1].aor_host(), "sip.kwebbl.example");
    assert_eq!(t.registrations[0].aor_host(), "192.0.2.10:5060");
}

#[test]
fn down_until_bound_and_kept_across_a_sync() {
    let s = snap(TEXT);
    let now = Instant::now();
    let mut u = Upstream::default();
    let mut ids = counter();
    u.sync(&s, now, &mut ids);
    assert_eq!(u.regs().len(), 2);
    let a: std::net::SocketAddr = "192.0.2.10:5060".parse().unwrap();
    assert!(!u.is_up("kwebbl", a), "down before the first 2xx");
    assert!(u.is_up("pbx", "10.0.0.1:5060".parse().unwrap()), "not a register trunk");
    assert_eq!(u.due(now), Some(0));
    u.sent(0, TxKey::detached("t1".into()));
    assert_eq!(u.due(now), Some(1), "one REGISTER in flight per registration");
    assert_eq!(u.take_tx(&TxKey::detached("t1".into())), Some(0));
    assert_eq!(u.take_tx(&TxKey::detached("t1".into())), None, "answered once");
    let r = u.get_mut(0).unwrap();
    (r.up, r.until) = (true, Some(now + Duration::from_secs(10)));
    u.sync(&s, now, &mut ids);
    assert!(u.is_up("kwebbl", a), "a reload keeps the state of an unchanged registration");
    assert_eq!(u.expire(now + Duration::from_secs(9)), Vec::<usize>::new());
    assert_eq!(u.expire(now + Duration::from_secs(10)), vec![0]);
    assert!(!u.is_up("kwebbl", a), "not refreshed in time");
}

#[test]
fn backoff_doubles_up_to_ten_times() {
    let s: Vec<u64> = (1..=6).map(|f| backoff(30, f).as_secs()).collect();
    assert_eq!(s, [30, 60, 120, 240, 300, 300]);
    assert_eq!(backoff(0, 1).as_secs(), 1);
}

#[test]
fn granted_reads_our_contact_then_expires() {
    let m = |contacts: &str| {
        let t = format!(
            "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@h>;tag=1\r\nTo: <sip:a@h>;tag=2\r\n\
             Call-ID: c\r\nCSeq: 2 REGISTER\r\n{contacts}Content-Length: 0\r\n\r\n"
        );
        parse(t.as_bytes()).unwrap()
    };
    let ours = "sip:3100@192.0.2.1:5060";
    let r = m("Contact: <sip:other@x>;expires=50, <sip:3100@192.0.2.1:5060>;expires=120\r\nExpires: 99\r\n");
    assert_eq!(granted(&r, ours, 600), 120);
    assert_eq!(granted(&m("Contact: <sip:other@x>;expires=50\r\nExpires: 99\r\n"), ours, 600), 99);
    assert_eq!(granted(&m(""), ours, 600), 600);
    assert_eq!(granted(&m("Contact: sip:3100@192.0.2.1:5060;expires=30\r\n"), ours, 600), 30);
}

#[test]
fn invite_answers_carry_the_record_route() {
    let req = parse(
        b"INVITE sip:a@h SIP/2.0\r\nVia: SIP/2.0/UDP p;branch=z9hG4bK1\r\nRecord-Route: <sip:p1;lr>\r\n\
          Record-Route: <sip:p2;lr>\r\nFrom: <sip:b@h>;tag=1\r\nTo: <sip:a@h>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n\
          Content-Length: 0\r\n\r\n",
    )
    .unwrap();
    let rr = |code| crate::sip::status::response(&req, code, "x", Some("t")).headers_of(&HName::RecordRoute).count();
    assert_eq!((rr(100), rr(180), rr(200), rr(486)), (0, 2, 2, 0));
}
