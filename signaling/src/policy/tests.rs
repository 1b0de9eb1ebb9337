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
    let d = admit(&cfg(), &call("203.0.113.1:5060", "4420", true), Instant::now());
    let Decision::Reject(r) = d else { panic!("{d:?}") };
    assert_eq!((r.why, r.trunk, r.why.code(), r.why.phrase()), (RejectReason::UnknownSource, None, 403, "Forbidden"));
}

#[test]
fn a_route_lists_its_failover_trunks_in_order() {
    let mut c = cfg();
    let default = c.routes.iter().position(|r| r.prefix.is_empty()).unwrap();
    c.routes[default].then = vec![CARRIER_B];
    match admit(&c, &call("10.1.0.5:5060", "1555", true), Instant::now()) {
        Decision::Route(p) => assert_eq!((p.entries, p.route), (vec![CARRIER_A, CARRIER_B], Some(default))),
        d => panic!("{d:?}"),
    }
}

#[test]
fn routes_by_longest_prefix_for_the_source_trunk() {
    let c = cfg();
    // From the PBX, 44… takes the PBX-only route; anything else the default.
    let plan = |source: &str, user: &str| match admit(&c, &call(source, user, true), Instant::now()) {
        Decision::Route(RoutePlan { inbound, entries, .. }) => (inbound, entries),
        d => panic!("{d:?}"),
    };
    assert_eq!(plan("10.1.0.5:5060", "4420"), (PBX, vec![CARRIER_B]));
    assert_eq!(plan("10.1.0.5:5060", "1555"), (PBX, vec![CARRIER_A]));
    // From the carrier, the PBX-only route does not apply.
    assert_eq!(plan("192.0.2.1:5060", "4420"), (CARRIER_A, vec![CARRIER_A]));
}

#[test]
fn a_route_to_a_trunk_without_targets_and_a_missing_offer_to_an_srtp_trunk_are_rejected() {
    // Validation refuses a route to a trunk without targets; policy still checks.
    let mut c = cfg();
    c.trunks[CARRIER_B.index()].targets.clear();
    let d = admit(&c, &call("10.1.0.5:5060", "4420", true), Instant::now());
    assert_eq!(d, Decision::Reject(Reject { why: RejectReason::NoTargets, trunk: Some(PBX) }));
    // Delayed offer: served, unless the caller's trunk requires SRTP.
    let mut c = cfg();
    assert!(matches!(admit(&c, &call("10.1.0.5:5060", "1555", false), Instant::now()), Decision::Route(_)));
    c.trunks[PBX.index()].srtp = xtrunk_config::SrtpPolicy::Mandatory;
    let d = admit(&c, &call("10.1.0.5:5060", "1555", false), Instant::now());
    assert_eq!(d, Decision::Reject(Reject { why: RejectReason::OfferRequired, trunk: Some(PBX) }));
    assert_eq!(RejectReason::OfferRequired.code(), 488);
}

#[test]
fn no_route_when_no_prefix_matches() {
    let mut c = raw();
    c.routes.retain(|r| !r.prefix.is_empty());
    let c = c.snapshot(Host { cores: 2, check_paths: false }).unwrap();
    let d = admit(&c, &call("10.1.0.5:5060", "1555", true), Instant::now());
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
        admit(&c, &udp, Instant::now()),
        Decision::Reject(Reject { why: RejectReason::TransportNotAllowed, trunk: Some(PBX) })
    );
    let tcp = IncomingCall { transport: crate::transport::Transport::Tcp, ..udp };
    assert!(matches!(admit(&c, &tcp, Instant::now()), Decision::Route(_)));
    assert_eq!(
        (RejectReason::TransportNotAllowed.code(), RejectReason::TransportNotAllowed.phrase()),
        (403, "Transport Not Allowed")
    );
}

#[test]
fn dids_route_inbound_calls_to_the_owning_account_only() {
    let text = format!(
        "{CFG}\n[[account]]\nname = \"acme\"\ndids = [\"493012345600-493012345699\"]\n\n[[account]]\nname = \"other\"\ndids = [\"442071234567\"]\n"
    )
    .replace("name = \"pbx\"\nrole = \"customer\"", "name = \"pbx\"\nrole = \"customer\"\naccount = \"acme\"\ntargets = [{ addr = \"10.1.0.5:5060\" }]");
    let c = Config::parse(&text, "test").unwrap().snapshot(Host { cores: 2, check_paths: false }).unwrap();
    let from_carrier = |user| admit(&c, &call("192.0.2.1:5060", user, true), Instant::now());
    // In acme's pool: to acme's PBX (the default route would have sent it back upstream).
    match from_carrier("+493012345678") {
        Decision::Route(p) => assert_eq!(p.entries, vec![PBX]),
        d => panic!("{d:?}"),
    }
    // In nobody's pool: 404, counted as no route.
    let d = from_carrier("493099999999");
    assert_eq!(d, Decision::Reject(Reject { why: RejectReason::Unprovisioned, trunk: Some(CARRIER_A) }));
    assert_eq!((RejectReason::Unprovisioned.code(), RejectReason::Unprovisioned.phrase()), (404, "Not Found"));
    // Another account's number: that account has no trunk to take it.
    let d = from_carrier("442071234567");
    assert_eq!(d, Decision::Reject(Reject { why: RejectReason::NoRoute, trunk: Some(CARRIER_A) }));
    // Outbound from the PBX is not a DID call.
    assert!(matches!(admit(&c, &call("10.1.0.5:5060", "4420", true), Instant::now()), Decision::Route(_)));
}
