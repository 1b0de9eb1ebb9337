use super::*;

const HOST: Host = Host { cores: 2, check_paths: false };

const TEXT: &str = r#"
[media]
latch = "follow"

[[account]]
name = "acme"
dids = ["442071234567", "15551230000-15551239999"]

[[account]]
name = "globex"
dids = ["1555120-1555129", "4930123"]

[[trunk]]
name = "acme-pbx"
role = "customer"
account = "acme"
acl = ["10.1.0.0/16", "2001:db8:1::/48"]
codecs = ["pcma", "G722", "telephone-event"]
srtp = "optional"
srtp_suites = ["AEAD_AES_128_GCM", "AES_CM_128_HMAC_SHA1_80"]
latch = "strict"

[[trunk]]
name = "globex-pbx"
role = "customer"
account = "globex"
acl = ["10.2.0.0/16"]
targets = [{ addr = "10.2.0.5:5060" }]

[[trunk]]
name = "carrier-a"
role = "carrier"
acl = ["203.0.113.0/26"]
targets = [{ addr = "203.0.113.10:5060" }]

[[trunk]]
name = "carrier-b"
role = "carrier"
targets = [{ addr = "198.51.100.10:5060", transport = "tcp" }]

[[route]]
prefix = ""
trunk = "carrier-a"

[[route]]
prefix = "+1"
trunk = "carrier-b"

[[route]]
prefix = "+44"
from_trunk = "acme-pbx"
trunk = "carrier-b"

[[route]]
prefix = "+4930"
from_trunk = "carrier-a"
trunk = "globex-pbx"
"#;

