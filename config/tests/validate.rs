//! Every file under `config/` loads; every validation rule names its key path.

use xtrunk_config::{Config, Error, Host};

const HOST: Host = Host { cores: 2, check_paths: false };

/// Parses the embedded default, applies `edit` to its TOML text, validates, returns the messages.
fn problems_of(toml_text: &str) -> Vec<String> {
    let cfg = Config::parse(toml_text, "test").expect("parses");
    cfg.validate(HOST).iter().map(ToString::to_string).collect()
}

fn default_with(extra: &str) -> String {
    // Later keys cannot override earlier tables in TOML, so tests build on a minimal base.
    format!("{MINIMAL}\n{extra}")
}

const MINIMAL: &str = r#"
[[trunk]]
name = "pbx"
role = "customer"
acl = ["127.0.0.0/8"]

[[trunk]]
name = "carrier"
role = "carrier"
targets = [{ addr = "127.0.0.1:5080" }]
"#;

#[track_caller]
fn assert_problem(toml_text: &str, path: &str, needle: &str) {
    let probs = problems_of(toml_text);
    assert!(
        probs.iter().any(|p| p.starts_with(&format!("{path}: ")) && p.contains(needle)),
        "expected a problem at {path} containing {needle:?}, got {probs:#?}"
    );
}

#[test]
fn every_file_under_config_loads_and_validates() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut n = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") && path.file_name().unwrap() != "Cargo.toml" {
            let text = std::fs::read_to_string(&path).unwrap();
            let cfg = Config::parse(&text, &path.display().to_string()).unwrap_or_else(|e| panic!("{e}"));
            let probs = cfg.validate(HOST);
            assert!(probs.is_empty(), "{}: {probs:#?}", path.display());
            n += 1;
        }
    }
    assert!(n >= 2, "expected xtrunk.toml and carrier.example.toml, found {n} files");
}

#[test]
fn embedded_default_is_loopback_socket_backend() {
    let cfg = Config::parse(xtrunk_config::DEFAULT_TOML, "default").unwrap();
    assert!(cfg.validate(HOST).is_empty());
    assert_eq!(cfg.datapath.backend, xtrunk_config::Backend::Socket);
    assert!(cfg.media.bind_ip.is_loopback());
    assert!(cfg.sip.listen.iter().all(|l| l.addr.ip().is_loopback()));
    assert_eq!((cfg.media.port_min, cfg.media.port_max), (10000, 30000));
}

#[test]
fn empty_file_gets_defaults() {
    let cfg = Config::parse("", "empty").unwrap();
    assert!(cfg.validate(HOST).is_empty(), "{:?}", cfg.validate(HOST));
    assert_eq!(cfg.media.port_min, 10000);
}

#[test]
fn unknown_key_is_named() {
    let err = Config::parse("[media]\nport_mni = 10000\n", "f.toml").unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("port_mni") && msg.contains("f.toml"), "{msg}");
    let err = Config::parse("[datapth]\n", "f.toml").unwrap_err().to_string();
    assert!(err.contains("datapth"), "{err}");
}

#[test]
fn wrong_type_is_named() {
    let err = Config::parse("[media]\nport_min = \"ten\"\n", "f.toml").unwrap_err().to_string();
    assert!(err.contains("port_min"), "{err}");
    let err = Config::parse("[datapath]\nbackend = \"dpdk\"\n", "f.toml").unwrap_err().to_string();
    assert!(err.contains("backend") || err.contains("dpdk"), "{err}");
}

#[test]
fn port_range_inverted() {
    assert_problem(&default_with("[media]\nport_min = 20000\nport_max = 10000"), "media.port_max", "inverted");
}

#[test]
fn port_range_below_1024() {
    assert_problem(&default_with("[media]\nport_min = 80\nport_max = 30000"), "media.port_min", "1024-65535");
    assert_problem(&default_with("[media]\nport_min = 10000\nport_max = 1000"), "media.port_max", "1024-65535");
}

#[test]
fn port_min_odd() {
    assert_problem(&default_with("[media]\nport_min = 10001"), "media.port_min", "even");
}

#[test]
fn port_range_too_small() {
    assert_problem(
        &default_with("[media]\nport_min = 10000\nport_max = 10002\n[datapath]\nmax_sessions=1"),
        "media.port_max",
        "at least 4 ports",
    );
}

#[test]
fn sip_port_inside_media_range() {
    assert_problem(
        &default_with("[[sip.listen]]\ntransport = \"udp\"\naddr = \"127.0.0.1:12000\""),
        "sip.listen[0].addr",
        "inside the media range",
    );
}

#[test]
fn duplicate_listener() {
    assert_problem(
        &default_with("[[sip.listen]]\ntransport = \"udp\"\naddr = \"127.0.0.1:5060\"\n[[sip.listen]]\ntransport = \"udp\"\naddr = \"127.0.0.1:5060\""),
        "sip.listen[1].addr",
        "twice",
    );
}

#[test]
fn tls_without_files_and_files_without_tls() {
    assert_problem(
        &default_with("[[sip.listen]]\ntransport = \"tls\"\naddr = \"127.0.0.1:5061\""),
        "sip.listen[0].tls",
        "needs tls",
    );
    assert_problem(
        &default_with(
            "[[sip.listen]]\ntransport = \"udp\"\naddr = \"127.0.0.1:5061\"\ntls = { cert = \"a\", key = \"b\" }",
        ),
        "sip.listen[0].tls",
        "only meaningful",
    );
}

#[test]
fn no_listeners() {
    assert_problem(&default_with("[sip]\nlisten = []"), "sip.listen", "at least one");
}

#[test]
fn timers() {
    assert_problem(&default_with("[sip.timers]\nt1_ms = 0"), "sip.timers.t1_ms", "at least 1");
    assert_problem(&default_with("[sip.timers]\nt1_ms = 500\nt2_ms = 100"), "sip.timers.t2_ms", ">= t1_ms");
    assert_problem(&default_with("[sip.timers]\nt4_ms = 0"), "sip.timers.t4_ms", "at least 1");
}

#[test]
fn sip_limits() {
    assert_problem(&default_with("[sip]\nmax_message_bytes = 100"), "sip.max_message_bytes", "between");
    assert_problem(&default_with("[sip]\nno_answer_timeout_secs = 0"), "sip.no_answer_timeout_secs", "at least 1");
    assert_problem(&default_with("[sip]\nadvertised_host = \"a b\""), "sip.advertised_host", "host name");
}

