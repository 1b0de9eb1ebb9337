//! Policy on plain values: no sockets, no core.

use std::net::SocketAddr;
use std::time::Instant;

use xtrunk_config::{Config, Host, RouteQuery, Snapshot, TrunkId};

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
        at: None,
        trunk: None,
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
fn a_route_lists_its_failover_trunks_in_order() {
    let mut c = cfg();
    let default = c.routes.iter().position(|r| r.prefix.is_empty()).unwrap();
    c.routes[default].then = vec![CARRIER_B];
    match admit(&c, &call("10.1.0.5:5060", "1555", true), Instant::now(), &mut Admission::default()) {
        Decision::Route(p) => assert_eq!((p.entries, p.route), (vec![CARRIER_A, CARRIER_B], Some(default))),
        d => panic!("{d:?}"),
    }
}

#[test]
fn routes_by_longest_prefix_for_the_source_trunk() {
    let c = cfg();
    // From the PBX, 44… takes the PBX-only route; anything else the default.
    let plan = |source: &str, user: &str| match admit(
        &c,
        &call(source, user, true),
        Instant::now(),
        &mut Admission::default(),
    ) {
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
    let d = admit(&c, &call("10.1.0.5:5060", "4420", true), Instant::now(), &mut Admission::default());
    assert_eq!(d, Decision::Reject(Reject { why: RejectReason::NoTargets, trunk: Some(PBX) }));
    // Delayed offer: served, unless the caller's trunk requires SRTP.
    let mut c = cfg();
    assert!(matches!(
        admit(&c, &call("10.1.0.5:5060", "1555", false), Instant::now(), &mut Admission::default()),
        Decision::Route(_)
    ));
    c.trunks[PBX.index()].srtp = xtrunk_config::SrtpPolicy::Mandatory;
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

#[test]
fn dids_route_inbound_calls_to_the_owning_account_only() {
    let text = format!(
        "{CFG}\n[[account]]\nname = \"acme\"\ndids = [\"493012345600-493012345699\"]\n\n[[account]]\nname = \"other\"\ndids = [\"442071234567\"]\n"
    )
    .replace("name = \"pbx\"\nrole = \"customer\"", "name = \"pbx\"\nrole = \"customer\"\naccount = \"acme\"\ntargets = [{ addr = \"10.1.0.5:5060\" }]");
    let c = Config::parse(&text, "test").unwrap().snapshot(Host { cores: 2, check_paths: false }).unwrap();
    let from_carrier = |user| admit(&c, &call("192.0.2.1:5060", user, true), Instant::now(), &mut Admission::default());
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
    // Outbound from the PBX (with one of its own numbers as caller ID) is not a DID call.
    let out = IncomingCall { from_user: Some("+493012345601"), ..call("10.1.0.5:5060", "4420", true) };
    let d = admit(&c, &out, Instant::now(), &mut Admission::default());
    assert!(matches!(d, Decision::Route(_)), "{d:?}");
}

/// The PBX in account "acme" (DIDs 4420712345xx) with `limits` TOML for the account.
fn limited(account: &str, pbx: &str) -> Snapshot {
    let text = format!(
        "[[account]]\nname = \"acme\"\ndids = [\"442071234500-442071234599\"]\n{account}\n{}",
        CFG.replacen("codecs = [\"PCMA\"]", &format!("codecs = [\"PCMA\"]\naccount = \"acme\"\n{pbx}"), 1)
    );
    Config::parse(&text, "test").unwrap().snapshot(Host { cores: 2, check_paths: false }).unwrap()
}

fn owned_call<'a>(source: &str, user: &'a str) -> IncomingCall<'a> {
    IncomingCall { from_user: Some("+442071234501"), ..call(source, user, true) }
}

#[test]
fn limits_take_a_lease_that_release_returns() {
    let c = limited("[account.limits]\nchannels = 2", "");
    let mut adm = Admission::default();
    let now = Instant::now();
    let call = owned_call("10.1.0.5:5060", "+4930123456");
    let Decision::Route(mut a) = admit(&c, &call, now, &mut adm) else { panic!() };
    let Decision::Route(_b) = admit(&c, &call, now, &mut adm) else { panic!() };
    let d = admit(&c, &call, now, &mut adm);
    let Decision::Reject(r) = d else { panic!("{d:?}") };
    assert_eq!((r.why.code(), r.why.cause()), (503, "channels_full_account"));
    adm.release(&mut a.hold, None);
    adm.release(&mut a.hold, None); // idempotent
    assert!(matches!(admit(&c, &call, now, &mut adm), Decision::Route(_)));
    assert_eq!(adm.store.leases(), 2);
}

