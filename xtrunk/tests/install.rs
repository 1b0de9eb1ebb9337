//! `scripts/install` staged into a temporary DESTDIR: the binary, the systemd unit (with the
//! AF_XDP capabilities, an unprivileged user, SIGHUP reload), the logrotate rule (SIGUSR2 to
//! the main process only), and a configuration that validates with the SQLite CDR store on.

use std::path::Path;
use std::process::Command;

#[test]
fn install_stages_unit_logrotate_and_a_valid_config() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let dest = std::env::temp_dir().join(format!("xtrunk-install-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dest);
    let out = Command::new("bash")
        .arg(root.join("scripts/install"))
        .args(["--bin", env!("CARGO_BIN_EXE_xtrunk")])
        .env("DESTDIR", &dest)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    for f in ["usr/local/bin/xtrunk", "etc/systemd/system/xtrunk.service", "etc/logrotate.d/xtrunk"] {
        assert!(dest.join(f).exists(), "{f} staged");
    }
    let unit = std::fs::read_to_string(dest.join("etc/systemd/system/xtrunk.service")).unwrap();
    assert!(unit.contains("User=xtrunk") && unit.contains("AmbientCapabilities=CAP_NET_ADMIN CAP_NET_RAW CAP_BPF"));
    assert!(unit.contains("ExecReload=/bin/kill -HUP $MAINPID") && unit.contains("NoNewPrivileges=yes"));
    let rot = std::fs::read_to_string(dest.join("etc/logrotate.d/xtrunk")).unwrap();
    assert!(rot.contains("kill -USR2 \"$pid\"") && rot.contains("MainPID"));
    let text = std::fs::read_to_string(dest.join("etc/xtrunk/xtrunk.toml")).unwrap();
    let cfg = xtrunk_config::Config::parse(&text, "staged").unwrap();
    let problems = cfg.validate(xtrunk_config::Host { cores: 2, check_paths: false });
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(cfg.cdr.store, xtrunk_config::StoreKind::Sqlite);
    assert_eq!(cfg.node.cdr_path.as_deref(), Some(Path::new("/var/log/xtrunk/cdr.jsonl")));
    let _ = std::fs::remove_dir_all(&dest);
}
