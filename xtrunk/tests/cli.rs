//! The operator's entry points: `check-config` and a role started on a bad file name the problem
//! and exit 1; a good file passes.

use std::process::Command;

fn xtrunk(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_xtrunk")).args(args).output().expect("run xtrunk");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

fn temp_file(name: &str, text: &str) -> std::path::PathBuf {
    let p = std::env::temp_dir().join(format!("xtrunk-cli-{}-{name}", std::process::id()));
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn check_config_accepts_the_shipped_files() {
    for f in ["xtrunk.toml", "carrier.example.toml"] {
        let path = format!("{}/../config/{f}", env!("CARGO_MANIFEST_DIR"));
        let (code, text) = xtrunk(&["check-config", &path]);
        assert_eq!(code, 0, "{f}: {text}");
        assert!(text.contains(": ok ("), "{text}");
    }
}

#[test]
fn check_config_lists_every_problem_with_its_key_and_exits_1() {
    let f = temp_file("bad.toml", "[datapath.ring]\ncommands = 1000\n[media]\nport_min = 20000\nport_max = 10000\n");
    let (code, text) = xtrunk(&["check-config", f.to_str().unwrap()]);
    std::fs::remove_file(&f).unwrap();
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("datapath.ring.commands: must be a power of two, got 1000"), "{text}");
    assert!(text.contains("media.port_max: range is inverted"), "{text}");
}

#[test]
fn unknown_key_and_missing_file_are_named() {
    let f = temp_file("typo.toml", "[media]\nport_mni = 10000\n");
    let (code, text) = xtrunk(&["check-config", f.to_str().unwrap()]);
    std::fs::remove_file(&f).unwrap();
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("port_mni"), "{text}");
    let (code, text) = xtrunk(&["check-config", "/nonexistent/xtrunk.toml"]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("/nonexistent/xtrunk.toml") && text.contains("cannot read"), "{text}");
}

#[test]
fn roles_refuse_a_bad_config_before_starting_anything() {
    let f = temp_file("role.toml", "[datapath.af_xdp]\nring_size = 1000\n");
    for role in ["run", "datapath", "signaling"] {
        let (code, text) = xtrunk(&[role, "--config", f.to_str().unwrap()]);
        assert_eq!(code, 1, "{role}: {text}");
        assert!(text.contains("datapath.af_xdp.ring_size: must be a power of two, got 1000"), "{role}: {text}");
    }
    std::fs::remove_file(&f).unwrap();
}

/// #12: `scripts/tune-nic` checks strict reverse-path filtering (a forged UDP source must not
/// pass a trunk's ACL from the wrong interface). Dry run on `lo`: nothing is changed.
#[test]
fn tune_nic_checks_reverse_path_filtering() {
    let script = format!("{}/../scripts/tune-nic", env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("bash").args([script.as_str(), "lo", "--queues", "1", "--cores", "0"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("net.ipv4.conf.all.rp_filter") && text.contains("net.ipv4.conf.lo.rp_filter"), "{text}");
    assert!(text.contains("dry run"), "{text}");
}

/// Cores are the host's, not the affinity mask's: a datapath configured for the host's last
/// core passes `check-config` even when run under `taskset -c 0` (#20).
#[test]
fn cores_are_checked_against_the_host_not_the_affinity_mask() {
    let cpus = std::fs::read_to_string("/sys/devices/system/cpu/online").unwrap_or_default();
    let last: usize = cpus.trim().rsplit(['-', ',']).next().and_then(|v| v.parse().ok()).unwrap_or(0);
    if last == 0 || Command::new("taskset").arg("-V").output().is_err() {
        eprintln!("one CPU or no taskset: nothing to check");
        return;
    }
    let text = xtrunk_config::DEFAULT_TOML
        .replace("max_sessions = 4000", &format!("max_sessions = 4000\nsocket_cores = [{last}]"));
    let f = temp_file("cores.toml", &text);
    let out = Command::new("taskset")
        .args(["-c", "0", env!("CARGO_BIN_EXE_xtrunk"), "check-config", f.to_str().unwrap()])
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{text}");
    let bad = xtrunk_config::DEFAULT_TOML
        .replace("max_sessions = 4000", &format!("max_sessions = 4000\nsocket_cores = [{}]", last + 1));
    let g = temp_file("cores-bad.toml", &bad);
    let (code, text) = xtrunk(&["check-config", g.to_str().unwrap()]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("datapath.socket_cores"), "{text}");
    let _ = std::fs::remove_file(f);
    let _ = std::fs::remove_file(g);
}