#[test]
fn the_inbound_split_leaves_room_for_calls_to_the_account() {
    // 2 channels, at most 1 from the PBX: the second call from it is refused while a call
    // from the carrier to the PBX (outbound for the account) still fits.
    let c = limited("[account.limits]\nchannels = 2\nchannels_inbound = 1", "");
    let mut adm = Admission::default();
    let now = Instant::now();
    assert!(matches!(admit(&c, &owned_call("10.1.0.5:5060", "+4930123456"), now, &mut adm), Decision::Route(_)));
    let d = admit(&c, &owned_call("10.1.0.5:5060", "+4930123457"), now, &mut adm);
    assert!(matches!(
        d,
        Decision::Reject(Reject { why: RejectReason::ChannelsFull { account: true, outbound: false, code: 503 }, .. })
    ));
    assert_eq!(adm.store.channels(counters::Scope::Account(xtrunk_config::AccountId(0))), (1, 0));
}

#[test]
fn trunk_cps_refuses_with_retry_after_and_caps_name_the_period() {
    let c = limited("", "[trunk.limits]\ncps = 1\ncalls_per_hour = 2");
    let mut adm = Admission::default();
    let t0 = Instant::now();
    let call = owned_call("10.1.0.5:5060", "+4930123456");
    assert!(matches!(admit(&c, &call, t0, &mut adm), Decision::Route(_)));
    let Decision::Reject(r) = admit(&c, &call, t0, &mut adm) else { panic!() };
    assert_eq!((r.why.code(), r.why.cause(), r.why.retry_after()), (503, "cps_trunk", Some(1)));
    let t1 = t0 + std::time::Duration::from_secs(1);
    assert!(matches!(admit(&c, &call, t1, &mut adm), Decision::Route(_)));
    let t2 = t0 + std::time::Duration::from_secs(2);
    let Decision::Reject(r) = admit(&c, &call, t2, &mut adm) else { panic!() };
    assert_eq!((r.why.code(), r.why.cause()), (403, "calls_per_hour_trunk"));
}

#[test]
fn a_resumed_call_holds_its_channel_and_a_reload_keeps_counts_by_name() {
    let c = limited("[account.limits]\nchannels = 1", "");
    let mut adm = Admission::default();
    let now = Instant::now();
    let mut held = adm.adopt(&c, PBX, CARRIER_A, now);
    assert!(held.lease.is_some());
    let call = owned_call("10.1.0.5:5060", "+4930123456");
    assert!(matches!(admit(&c, &call, now, &mut adm), Decision::Reject(_)), "the resumed call fills the account");
    // A reload that renumbers the trunks (a new one first) keeps the count on the PBX.
    let mut raw = c.raw.clone();
    let mut extra = raw.trunks[2].clone();
    extra.name = "carrier-c".into();
    raw.trunks.insert(0, extra);
    let c2 = raw.snapshot(Host { cores: 2, check_paths: false }).unwrap();
    adm.reload(&c, &c2);
    let pbx2 = c2.trunk_by_name("pbx").unwrap();
    assert_eq!(adm.store.channels(counters::Scope::Trunk(pbx2)), (0, 0), "no trunk limit: not counted");
    assert!(matches!(admit(&c2, &call, now, &mut adm), Decision::Reject(_)), "account count kept");
    adm.release(&mut held, None);
    assert!(matches!(admit(&c2, &call, now, &mut adm), Decision::Route(_)));
}

#[test]
fn full_channels_on_the_chosen_trunk_fail_over_to_the_next_route() {
    let mut c = raw();
    c.trunks[2].limits.channels = Some(1); // carrier-b, the PBX's route for 44…
    let c = c.snapshot(Host { cores: 2, check_paths: false }).unwrap();
    assert_eq!(
        routing::candidates(&c, &RouteQuery { from: PBX, user: "4420", caller: None, at: None }),
        vec![CARRIER_B, CARRIER_A]
    );
    let mut adm = Admission::default();
    let now = Instant::now();
    let go = |adm: &mut Admission| match admit(&c, &call("10.1.0.5:5060", "4420", true), now, adm) {
        Decision::Route(p) => p.entries[0],
        d => panic!("{d:?}"),
    };
    assert_eq!(go(&mut adm), CARRIER_B);
    assert_eq!(go(&mut adm), CARRIER_A, "carrier-b full: the default route takes it");
    // With the default route full too, the refusal names the channels.
    let mut r = raw();
    r.trunks[2].limits.channels = Some(1);
    r.trunks[1].limits.channels = Some(1);
    let c = r.snapshot(Host { cores: 2, check_paths: false }).unwrap();
    let mut adm = Admission::default();
    let call = call("10.1.0.5:5060", "4420", true);
    assert!(matches!(admit(&c, &call, now, &mut adm), Decision::Route(_)));
    assert!(matches!(admit(&c, &call, now, &mut adm), Decision::Route(_)));
    let d = admit(&c, &call, now, &mut adm);
    assert!(
        matches!(d, Decision::Reject(Reject { why: RejectReason::ChannelsFull { outbound: true, .. }, .. })),
        "{d:?}"
    );
    assert_eq!(adm.store.leases(), 2);
}