#[test]
fn sip_tcp_limits() {
    assert_problem(&default_with("[sip]\ntcp_max_connections = 0"), "sip.tcp_max_connections", "between 1");
    assert_problem(&default_with("[sip]\ntcp_max_per_source = 0"), "sip.tcp_max_per_source", "between 1");
    assert_problem(
        &default_with("[sip]\ntcp_max_connections = 10\ntcp_max_per_source = 11"),
        "sip.tcp_max_per_source",
        "tcp_max_connections (10)",
    );
    assert_problem(&default_with("[sip]\ntcp_idle_timeout_s = 0"), "sip.tcp_idle_timeout_s", "between 1");
    assert_problem(
        &default_with("[sip]\ntcp_max_write_buffer = 1000"),
        "sip.tcp_max_write_buffer",
        "max_message_bytes",
    );
}

#[test]
fn node_rules() {
    assert_problem(&default_with("[node]\nname = \"\""), "node.name", "empty");
    assert_problem(&default_with("[node]\nshm_path = \"relative/x\""), "node.shm_path", "absolute");
}

#[test]
fn unspecified_bind_needs_advertised() {
    assert_problem(&default_with("[media]\nbind_ip = \"0.0.0.0\""), "media.advertised_ip", "must be set");
    assert_problem(&default_with("[media]\nadvertised_ip = \"0.0.0.0\""), "media.advertised_ip", "real address");
}

#[test]
fn core_that_does_not_exist() {
    assert_problem(
        &default_with("[datapath]\nsocket_cores = [0, 7]"),
        "datapath.socket_cores[1]",
        "core 7 does not exist",
    );
    assert_problem(&default_with("[datapath]\nsocket_cores = [1, 1]"), "datapath.socket_cores[1]", "twice");
    assert_problem(
        &default_with("[[datapath.af_xdp.interfaces]]\nname = \"eth0\"\nqueues = [{ id = 0, core = 9 }]"),
        "datapath.af_xdp.interfaces[0].queues[0].core",
        "does not exist",
    );
}

#[test]
fn queue_count_power_of_two() {
    assert_problem(
        &default_with("[[datapath.af_xdp.interfaces]]\nname = \"eth0\"\nqueues = [{ id = 0, core = 0 }, { id = 1, core = 1 }, { id = 2, core = 2 }]"),
        "datapath.af_xdp.interfaces[0].queues",
        "power of two",
    );
}

#[test]
fn queue_rules() {
    let t = default_with(
        "[[datapath.af_xdp.interfaces]]\nname = \"eth0\"\nqueues = [{ id = 0, core = 0 }, { id = 0, core = 0 }]",
    );
    assert_problem(&t, "datapath.af_xdp.interfaces[0].queues[1].id", "twice");
    assert_eq!(problems_of(&t).len(), 1, "a repeated queue is reported once: {:?}", problems_of(&t));
    assert_problem(
        &default_with("[[datapath.af_xdp.interfaces]]\nname = \"eth0\"\nqueues = []"),
        "datapath.af_xdp.interfaces[0].queues",
        "at least one",
    );
    assert_problem(
        &default_with("[[datapath.af_xdp.interfaces]]\nname = \"a/b\"\nqueues = [{ id = 0, core = 0 }]"),
        "datapath.af_xdp.interfaces[0].name",
        "interface name",
    );
    assert_problem(
        &default_with("[[datapath.af_xdp.interfaces]]\nname = \"e\"\nqueues = [{ id = 0, core = 0 }]\n[[datapath.af_xdp.interfaces]]\nname = \"e\"\nqueues = [{ id = 0, core = 1 }]"),
        "datapath.af_xdp.interfaces[1].name",
        "twice",
    );
}

/// `n` interfaces, each with `queues` as TOML inline tables.
fn interfaces(n: usize, queues: &str) -> String {
    (0..n).map(|i| format!("[[datapath.af_xdp.interfaces]]\nname = \"eth{i}\"\nqueues = [{queues}]\n")).collect()
}

#[test]
fn one_worker_per_queue_index_on_its_core() {
    // What the runtime runs: worker q serves queue q of every interface, pinned to q's core. Two
    // interfaces x two queues need two cores, not four.
    let ok = default_with(&interfaces(2, "{ id = 0, core = 0 }, { id = 1, core = 1 }"));
    assert_eq!(problems_of(&ok), Vec::<String>::new());
    // A queue listed on one interface only is fine too.
    let ok = default_with(&format!(
        "{}{}",
        interfaces(1, "{ id = 0, core = 0 }, { id = 1, core = 1 }"),
        "[[datapath.af_xdp.interfaces]]\nname = \"wan\"\nqueues = [{ id = 1, core = 1 }]\n"
    ));
    assert_eq!(problems_of(&ok), Vec::<String>::new());
    // Queue 1 pinned to another core on the second interface: the runtime has one worker for it.
    let t = default_with(&format!(
        "{}{}",
        interfaces(1, "{ id = 0, core = 0 }, { id = 1, core = 1 }"),
        "[[datapath.af_xdp.interfaces]]\nname = \"wan\"\nqueues = [{ id = 0, core = 0 }, { id = 1, core = 0 }]\n"
    ));
    assert_problem(&t, "datapath.af_xdp.interfaces[1].queues[1].core", "pinned to core 1");
    assert_problem(&t, "datapath.af_xdp.interfaces[1].queues[1].core", "interfaces[0].queues[1].core");
    // Two queue indices on one core: two workers would share it.
    let t = default_with(&interfaces(1, "{ id = 0, core = 1 }, { id = 1, core = 1 }"));
    assert_problem(&t, "datapath.af_xdp.interfaces[0].queues[1].core", "core 1 already serves queue 0");
}

#[test]
fn queue_and_interface_limits_of_the_xdp_program() {
    assert_problem(
        &default_with(&interfaces(1, "{ id = 64, core = 0 }")),
        "datapath.af_xdp.interfaces[0].queues[0].id",
        "must be below 64",
    );
    assert!(problems_of(&default_with(&interfaces(1, "{ id = 63, core = 0 }"))).is_empty());
    assert_problem(&default_with(&interfaces(9, "{ id = 0, core = 0 }")), "datapath.af_xdp.interfaces", "at most 8");
    assert!(problems_of(&default_with(&interfaces(8, "{ id = 0, core = 0 }"))).is_empty());
}