fn snap() -> Snapshot {
    Config::parse(TEXT, "t").unwrap().snapshot(HOST).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn names_resolve_to_ids() {
    let s = snap();
    for (i, t) in s.trunks.iter().enumerate() {
        assert_eq!(t.id, TrunkId(i as u32));
        assert_eq!(s.trunk(t.id).name, t.name);
        assert_eq!(s.trunk_by_name(&t.name), Some(t.id));
    }
    assert_eq!(s.trunk_by_name("nope"), None);
    let (acme, globex) = (AccountId(0), AccountId(1));
    assert_eq!(s.account_by_name("globex"), Some(globex));
    assert_eq!(s.account(acme).name, "acme");
    assert_eq!(s.trunks[0].account, Some(acme));
    assert_eq!(s.trunks[1].account, Some(globex));
    assert_eq!(s.trunks[2].account, None);
    assert_eq!(s.account(acme).trunks, [TrunkId(0)]);
    assert_eq!(s.account(globex).trunks, [TrunkId(1)]);
    assert_eq!(s.account(acme).dids[1], DidRange { start: 15551230000, end: 15551239999, digits: 11 });
    let r = |prefix: &str| s.routes.iter().find(|r| r.prefix == prefix).unwrap().clone();
    let want = RouteView {
        prefix: "+44".into(),
        from_trunk: Some(TrunkId(0)),
        trunk: TrunkId(3),
        then: vec![],
        failover_codes: crate::default_failover_codes(),
        then_number: None,
        caller_prefix: None,
        time: None,
    };
    assert_eq!(r("+44"), want);
    assert_eq!(r("").from_trunk, None);
    assert_eq!(r("+4930").trunk, TrunkId(1));
    assert_eq!(s.raw, Config::parse(TEXT, "t").unwrap());
    assert_eq!(s.media.latch, Latch::Follow);
}

#[test]
fn strings_become_types() {
    let s = snap();
    let pbx = s.trunk(TrunkId(0));
    assert_eq!(pbx.codecs, [Codec::Pcma, Codec::G722, Codec::TelephoneEvent]);
    assert_eq!(pbx.srtp_suites, [SrtpSuite::AeadAes128Gcm, SrtpSuite::AesCm128HmacSha1_80]);
    assert_eq!(pbx.srtp, SrtpPolicy::Optional);
    assert_eq!((pbx.kind, pbx.auth, pbx.role), (TrunkKind::Ip, AuthMode::Acl, TrunkRole::Customer));
    assert_eq!(pbx.latch, Latch::Strict, "the trunk's own latch");
    let carrier = s.trunk(TrunkId(2));
    assert_eq!(carrier.latch, Latch::Follow, "[media].latch when the trunk sets none");
    assert_eq!(carrier.codecs, [Codec::Pcma, Codec::Pcmu, Codec::TelephoneEvent], "default codecs");
    assert_eq!(carrier.srtp_suites, SrtpSuite::ALL, "default suites");
}

#[test]
fn route_longest_prefix_without_from_trunk() {
    let s = snap();
    let (globex, carrier_a, carrier_b) = (TrunkId(1), TrunkId(2), TrunkId(3));
    assert_eq!(s.route(globex, "+15551234567"), Some(carrier_b), "+1 beats the default route");
    assert_eq!(s.route(globex, "+442071234567"), Some(carrier_a), "+44 is only for acme-pbx");
    assert_eq!(s.route(globex, "4930"), Some(carrier_a), "default route");
    assert_eq!(s.route(carrier_b, ""), Some(carrier_a));
}

#[test]
fn route_longest_prefix_with_from_trunk() {
    let s = snap();
    let (acme, globex, carrier_a, carrier_b) = (TrunkId(0), TrunkId(1), TrunkId(2), TrunkId(3));
    assert_eq!(s.route(acme, "+442071234567"), Some(carrier_b));
    assert_eq!(s.route(carrier_a, "+493012345"), Some(globex), "+4930 from carrier-a");
    assert_eq!(s.route(carrier_b, "+493012345"), Some(carrier_a), "not from carrier-b: default route");
}

#[test]
fn route_without_default_and_ties() {
    let text = r#"
[[trunk]]
name = "pbx"
role = "customer"
acl = ["10.0.0.0/8"]
[[trunk]]
name = "a"
role = "carrier"
targets = [{ addr = "192.0.2.1:5060" }]
[[trunk]]
name = "b"
role = "carrier"
targets = [{ addr = "192.0.2.2:5060" }]
[[route]]
prefix = "+49"
trunk = "a"
[[route]]
prefix = "+49"
from_trunk = "pbx"
trunk = "b"
"#;
    let s = Config::parse(text, "t").unwrap().snapshot(HOST).unwrap();
    assert_eq!(s.route(TrunkId(0), "+33123"), None, "no default route");
    // Equal length: the route listed last wins, as signaling's `route()` did.
    assert_eq!(s.route(TrunkId(0), "+4930"), Some(TrunkId(2)));
    assert_eq!(s.route(TrunkId(1), "+4930"), Some(TrunkId(1)));
}

#[test]
fn acl_lookup() {
    let s = snap();
    let ip = |a: &str| a.parse::<IpAddr>().unwrap();
    assert_eq!(s.trunk_by_acl(ip("10.1.2.3")), Some(TrunkId(0)));
    assert_eq!(s.trunk_by_acl(ip("2001:db8:1::5")), Some(TrunkId(0)));
    assert_eq!(s.trunk_by_acl(ip("10.2.255.255")), Some(TrunkId(1)));
    assert_eq!(s.trunk_by_acl(ip("203.0.113.63")), Some(TrunkId(2)));
    assert_eq!(s.trunk_by_acl(ip("203.0.113.64")), None);
    assert_eq!(s.trunk_by_acl(ip("10.3.0.1")), None);
    assert_eq!(s.trunk_by_acl(ip("198.51.100.10")), None, "carrier-b has targets but no acl");
}

#[test]
fn did_owner() {
    let s = snap();
    let (acme, globex) = (Some(AccountId(0)), Some(AccountId(1)));
    assert_eq!(s.did_owner("442071234567"), acme);
    assert_eq!(s.did_owner("442071234568"), None);
    assert_eq!(s.did_owner("15551230000"), acme);
    assert_eq!(s.did_owner("15551239999"), acme);
    assert_eq!(s.did_owner("15551240000"), None);
    assert_eq!(s.did_owner("1555125"), globex, "7-digit range");
    assert_eq!(s.did_owner("15551250"), None, "same start, other length");
    assert_eq!(s.did_owner("4930123"), globex);
    assert_eq!(s.did_owner("4930124"), None);
    assert_eq!(s.did_owner("1"), None);
    for bad in ["", "+442071234567", "0442071234567", "1555125-1555125", "15551x5", "1234567890123456789012"] {
        assert_eq!(s.did_owner(bad), None, "{bad:?}");
    }
}

#[test]
fn invalid_config_lists_every_problem() {
    let text =
        format!("{TEXT}\n[[route]]\nprefix = \"+33\"\ntrunk = \"gone\"\n[[account]]\nname = \"x\"\ndids = [\"+1\"]");
    match Config::parse(&text, "t").unwrap().snapshot(HOST) {
        Err(Error::Invalid { problems, .. }) => {
            assert!(problems.iter().any(|p| p.path == "route[4].trunk"), "{problems:?}");
            assert!(problems.iter().any(|p| p.path == "account[2].dids[0]"), "{problems:?}");
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn every_file_under_config_gives_a_snapshot() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") && path.file_name().unwrap() != "Cargo.toml" {
            let text = std::fs::read_to_string(&path).unwrap();
            let cfg = Config::parse(&text, &path.display().to_string()).unwrap();
            let s = cfg.snapshot(HOST).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(s.trunks.len(), cfg.trunks.len());
            assert_eq!(s.routes.len(), cfg.routes.len());
            n += 1;
        }
    }
    assert!(n >= 2, "expected xtrunk.toml and carrier.example.toml, found {n} files");
    let s = Snapshot::embedded_default().unwrap();
    let pbx = s.trunk_by_name("local-pbx").unwrap();
    assert_eq!(s.trunk_by_acl(IpAddr::from([127, 0, 0, 1])), Some(pbx));
    assert_eq!(s.route(pbx, "+4930123"), s.trunk_by_name("local-carrier"));
}

#[test]
fn load_names_the_file() {
    let dir = std::env::temp_dir().join(format!("xtrunk-snapshot-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("snap.toml");
    std::fs::write(&f, DEFAULT_TOML).unwrap();
    assert_eq!(Snapshot::load(&f).unwrap(), Snapshot::embedded_default().unwrap());
    std::fs::write(&f, "[[route]]\ntrunk = \"gone\"\n").unwrap();
    let err = Snapshot::load(&f).unwrap_err().to_string();
    assert!(err.contains("snap.toml") && err.contains("route[0].trunk"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn shareable() {
    fn assert_send_sync_clone_debug<T: Send + Sync + Clone + std::fmt::Debug + 'static>() {}
    assert_send_sync_clone_debug::<Snapshot>();
    assert_send_sync_clone_debug::<TrunkView>();
    assert_send_sync_clone_debug::<AccountView>();
    assert_send_sync_clone_debug::<RouteView>();
}

#[test]
fn carrier_example_resolves_its_account() {
    let text = include_str!("../../carrier.example.toml");
    let s = Config::parse(text, "carrier.example.toml").unwrap().snapshot(HOST).unwrap();
    let acme = s.account_by_name("acme").unwrap();
    let pbx = s.trunk_by_name("acme-pbx").unwrap();
    assert_eq!(s.trunk(pbx).account, Some(acme));
    assert_eq!(s.account(acme).trunks, [pbx]);
    assert_eq!(s.did_owner("493012345650"), Some(acme));
    assert_eq!(s.did_owner("442071234567"), Some(acme));
    assert_eq!(s.did_owner("493012345700"), None);
}