#[test]
fn a_transfer_is_held_to_the_transferors_destination_rules() {
    let c = limited("[account.destinations]\ndeny_countries = [\"FR\"]", "");
    assert_eq!(admit_transfer(&c, PBX, "+4930123456"), Ok(CARRIER_A));
    assert_eq!(admit_transfer(&c, PBX, "+449001234567"), Err(RejectReason::PremiumRate));
    assert_eq!(admit_transfer(&c, PBX, "+33142685300"), Err(RejectReason::DeniedCountry));
    assert_eq!(admit_transfer(&c, PBX, "bob"), Err(RejectReason::InvalidNumber));
    // A trunk without an account: routes only.
    assert_eq!(admit_transfer(&c, CARRIER_A, "+449001234567"), Ok(CARRIER_A));
}

#[test]
fn routes_by_caller_prefix_and_time_of_day() {
    use xtrunk_config::{Route, TimeWindow};
    let mut cfg = raw();
    let (a, b) = ("carrier-a", "carrier-b");
    // Default: carrier A. Callers from +4930 go to B; weekday office hours (UTC+1) go to B too.
    cfg.routes = vec![
        Route::to("", Some("pbx"), a),
        Route { caller_prefix: Some("+4930".into()), ..Route::to("", None, b) },
        Route {
            time: Some(TimeWindow {
                days: vec!["mon".into(), "tue".into(), "wed".into(), "thu".into(), "fri".into()],
                from: "08:00".into(),
                to: "18:00".into(),
                utc_offset_minutes: 60,
            }),
            ..Route::to("44", None, b)
        },
    ];
    let c = cfg.snapshot(Host { cores: 2, check_paths: false }).unwrap();
    let q = |caller: Option<&'static str>, user: &'static str, at: Option<u64>| {
        c.route_matching(&RouteQuery { from: PBX, user, caller, at }).map(|(_, r)| r.trunk)
    };
    assert_eq!(q(Some("+4930123"), "4420", None), Some(CARRIER_B), "caller prefix");
    assert_eq!(q(Some("+4940123"), "4420", None), Some(CARRIER_A), "other caller: default");
    assert_eq!(q(None, "4420", None), Some(CARRIER_A), "no caller known: the caller route does not apply");
    // 2026-12-02 (a Wednesday) 09:30 UTC = 10:30 local: in; 17:30 UTC = 18:30 local: out.
    let wed_0930 = 1_796_169_600 + 9 * 3600 + 1800;
    assert_eq!(q(None, "4420", Some(wed_0930)), Some(CARRIER_B), "office hours");
    assert_eq!(q(None, "4420", Some(wed_0930 + 8 * 3600)), Some(CARRIER_A), "after hours");
    // Saturday 2026-12-05 at the same hour: not a weekday.
    assert_eq!(q(None, "4420", Some(wed_0930 + 3 * 86_400)), Some(CARRIER_A), "weekend");
    // The window route is more specific (prefix 44) than the caller one (prefix empty).
    assert_eq!(q(Some("+4930"), "4420", Some(wed_0930)), Some(CARRIER_B));
}

#[test]
fn a_window_across_midnight_belongs_to_the_day_it_starts() {
    let w = xtrunk_config::Window { days: 1 << 4, from: 22 * 60, to: 6 * 60, offset: 0 }; // Friday night
    let fri = 1_796_169_600 + 2 * 86_400; // 2026-12-04 00:00 UTC, a Friday
    assert!(!w.contains(fri + 3600), "Friday 01:00 belongs to Thursday night");
    assert!(w.contains(fri + 23 * 3600), "Friday 23:00");
    assert!(w.contains(fri + 86_400 + 5 * 3600), "Saturday 05:00 (still Friday night)");
    assert!(!w.contains(fri + 86_400 + 7 * 3600), "Saturday 07:00");
}

#[test]
fn acl_aliases_join_the_acl_and_verify_port_wants_a_target() {
    let mut c = raw();
    c.acl_aliases.insert("carrier-ranges".into(), vec!["203.0.113.0/28".parse().unwrap()]);
    c.trunks[2].acl_aliases = vec!["carrier-ranges".into()];
    c.trunks[1].verify_port = true;
    let s = c.snapshot(Host { cores: 2, check_paths: false }).unwrap();
    assert_eq!(identify::by_acl(&s, "203.0.113.9".parse().unwrap()), Some(CARRIER_B));
    assert_eq!(identify::by_acl(&s, "203.0.113.99".parse().unwrap()), None);
    // carrier-a's ACL holds 192.0.2.99, but with verify_port only its target's port is it.
    let d = admit(&s, &call("192.0.2.10:5999", "4420", true), Instant::now(), &mut Admission::default());
    assert!(matches!(d, Decision::Reject(Reject { why: RejectReason::UnknownSource, .. })), "{d:?}");
    let d = admit(&s, &call("192.0.2.10:5060", "4420", true), Instant::now(), &mut Admission::default());
    assert!(!matches!(d, Decision::Reject(Reject { why: RejectReason::UnknownSource, .. })), "{d:?}");
}