#[test]
fn leg_timeout_rules() {
    for ok in ["[media]\nleg_timeout_secs = 0", "[media]\nleg_timeout_secs = 10", "[media]\nleg_timeout_secs = 86400"] {
        assert!(problems_of(&default_with(ok)).is_empty(), "{ok}");
    }
    assert_problem(&default_with("[media]\nleg_timeout_secs = 5"), "media.leg_timeout_secs", "got 5");
    assert_problem(
        &default_with("[media]\nleg_timeout_secs = 86401"),
        "media.leg_timeout_secs",
        "between 10 and 86400",
    );
    let t =
        format!("{MINIMAL}\n[[trunk]]\nname = \"x\"\nrole = \"carrier\"\nacl = [\"10.0.0.0/8\"]\nleg_timeout_secs = 3");
    assert_problem(&t, "trunk[2].leg_timeout_secs", "must be 0 (off) or between 10 and 86400");
}

#[test]
fn leg_timeout_defaults_and_trunk_override() {
    let snap = |text: &str| Config::parse(text, "test").unwrap().snapshot(HOST).unwrap();
    let t = format!("[media]\ntimeout_secs = 45\n{MINIMAL}");
    let s = snap(&t);
    assert_eq!(s.trunks.iter().map(|t| t.leg_timeout_secs).collect::<Vec<_>>(), [45, 45], "timeout_secs");
    let t = format!("[media]\ntimeout_secs = 5\n{MINIMAL}");
    assert_eq!(snap(&t).trunks[0].leg_timeout_secs, 10, "raised to the RTCP-safe minimum");
    let t = format!("[media]\nleg_timeout_secs = 0\n{MINIMAL}\nleg_timeout_secs = 20");
    let s = snap(&t);
    assert_eq!(s.trunks.iter().map(|t| t.leg_timeout_secs).collect::<Vec<_>>(), [0, 20], "off; the trunk's own");
}

#[test]
fn af_xdp_needs_interfaces() {
    assert_problem(
        &default_with("[datapath]\nbackend = \"af_xdp\""),
        "datapath.af_xdp.interfaces",
        "at least one interface",
    );
}

#[test]
fn ring_sizes_power_of_two() {
    assert_problem(
        &default_with("[datapath.ring]\ncommands = 1000"),
        "datapath.ring.commands",
        "must be a power of two, got 1000",
    );
    assert_problem(&default_with("[datapath.ring]\nevents = 4"), "datapath.ring.events", "between");
    assert_problem(
        &default_with("[datapath.af_xdp]\nring_size = 1000"),
        "datapath.af_xdp.ring_size",
        "must be a power of two, got 1000",
    );
    assert_problem(
        &default_with("[datapath.af_xdp]\nframe_count = 3000"),
        "datapath.af_xdp.frame_count",
        "power of two",
    );
    assert_problem(
        &default_with("[datapath.af_xdp]\nframe_count = 1024\nring_size = 1024"),
        "datapath.af_xdp.frame_count",
        "2 x ring_size",
    );
    assert_problem(&default_with("[datapath.af_xdp]\nframe_size = 1500"), "datapath.af_xdp.frame_size", "2048 or 4096");
}

#[test]
fn max_sessions_vs_ports() {
    assert_problem(&default_with("[datapath]\nmax_sessions = 0"), "datapath.max_sessions", "at least 1");
    assert_problem(
        &default_with("[media]\nport_min = 10000\nport_max = 10999\n[datapath]\nmax_sessions = 1000"),
        "datapath.max_sessions",
        "need 4000 ports",
    );
}

#[test]
fn trunk_rules() {
    assert_problem(
        &format!("{MINIMAL}\n[[trunk]]\nname = \"pbx\"\nrole = \"customer\"\nacl = [\"10.0.0.0/8\"]"),
        "trunk[2].name",
        "defined twice",
    );
    assert_problem(
        "[[trunk]]\nname = \"a b\"\nrole = \"customer\"\nacl = [\"10.0.0.0/8\"]",
        "trunk[0].name",
        "[A-Za-z0-9._-]",
    );
    assert_problem("[[trunk]]\nname = \"x\"\nrole = \"carrier\"", "trunk[0].acl", "needs an acl");
    assert_problem(
        "[[trunk]]\nname = \"x\"\nrole = \"customer\"\nacl = [\"10.0.0.0/8\"]\ncodecs = [\"PCMA\", \"AMR\"]",
        "trunk[0].codecs[1]",
        "unknown codec \"AMR\"",
    );
    assert_problem(
        "[[trunk]]\nname = \"x\"\nrole = \"customer\"\nacl = [\"10.0.0.0/8\"]\ncodecs = [\"PCMA\", \"pcma\"]",
        "trunk[0].codecs[1]",
        "twice",
    );
    assert_problem(
        "[[trunk]]\nname = \"x\"\nrole = \"customer\"\nacl = [\"10.0.0.0/8\"]\ncodecs = []",
        "trunk[0].codecs",
        "at least one codec",
    );
    assert_problem(
        "[[trunk]]\nname = \"x\"\nrole = \"customer\"\nacl = [\"10.0.0.0/8\"]\ndtmf = \"sip-info\"",
        "trunk[0].dtmf",
        "must be one of rfc4733, inband, both, got \"sip-info\"",
    );
    assert_problem(
        "[[trunk]]\nname = \"x\"\nrole = \"customer\"\nacl = [\"10.0.0.0/8\"]\ncodecs = [\"telephone-event\"]",
        "trunk[0].codecs",
        "audio codec",
    );
    assert_problem(
        "[[trunk]]\nname = \"x\"\nrole = \"customer\"\nacl = [\"10.0.0.0/8\"]\nsrtp_suites = [\"F8_128\"]",
        "trunk[0].srtp_suites[0]",
        "unknown SRTP suite",
    );
    assert_problem(
        "[[trunk]]\nname = \"x\"\nrole = \"customer\"\nacl = [\"10.0.0.0/8\"]\nsrtp = \"mandatory\"\nsrtp_suites = []",
        "trunk[0].srtp_suites",
        "needs at least one suite",
    );
    assert_problem(
        "[[trunk]]\nname = \"x\"\nrole = \"carrier\"\ntargets = [{ addr = \"0.0.0.0:5060\" }]",
        "trunk[0].targets[0].addr",
        "reachable",
    );
}

