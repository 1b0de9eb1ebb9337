//! #19 two edges (two sidecars, in this process) share one account's channel limit through a
//! real `redis-server`: SIPp holds the account's 3 channels up through edge A, so edge B refuses
//! the account's next calls, and takes them once A's calls have ended.

#[macro_use]
mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use xtrunk_config::{Account, SharedKind};

fn shared_edge(name: &str, carrier: u16, redis_port: u16) -> Sidecar {
    Sidecar::start(name, &[carrier], |c| {
        c.shared.kind = SharedKind::Redis;
        c.shared.url = format!("redis://127.0.0.1:{redis_port}/0");
        c.shared.prefix = format!("shared-sipp-{}:", std::process::id());
        let mut acme: Account =
            serde_json::from_value(serde_json::json!({"name": "acme", "dids": ["15550000000-15550009999"]})).unwrap();
        acme.limits.channels = Some(3);
        acme.destinations.require_owned_caller_id = Some(false);
        c.accounts = vec![acme];
        c.trunks[0].account = Some("acme".into());
    })
}

#[test]
fn an_accounts_channels_hold_across_two_edges() {
    need_sipp!();
    if Command::new("redis-server").arg("--version").stdout(Stdio::null()).status().is_err() {
        eprintln!("redis-server not installed (scripts/setup installs it); skipping");
        return;
    }
    let redis_port = free_port();
    let dir = tmpdir("shared-sipp-redis");
    let mut redis = Command::new("redis-server")
        .args(["--port", &redis_port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .args(["--dir", dir.to_str().unwrap()])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    assert!(xtrunk_signaling::testing::wait_port_bound(redis_port, Duration::from_secs(10)));
    let uas_port = free_port();
    let (a, b) = (shared_edge("shared-a", uas_port, redis_port), shared_edge("shared-b", uas_port, redis_port));
    let carrier = sipp(&a.dir, "uas", "uas_basic", uas_port, None, 5, &[]);
    // Three calls held 4 s through edge A fill the account.
    let held = sipp(
        &a.dir,
        "uac-a",
        "uac_basic",
        free_port(),
        Some(a.port),
        3,
        &["-r", "10", "-d", "4000", "-s", "+15551234567"],
    );
    std::thread::sleep(Duration::from_millis(1500));
    let refused =
        sipp(&b.dir, "uac-b", "uac_basic", free_port(), Some(b.port), 2, &["-r", "10", "-s", "+15551234567"]).wait();
    let held = held.wait();
    let later =
        sipp(&b.dir, "uac-b2", "uac_basic", free_port(), Some(b.port), 2, &["-r", "10", "-s", "+15551234567"]).wait();
    let got = carrier.wait();
    let (sa, sb) = (a.stop(), b.stop());
    let _ = redis.kill();
    let _ = redis.wait();
    assert_eq!(
        (held.successful, held.failed),
        (3, 0),
        "edge A: {held:?} {:?} {:?}",
        sa.metrics.finals_to_caller,
        sa.metrics.admission_rejects
    );
    assert_eq!((refused.successful, refused.failed), (0, 2), "edge B while A holds the 3 channels: {refused:?}");
    assert_eq!((later.successful, later.failed), (2, 0), "edge B once they ended: {later:?}");
    assert_eq!(got.successful, 5, "{got:?}");
    assert_eq!(
        sb.metrics.admission_rejects.get("channels_full_account").map(|m| m.values().sum::<u64>()),
        Some(2),
        "{:?}",
        sb.metrics.admission_rejects
    );
    assert_clean(&sa);
    assert_clean(&sb);
}
