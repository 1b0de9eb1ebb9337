//! Policy on plain values: no sockets, no core.

use std::net::SocketAddr;
use std::time::Instant;

use xtrunk_config::{Config, Host, Snapshot, TrunkId};

use super::*;

const CFG: &str = r#"
[[trunk]]
name = "pbx"
role = "customer"
acl = ["10.1.0.0/16"]
codecs = ["PCMA"]

[[trunk]]
name = "carrier-a"
role = "carrier"
acl = ["192.0.2.0/24"]
targets = [{ addr = "192.0.2.10:5060" }]

[[trunk]]
name = "carrier-b"
role = "carrier"
targets = [{ addr = "198.51.100.7:5060" }]

[[route]]
prefix = ""
trunk = "carrier-a"

[[route]]
prefix = "44"
from_trunk = "pbx"
trunk = "carrier-b"
"#;

fn raw() -> Config {
    Config::parse(CFG, "test").unwrap()
}

fn cfg() -> Snapshot {
    raw().snapshot(Host { cores: 2, check_paths: false }).unwrap()
}

const PBX: TrunkId = TrunkId(0);
const CARRIER_A: TrunkId = TrunkId(1);
const CARRIER_B: TrunkId = TrunkId(2);

fn call<'a>(source: &str, user: &'a str, has_offer: bool) -> IncomingCall<'a> {
    IncomingCall {
        source: source.parse::<SocketAddr>().unwrap(),
        local: "127.0.0.1:5060".parse().unwrap(),
        transport: crate::transport::Transport::Udp,
        user,
        from_user: Some("100"),
        pai: None,
        privacy: None,
        has_offer,
    }
}

#[test]
fn identifies_the_trunk_by_acl() {
    let c = cfg();
    assert_eq!(identify::by_acl(&c, "10.1.2.3".parse().unwrap()), Some(PBX));
    assert_eq!(identify::by_acl(&c, "192.0.2.99".parse().unwrap()), Some(CARRIER_A));
    assert_eq!(identify::by_acl(&c, "203.0.113.1".parse().unwrap()), None);
}

#[test]
fn unknown_source_is_rejected_403_without_a_trunk() {
    let d = admit(&cfg(), &call("203.0.113.1:5060", "4420", true), Instant::now(), &mut Admission::default());
    let Decision::Reject(r) = d else { panic!("{d:?}") };
    assert_eq!((r.why, r.trunk, r.why.code(), r.why.phrase()), (RejectReason::UnknownSource, None, 403, "Forbidden"));
}

#[test]
fn routes_by_longest_prefix_for_the_source_trunk() {
    let c = cfg();
    // From the PBX, 44… takes the PBX-only route; anything else the default.
    let d = admit(&c, &call("10.1.0.5:5060", "4420", true), Instant::now(), &mut Admission::default());
    assert_eq!(d, Decision::Route(RoutePlan::new(PBX, vec![CARRIER_B])));
    let d = admit(&c, &call("10.1.0.5:5060", "1555", true), Instant::now(), &mut Admission::default());
    assert_eq!(d, Decision::Route(RoutePlan::new(PBX, vec![CARRIER_A])));
    // From the carrier, the PBX-only route does not apply.
    let d = admit(&c, &call("192.0.2.1:5060", "4420", true), Instant::now(), &mut Admission::default());
    assert_eq!(d, Decision::Route(RoutePlan::new(CARRIER_A, vec![CARRIER_A])));
}

#[test]
fn a_route_to_a_trunk_without_targets_and_a_missing_offer_are_rejected() {
    // Validation refuses a route to a trunk without targets; policy still checks.
    let mut c = cfg();
    c.trunks[CARRIER_B.index()].targets.clear();
    let d = admit(&c, &call("10.1.0.5:5060", "4420", true), Instant::now(), &mut Admission::default());
    assert_eq!(d, Decision::Reject(Reject { why: RejectReason::NoTargets, trunk: Some(PBX) }));
    let c = cfg();
    let d = admit(&c, &call("10.1.0.5:5060", "1555", false), Instant::now(), &mut Admission::default());
    assert_eq!(d, Decision::Reject(Reject { why: RejectReason::OfferRequired, trunk: Some(PBX) }));
    assert_eq!(RejectReason::OfferRequired.code(), 488);
}

#[test]
fn no_route_when_no_prefix_matches() {
    let mut c = raw();
    c.routes.retain(|r| !r.prefix.is_empty());
    let c = c.snapshot(Host { cores: 2, check_paths: false }).unwrap();
    let d = admit(&c, &call("10.1.0.5:5060", "1555", true), Instant::now(), &mut Admission::default());
    assert_eq!(d, Decision::Reject(Reject { why: RejectReason::NoRoute, trunk: Some(PBX) }));
    assert_eq!(RejectReason::NoRoute.end_reason().as_str(), "no_route");
}

#[test]
fn a_trunk_that_requires_tcp_refuses_udp() {
    let mut c = raw();
    c.trunks[0].transports = vec![xtrunk_config::Transport::Tcp];
    let c = c.snapshot(Host { cores: 2, check_paths: false }).unwrap();
    let udp = call("10.1.2.3:5060", "4930", true);
    assert_eq!(
        admit(&c, &udp, Instant::now(), &mut Admission::default()),
        Decision::Reject(Reject { why: RejectReason::TransportNotAllowed, trunk: Some(PBX) })
    );
    let tcp = IncomingCall { transport: crate::transport::Transport::Tcp, ..udp };
    assert!(matches!(admit(&c, &tcp, Instant::now(), &mut Admission::default()), Decision::Route(_)));
    assert_eq!(
        (RejectReason::TransportNotAllowed.code(), RejectReason::TransportNotAllowed.phrase()),
        (403, "Transport Not Allowed")
    );
}