#[test]
fn bad_acl_is_a_parse_error_naming_the_value() {
    let err = Config::parse("[[trunk]]\nname = \"x\"\nrole = \"customer\"\nacl = [\"10.0.0.0/99\"]", "f")
        .unwrap_err()
        .to_string();
    assert!(err.contains("acl"), "{err}");
}

#[test]
fn route_rules() {
    assert_problem(
        &default_with("[[route]]\nprefix = \"+44\"\ntrunk = \"nowhere\""),
        "route[0].trunk",
        "no trunk named \"nowhere\"",
    );
    assert_problem(&default_with("[[route]]\nprefix = \"+44\"\ntrunk = \"pbx\""), "route[0].trunk", "no targets");
    assert_problem(&default_with("[[route]]\nprefix = \"44x\"\ntrunk = \"carrier\""), "route[0].prefix", "digits");
    assert_problem(
        &default_with("[[route]]\nprefix = \"+44\"\nfrom_trunk = \"ghost\"\ntrunk = \"carrier\""),
        "route[0].from_trunk",
        "no trunk named",
    );
    assert_problem(
        &default_with(
            "[[route]]\nprefix = \"+44\"\ntrunk = \"carrier\"\n[[route]]\nprefix = \"+44\"\ntrunk = \"carrier\"",
        ),
        "route[1].prefix",
        "routed twice",
    );
}

#[test]
fn all_problems_reported_at_once() {
    let probs = problems_of("[media]\nport_min = 80\nport_max = 70\n[datapath.ring]\ncommands = 1000\nevents = 1000");
    assert!(probs.len() >= 4, "{probs:#?}");
}

#[test]
fn load_reports_file_name_and_all_problems() {
    let dir = std::env::temp_dir().join(format!("xtrunk-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("bad.toml");
    std::fs::write(&f, "[datapath.ring]\ncommands = 1000\nevents = 3\n").unwrap();
    let err = Config::load(&f).unwrap_err();
    match &err {
        Error::Invalid { problems, .. } => assert_eq!(problems.len(), 2, "{problems:?}"),
        other => panic!("expected Invalid, got {other}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains("bad.toml") && msg.contains("datapath.ring.commands") && msg.contains("datapath.ring.events"),
        "{msg}"
    );
    let missing = Config::load(&dir.join("nope.toml")).unwrap_err().to_string();
    assert!(missing.contains("nope.toml") && missing.contains("cannot read"), "{missing}");
    std::fs::remove_dir_all(&dir).unwrap();
}

// --- accounts, DIDs, trunk policy keys, ACL overlap ---

const ACCOUNTS: &str = r#"
[[account]]
name = "acme"
dids = ["442071234567", "15551230000-15551239999", "1555120-1555129"]

[[account]]
name = "globex"
dids = ["442071234568"]
"#;

#[test]
fn accounts_with_disjoint_pools_are_valid() {
    let text = format!("{MINIMAL}\n{ACCOUNTS}");
    assert!(problems_of(&text).is_empty(), "{:#?}", problems_of(&text));
    let cfg = Config::parse(&text, "t").unwrap();
    assert_eq!(cfg.accounts.len(), 2);
    assert_eq!(cfg.accounts[0].dids.len(), 3);
    assert!(cfg.trunks.iter().all(|t| t.account.is_none()));
    // Lengths differ, so a 7-digit range and an 11-digit number starting alike do not overlap.
    assert!(problems_of(&format!(
        "{MINIMAL}\n[[account]]\nname = \"a\"\ndids = [\"1555120-1555129\", \"15551200000\"]"
    ))
    .is_empty());
}

#[test]
fn account_without_dids_and_empty_list() {
    assert!(problems_of(&format!("{MINIMAL}\n[[account]]\nname = \"a\"")).is_empty());
    assert!(problems_of("").is_empty());
    assert!(Config::parse("", "t").unwrap().accounts.is_empty());
}

#[test]
fn account_unknown_key_is_a_parse_error() {
    let err = Config::parse("[[account]]\nname = \"a\"\nnumbers = []", "f.toml").unwrap_err().to_string();
    assert!(err.contains("numbers"), "{err}");
}

#[test]
fn account_names() {
    assert_problem(&format!("{MINIMAL}\n[[account]]\nname = \"\""), "account[0].name", "must not be empty");
    assert_problem(
        &format!("{MINIMAL}\n[[account]]\nname = \"a\"\n[[account]]\nname = \"a\""),
        "account[1].name",
        "defined twice",
    );
}

#[test]
fn did_with_plus_prefix() {
    assert_problem(
        &format!("{MINIMAL}\n[[account]]\nname = \"a\"\ndids = [\"+442071234567\"]"),
        "account[0].dids[0]",
        "without + or 0/00 prefixes",
    );
}

#[test]
fn did_with_0_prefix() {
    assert_problem(
        &format!("{MINIMAL}\n[[account]]\nname = \"a\"\ndids = [\"1\", \"02071234567\"]"),
        "account[0].dids[1]",
        "starts with \"0\": DID pools hold national-significant E.164 digits without + or 0/00 prefixes",
    );
    // A range whose end carries the prefix.
    assert_problem(
        &format!("{MINIMAL}\n[[account]]\nname = \"a\"\ndids = [\"1555-0555\"]"),
        "account[0].dids[0]",
        "starts with \"0\"",
    );
}

#[test]
fn did_with_00_prefix() {
    assert_problem(
        &format!("{MINIMAL}\n[[account]]\nname = \"a\"\ndids = [\"00442071234567\"]"),
        "account[0].dids[0]",
        "starts with \"00\"",
    );
}

#[test]
fn did_syntax() {
    let with = |d: &str| format!("{MINIMAL}\n[[account]]\nname = \"a\"\ndids = [\"{d}\"]");
    assert_problem(&with("4420-71234567"), "account[0].dids[0]", "same number of digits");
    assert_problem(&with("1555129-1555120"), "account[0].dids[0]", "above end");
    assert_problem(&with("44 20"), "account[0].dids[0]", "digits only");
    assert_problem(&with(""), "account[0].dids[0]", "must be a number");
    assert_problem(&with("1234567890123456"), "account[0].dids[0]", "at most 15");
}

#[test]
fn did_overlap_across_accounts() {
    let text = format!(
        "{MINIMAL}\n{ACCOUNTS}\n[[account]]\nname = \"initech\"\ndids = [\"1555123\", \"15551230000-15551230099\"]"
    );
    assert_problem(
        &text,
        "account[2].dids[0]",
        "\"1555123\" overlaps account[0].dids[2] (\"1555120-1555129\", account \"acme\")",
    );
    assert_problem(
        &text,
        "account[2].dids[1]",
        "overlaps account[0].dids[1] (\"15551230000-15551239999\", account \"acme\")",
    );
    // The globex number is not involved.
    assert!(!problems_of(&text).iter().any(|p| p.starts_with("account[1]")), "{:#?}", problems_of(&text));
}

#[test]
fn did_overlap_within_one_account() {
    assert_problem(
        &format!("{MINIMAL}\n[[account]]\nname = \"a\"\ndids = [\"1555120-1555129\", \"1555125-1555135\"]"),
        "account[0].dids[1]",
        "overlaps account[0].dids[0] (\"1555120-1555129\", account \"a\")",
    );
    assert_problem(
        &format!("{MINIMAL}\n[[account]]\nname = \"a\"\ndids = [\"442071234567\", \"442071234567\"]"),
        "account[0].dids[1]",
        "overlaps account[0].dids[0]",
    );
}

#[test]
fn trunk_names_unknown_account() {
    let text = format!(
        "{ACCOUNTS}\n[[trunk]]\nname = \"pbx\"\nrole = \"customer\"\nacl = [\"127.0.0.0/8\"]\naccount = \"acme\"\n\
         [[trunk]]\nname = \"pbx2\"\nrole = \"customer\"\nacl = [\"10.0.0.0/8\"]\naccount = \"ghost\""
    );
    assert_problem(&text, "trunk[1].account", "no account named \"ghost\"");
    assert!(!problems_of(&text).iter().any(|p| p.starts_with("trunk[0]")), "{:#?}", problems_of(&text));
}

#[test]
fn route_to_deleted_trunk() {
    // The route was written for a trunk "backup" that has since been removed from the file.
    let text = default_with(
        "[[route]]\nprefix = \"+49\"\nfrom_trunk = \"pbx\"\ntrunk = \"backup\"\n\
         [[route]]\nprefix = \"+49\"\nfrom_trunk = \"backup\"\ntrunk = \"carrier\"",
    );
    assert_problem(&text, "route[0].trunk", "no trunk named \"backup\"");
    assert_problem(&text, "route[1].from_trunk", "no trunk named \"backup\"");
}

#[test]
fn trunk_kinds() {
    let t = |kind: &str| {
        format!("{MINIMAL}\n[[trunk]]\nname = \"x\"\nrole = \"customer\"\nacl = [\"10.0.0.0/8\"]\nkind = \"{kind}\"")
    };
    assert_problem(&t("register"), "trunk[2].registration", "needs at least one [[trunk.registration]]");
    assert!(problems_of(&t("accept-register")).is_empty(), "{:?}", problems_of(&t("accept-register")));
    let bad = format!("{}\n[trunk.registrar]\nmin_expires_secs = 0", t("accept-register"));
    assert_problem(&bad, "trunk[2].registrar.min_expires_secs", "must be 1..=");
    assert!(problems_of(&t("ip")).is_empty());
    let err = Config::parse(&t("registered"), "f").unwrap_err().to_string();
    assert!(err.contains("kind") || err.contains("registered"), "{err}");
}

#[test]
fn register_trunks_and_their_registrations() {
    let reg = |extra: &str| {
        format!(
            "{MINIMAL}\n[[trunk]]\nname = \"kw\"\nrole = \"carrier\"\nkind = \"register\"\n{extra}\n\
             [[trunk.registration]]\nregistrar = \"192.0.2.1:5060\"\nusername = \"3100\"\npassword = \"pw\"\n"
        )
    };
    assert!(problems_of(&reg("")).is_empty(), "{:?}", problems_of(&reg("")));
    let second = format!(
        "{}[[trunk.registration]]\nregistrar = \"192.0.2.2:5060\"\nusername = \"3100\"\npassword = \"pw\"\n",
        reg("")
    );
    assert!(problems_of(&second).is_empty(), "primary and secondary: {:?}", problems_of(&second));
    assert_problem(
        &reg("targets = [{ addr = \"192.0.2.9:5060\" }]"),
        "trunk[2].targets",
        "its [[trunk.registration]] registrars",
    );
    assert_problem(&reg("auth = \"digest\""), "trunk[2].auth", "known by their source");
    let bad = reg("")
        .replace("username = \"3100\"", "username = \"a b\"")
        .replace("password = \"pw\"", "password = \"\"\nexpires_secs = 5");
    assert_problem(&bad, "trunk[2].registration[0].username", "SIP user part");
    assert_problem(&bad, "trunk[2].registration[0].password", "non-empty");
    assert_problem(&bad, "trunk[2].registration[0].expires_secs", "10..=86400, got 5");
    let twice = format!(
        "{}[[trunk.registration]]\nregistrar = \"192.0.2.1:5060\"\nusername = \"9\"\npassword = \"pw\"\n",
        reg("")
    );
    assert_problem(&twice, "trunk[2].registration[1].registrar", "listed twice");
    let ip = "[[trunk]]\nname = \"ipx\"\nrole = \"carrier\"\ntargets = [{ addr = \"192.0.2.5:5060\" }]\n\
              [[trunk.registration]]\nregistrar = \"192.0.2.1:5060\"\nusername = \"1\"\npassword = \"pw\"\n";
    assert_problem(&format!("{MINIMAL}\n{ip}"), "trunk[2].registration", "only a trunk with kind = \"register\"");
    // Two trunks registering the same contact at one registrar could not be told apart.
    let other = "[[trunk]]\nname = \"kw2\"\nrole = \"carrier\"\nkind = \"register\"\n\
                 [[trunk.registration]]\nregistrar = \"192.0.2.1:5060\"\nusername = \"3100\"\npassword = \"x\"\n";
    assert_problem(
        &format!("{}{other}", reg("")),
        "trunk[3].registration[0].contact_user",
        "registered by another trunk",
    );
}

#[test]
fn trunk_auth_digest_needs_users() {
    let t = |auth: &str| {
        format!("{MINIMAL}\n[[trunk]]\nname = \"x\"\nrole = \"customer\"\nacl = [\"10.0.0.0/8\"]\nauth = \"{auth}\"")
    };
    assert_problem(&t("digest"), "trunk[2].users", "auth uses digest but the trunk has no users");
    assert_problem(&t("both"), "trunk[2].users", "no users");
    assert!(problems_of(&t("acl")).is_empty());
    let with_user = format!("{}\n[[trunk.users]]\nusername = \"a\"\nha1_md5 = \"{}\"", t("digest"), "0".repeat(32));
    assert!(problems_of(&with_user).is_empty());
    let shared = format!(
        "{with_user}\n[[trunk]]\nname = \"y\"\nrole = \"customer\"\nauth = \"digest\"\n\
         [[trunk.users]]\nusername = \"a\"\npassword = \"p\""
    );
    assert_problem(&shared, "trunk[3].users[0].username", "\"a\" is a user of trunk \"x\" too");
}

#[test]
fn acl_overlap_across_trunks() {
    let text = "[[trunk]]\nname = \"pbx\"\nrole = \"customer\"\nacl = [\"192.0.2.0/24\", \"10.1.0.0/16\"]\n\
                [[trunk]]\nname = \"pbx2\"\nrole = \"customer\"\nacl = [\"10.0.0.0/8\"]";
    assert_problem(text, "trunk[1].acl[0]", "10.0.0.0/8 overlaps trunk[0].acl[1] (10.1.0.0/16, trunk \"pbx\")");
    // Same network twice, IPv6.
    assert_problem(
        "[[trunk]]\nname = \"a\"\nrole = \"customer\"\nacl = [\"2001:db8::/32\"]\n\
         [[trunk]]\nname = \"b\"\nrole = \"customer\"\nacl = [\"2001:db8::/32\"]",
        "trunk[1].acl[0]",
        "overlaps trunk[0].acl[0] (2001:db8::/32, trunk \"a\")",
    );
}

#[test]
fn acl_without_overlap_is_fine() {
    // Adjacent networks, other families, and nesting inside one trunk are not overlaps across trunks.
    let text = "[[trunk]]\nname = \"a\"\nrole = \"customer\"\nacl = [\"10.0.0.0/9\", \"10.1.0.0/16\", \"::/0\"]\n\
                [[trunk]]\nname = \"b\"\nrole = \"customer\"\nacl = [\"10.128.0.0/9\"]";
    assert!(problems_of(text).is_empty(), "{:#?}", problems_of(text));
}

#[test]
fn tls_listeners_and_targets_are_served() {
    let cfg = default_with(
        "[[sip.listen]]\ntransport = \"tls\"\naddr = \"127.0.0.1:5061\"\ntls = { cert = \"/c.pem\", key = \"/k.pem\" }\n\
         [[trunk]]\nname = \"tls-carrier\"\nrole = \"carrier\"\n\
         targets = [{ addr = \"192.0.2.1:5061\", transport = \"tls\" }]\ntls = { server_name = \"sip.example\" }",
    );
    assert!(problems_of(&cfg).is_empty(), "{:?}", problems_of(&cfg));
    let bad = default_with(
        "[[trunk]]\nname = \"t\"\nrole = \"carrier\"\nacl = [\"192.0.2.0/24\"]\ntls = { server_name = \"\" }",
    );
    assert_problem(&bad, "trunk[2].tls.server_name", "must not be empty");
}

#[test]
fn missing_directories_of_the_ring_and_the_cdr_file_are_reported_on_this_host() {
    let mut cfg = xtrunk_config::Config::embedded_default().unwrap();
    cfg.node.shm_path = "/no/such/dir/ring".into();
    cfg.node.cdr_path = Some("/no/such/cdr-dir/cdr.jsonl".into());
    let p: Vec<String> = cfg.validate(xtrunk_config::Host::this()).iter().map(|p| p.to_string()).collect();
    assert!(p.iter().any(|p| p.contains("node.shm_path") && p.contains("/no/such/dir does not exist")), "{p:?}");
    assert!(p.iter().any(|p| p.contains("node.cdr_path") && p.contains("/no/such/cdr-dir does not exist")), "{p:?}");
    // Validated away from its host, the same file is fine.
    assert!(cfg.validate(HOST).is_empty());
}

#[test]
fn a_listeners_advertised_host_must_be_a_host() {
    assert_problem(
        &default_with("[[sip.listen]]\ntransport = \"udp\"\naddr = \"127.0.0.1:5070\"\nadvertised = \"a b\""),
        "sip.listen[0].advertised",
        "must be a host name or IP",
    );
}

#[test]
fn options_probing_rules() {
    let carrier = |opts: &str| format!("{MINIMAL}options = {{ {opts} }}\n");
    assert!(problems_of(&carrier("interval_secs = 10")).is_empty());
    assert!(problems_of(&carrier("interval_secs = 0, failures = 0")).is_empty(), "off: the rest is not checked");
    assert_problem(&carrier("interval_secs = 5"), "trunk[1].options.interval_secs", "at most one probe per 10 s");
    assert_problem(&carrier("interval_secs = 30, failures = 0"), "trunk[1].options.failures", "1..=100");
    assert_problem(&carrier("interval_secs = 30, successes = 101"), "trunk[1].options.successes", "1..=100");
    assert_problem(&carrier("interval_secs = 10, timeout_ms = 10000"), "trunk[1].options.timeout_ms", "below");
    // A PBX may be probed faster (a customer's own keepalive), a trunk with no targets not at all.
    let pbx = MINIMAL.replace(
        "acl = [\"127.0.0.0/8\"]",
        "acl = [\"127.0.0.0/8\"]\noptions = { interval_secs = 2, timeout_ms = 500 }",
    );
    assert_problem(&pbx, "trunk[0].options", "needs targets");
    let snap = Config::parse(&carrier("interval_secs = 60"), "test").unwrap().snapshot(HOST).unwrap();
    assert_eq!(snap.trunks[1].options.interval_secs, 60);
    assert_eq!((snap.trunks[1].options.failures, snap.trunks[1].options.successes), (3, 2), "defaults");
}

#[test]
fn distribution_and_weights() {
    let t = MINIMAL.replace(
        "targets = [{ addr = \"127.0.0.1:5080\" }]",
        "distribution = \"weight\"\ntargets = [{ addr = \"127.0.0.1:5080\", weight = 3 }, { addr = \"127.0.0.1:5082\", weight = 0 }]",
    );
    assert_problem(&t, "trunk[1].targets[1].weight", "1..=1000");
    let ok = t.replace("weight = 0", "weight = 1");
    let snap = Config::parse(&ok, "test").unwrap().snapshot(HOST).unwrap();
    assert_eq!(snap.trunks[1].distribution, xtrunk_config::Distribution::Weight);
    assert_eq!(snap.trunks[1].targets.iter().map(|t| t.weight).collect::<Vec<_>>(), [3, 1]);
    let bad = MINIMAL.replace("role = \"carrier\"", "role = \"carrier\"\ndistribution = \"random\"");
    assert!(Config::parse(&bad, "test").is_err(), "unknown distribution refused");
}

/// #15: the admission tables name every bad key.
#[test]
fn admission_tables_name_their_bad_keys() {
    let trunk = |t: &str| format!("[[trunk]]\nname = \"x\"\nrole = \"customer\"\nacl = [\"10.9.0.0/16\"]\n{t}");
    for (extra, path, needle) in [
        (trunk("[trunk.limits]\nchannels = 0"), "trunk[2].limits.channels", "at least 1"),
        (
            trunk("[trunk.limits]\nchannels = 5\nchannels_inbound = 6"),
            "trunk[2].limits.channels_inbound",
            "above channels",
        ),
        (trunk("[trunk.limits]\ncps = -1.0"), "trunk[2].limits.cps", "above 0"),
        (trunk("[trunk.limits]\nchannels_full_code = 200"), "trunk[2].limits.channels_full_code", "400-699"),
        (trunk("[trunk.limits]\ncps_queue_ms = 60000"), "trunk[2].limits.cps_queue_ms", "at most"),
        (
            trunk("[trunk.limits]\ncalls_per_hour = 10\ncalls_per_day = 5"),
            "trunk[2].limits.calls_per_hour",
            "above calls_per_day",
        ),
        (trunk("[trunk.numbers]\ncountry = \"XX\""), "trunk[2].numbers.country", "ISO 3166"),
        (
            trunk("[trunk.numbers]\ncli_block_prefixes = [\"+61a\"]"),
            "trunk[2].numbers.cli_block_prefixes[0]",
            "E.164 digits",
        ),
        (
            "[[account]]\nname = \"a\"\n[account.destinations]\ndeny_countries = [\"GB\", \"ZZ\"]".to_string(),
            "account[0].destinations.deny_countries[1]",
            "ISO 3166",
        ),
        (
            "[[account]]\nname = \"a\"\n[account.destinations]\ndeny_prefixes = [\"+44\"]".to_string(),
            "account[0].destinations.deny_prefixes[0]",
            "no + or 0",
        ),
        (
            "[[account]]\nname = \"a\"\n[account.fraud]\ncalls_per_minute = { warning = 10, critical = 5 }".to_string(),
            "account[0].fraud.calls_per_minute.warning",
            "above critical",
        ),
        (
            "[[account]]\nname = \"a\"\n[account.fraud]\nmin_avg_duration_secs = { warning = 2, critical = 5 }"
                .to_string(),
            "account[0].fraud.min_avg_duration_secs.warning",
            "below critical",
        ),
        (
            "[[account]]\nname = \"a\"\n[account.fraud]\nprefix_digits = 0".to_string(),
            "account[0].fraud.prefix_digits",
            "1-15",
        ),
    ] {
        assert_problem(&default_with(&extra), path, needle);
    }
    let err =
        Config::parse(&default_with("[[account]]\nname = \"a\"\n[account.limits]\nchanels = 3"), "t").unwrap_err();
    assert!(err.to_string().contains("chanels"), "{err}");
}

#[test]
fn every_config_file_round_trips_through_to_toml() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for f in ["xtrunk.toml", "carrier.example.toml"] {
        let text = std::fs::read_to_string(dir.join(f)).unwrap();
        let cfg = xtrunk_config::Config::parse(&text, f).unwrap();
        let back = xtrunk_config::Config::parse(&cfg.to_toml().unwrap(), f).unwrap();
        assert_eq!(back, cfg, "{f}");
    }
}

#[test]
fn operations_tables_are_checked_with_their_key_paths() {
    assert_problem(&default_with("[cdr]\nstore = \"sqlite\"\n"), "cdr.store", "needs node.cdr_path");
    assert_problem(&default_with("[cdr]\nstore = \"postgres\"\n"), "cdr.postgres", "must be set");
    assert_problem(&default_with("[cdr]\nbatch_max = 0\n"), "cdr.batch_max", "got 0");
    assert_problem(&default_with("[control]\nlisten = \"0.0.0.0:9465\"\n"), "control.listen", "not loopback");
    assert_problem(
        &default_with("[control]\nadmin_token_file = \"/x\"\n"),
        "control.admin_token_file",
        "needs control.listen",
    );
    let ok = "[control]\nlisten = \"0.0.0.0:9465\"\nallow_remote = true\n";
    assert!(problems_of(&default_with(ok)).is_empty());
    assert!(Config::parse(&default_with("[cdr]\nstore = \"mysql\"\n"), "t").is_err(), "unknown store kind");
    assert!(Config::parse(&default_with("[control]\nport = 1\n"), "t").is_err(), "unknown key");
}

#[test]
fn trunk_domains_are_checked_and_exclusive_with_targets() {
    let t = |extra: &str| default_with(&format!("[[trunk]]\nname = \"dns\"\nrole = \"carrier\"\n{extra}\n"));
    assert!(problems_of(&t("domain = \"sip.carrier.example\"")).is_empty());
    assert!(problems_of(&t("domain = \"sip.carrier.example:5080\"")).is_empty());
    assert_problem(&t("domain = \"bad_name..example\""), "trunk[2].domain", "must be a domain name");
    assert_problem(&t("domain = \"192.0.2.1\""), "trunk[2].domain", "list it in targets");
    assert_problem(&t("domain = \"a.example:0\""), "trunk[2].domain", "port");
    assert_problem(
        &t("domain = \"a.example\"\ntargets = [{ addr = \"192.0.2.1:5060\" }]"),
        "trunk[2].domain",
        "not both",
    );
    // A route may go to a domain trunk (it has no static targets).
    let routed = format!("{}\n[[route]]\ntrunk = \"dns\"\n", t("domain = \"a.example\""));
    assert!(problems_of(&routed).is_empty(), "{:?}", problems_of(&routed));
    assert_problem(&default_with("[sip.dns]\nmin_ttl_secs = 0\n"), "sip.dns.min_ttl_secs", "1..=");
    assert_problem(&default_with("[sip.dns]\nservers = [\"0.0.0.0:53\"]\n"), "sip.dns.servers[0]", "name server");
}

#[test]
fn route_caller_prefix_and_time_window_name_the_key() {
    let r = |extra: &str| default_with(&format!("[[route]]\ntrunk = \"carrier\"\n{extra}\n"));
    assert!(problems_of(&r("caller_prefix = \"+4930\"\ntime = { from = \"22:00\", to = \"06:00\" }")).is_empty());
    assert_problem(&r("caller_prefix = \"abc\""), "route[0].caller_prefix", "'+' and digits");
    assert_problem(&r("time = { from = \"8:00\", to = \"18:00\" }"), "route[0].time.from", "HH:MM");
    assert_problem(&r("time = { from = \"08:00\", to = \"08:00\" }"), "route[0].time.to", "differ");
    assert_problem(
        &r("time = { days = [\"mo\"], from = \"08:00\", to = \"18:00\" }"),
        "route[0].time.days[0]",
        "mon..sun",
    );
    assert_problem(
        &r("time = { from = \"08:00\", to = \"18:00\", utc_offset_minutes = 900 }"),
        "route[0].time.utc_offset_minutes",
        "-840..=840",
    );
}

#[test]
fn trunk_failover_names_a_trunk_with_targets() {
    let f =
        |list: &str| MINIMAL.replace("acl = [\"127.0.0.0/8\"]", &format!("acl = [\"127.0.0.0/8\"]\nfailover = {list}"));
    assert!(problems_of(&f("[\"carrier\"]")).is_empty());
    assert_problem(&f("[\"nosuch\"]"), "trunk[0].failover[0]", "no trunk named");
    assert_problem(&f("[\"pbx\"]"), "trunk[0].failover[0]", "no targets");
    assert_problem(&f("[\"carrier\", \"carrier\"]"), "trunk[0].failover[1]", "listed twice");
}

#[test]
fn acl_aliases_are_named_and_overlap_like_acls() {
    let base = format!("[acl_aliases]\nplivo = [\"192.0.2.0/28\"]\nempty = []\n{MINIMAL}");
    let t = |extra: &str| format!("{base}\n[[trunk]]\nname = \"x\"\nrole = \"carrier\"\n{extra}");
    assert_problem(&t("acl_aliases = [\"plivo\"]"), "acl_aliases.empty", "at least one network");
    let ok = t("acl_aliases = [\"plivo\"]").replace("empty = []\n", "");
    assert!(problems_of(&ok).is_empty(), "{:?}", problems_of(&ok));
    assert_problem(&t("acl_aliases = [\"nope\"]"), "trunk[2].acl_aliases[0]", "no [acl_aliases] entry named \"nope\"");
    let twice = format!("{ok}\n[[trunk]]\nname = \"y\"\nrole = \"carrier\"\nacl = [\"192.0.2.8/29\"]");
    assert_problem(&twice, "trunk[3].acl[0]", "overlaps trunk[2].acl_aliases[0] (192.0.2.0/28");
    assert_problem(&t("acl = [\"10.9.0.0/16\"]\nverify_port = true"), "trunk[2].verify_port", "needs targets");
}

#[test]
fn mutual_tls_and_srtp_with_tls_keys_name_their_problems() {
    let tls = "[[sip.listen]]\ntransport = \"tls\"\naddr = \"127.0.0.1:5061\"\ntls = { cert = \"/c.pem\", key = \"/k.pem\" }\n";
    let mtls = "[[sip.listen]]\ntransport = \"tls\"\naddr = \"127.0.0.1:5061\"\n\
                tls = { cert = \"/c.pem\", key = \"/k.pem\", client_ca = \"/ca.pem\" }\n";
    let carrier = |t: &str| {
        format!("[[trunk]]\nname = \"tls-carrier\"\nrole = \"carrier\"\ntargets = [{{ addr = \"192.0.2.1:5061\", transport = \"tls\" }}]\n{t}\n")
    };
    let pbx = |t: &str| format!("[[trunk]]\nname = \"tls-pbx\"\nrole = \"customer\"\nacl = [\"192.0.2.64/26\"]\n{t}\n");
    // A client certificate needs its key, and the reverse.
    assert_problem(
        &default_with(&format!("{tls}{}", carrier("tls = { cert = \"/me.pem\" }"))),
        "trunk[2].tls.key",
        "needs tls.key",
    );
    assert_problem(
        &default_with(&format!("{tls}{}", carrier("tls = { key = \"/me.key\" }"))),
        "trunk[2].tls.cert",
        "needs tls.cert",
    );
    // peer_name needs a listener that asks for certificates.
    assert_problem(
        &default_with(&format!("{tls}{}", pbx("tls = { peer_name = \"pbx.example\" }"))),
        "trunk[2].tls.peer_name",
        "client_ca",
    );
    assert_problem(
        &default_with(&format!("{mtls}{}", pbx("tls = { peer_name = \"\" }"))),
        "trunk[2].tls.peer_name",
        "DNS name",
    );
    // srtp_with_tls needs suites and some TLS to apply to.
    assert_problem(&default_with(&pbx("srtp_with_tls = true")), "trunk[2].srtp_with_tls", "never applies");
    assert_problem(
        &default_with(&format!("{tls}{}", pbx("srtp_with_tls = true\nsrtp_suites = []"))),
        "trunk[2].srtp_suites",
        "srtp_with_tls",
    );
    // A sound mutual-TLS setup passes.
    let good = format!(
        "{mtls}{}{}",
        pbx("srtp_with_tls = true\ntls = { peer_name = \"pbx.example\" }"),
        carrier("tls = { ca = \"/ca.pem\", server_name = \"sip.example\", cert = \"/me.pem\", key = \"/me.key\" }")
    );
    let probs = problems_of(&default_with(&good));
    assert!(probs.is_empty(), "{probs:#?}");
}
