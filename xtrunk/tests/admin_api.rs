//! Issue 17 acceptance, the admin API: without the bearer token → 401; an invalid change →
//! 422 with key paths and nothing changes (file and tables as before); a trunk and a route
//! created over HTTP carry a SIPp call at once, without a restart; the call list shows a call
//! in progress and `DELETE /api/v1/calls/{call-id}` ends it (CDR `admin`).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

mod common;
use common::ops::{append_config, sipp_available, Load};
use common::{free_port, free_range, write_config, Guard, TestConfig};

const TOKEN: &str = "test-token-0123456789abcdef";

/// One request: (status, body).
fn http(addr: SocketAddr, method: &str, path: &str, token: Option<&str>, body: &str) -> (u16, String) {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let auth = token.map(|t| format!("Authorization: Bearer {t}\r\n")).unwrap_or_default();
    let req = format!("{method} {path} HTTP/1.1\r\nHost: t\r\n{auth}Content-Length: {}\r\n\r\n{body}", body.len());
    s.write_all(req.as_bytes()).unwrap();
    let mut r = String::new();
    s.read_to_string(&mut r).unwrap();
    let status = r.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    (status, r.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default())
}

fn json(s: &str) -> serde_json::Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

#[test]
fn trunk_and_route_created_over_http_carry_a_call_without_restart() {
    if !sipp_available() {
        eprintln!("sipp not installed; skipping");
        return;
    }
    let tag = format!("{}", std::process::id());
    let dir = std::env::temp_dir().join(format!("xtrunk-admin-{tag}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let shm = PathBuf::from(format!("/dev/shm/xtrunk-test-admin-{tag}"));
    let media = free_range(200, &[]);
    let avoid = [(media, 200)];
    let (sip_port, uas_port, uac_port, uas2) =
        (free_port(&avoid), free_port(&avoid), free_port(&avoid), free_port(&avoid));
    let tc = TestConfig {
        name: "xtrunk-admin",
        sip: sip_port,
        carrier: uas_port,
        media,
        media_ports: 200,
        max_sessions: 50,
        t1_ms: 500,
    };
    let cfg = write_config(&dir, &shm, &tc);
    // JSON logs, with the call's span on every line about it.
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("log_level = \"info\"", "log_level = \"info\"\nlog_format = \"json\"");
    std::fs::write(&cfg, text).unwrap();
    let api = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let token_file = dir.join("admin.token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    append_config(&cfg, &format!("[control]\nlisten = \"{api}\"\nadmin_token_file = \"{}\"\n", token_file.display()));
    let mut g = Guard::new(&dir.join("xtrunk.log"), &dir, &shm);
    g.start_logging(&cfg, "info,xtrunk_signaling=debug");
    assert!(g.wait_log("admin API on (/api/v1/)", 1, Duration::from_secs(20)), "no admin API; log:\n{}", g.log_tail());
    let pid = g.child_pids();

    // No token, a wrong token: 401.
    assert_eq!(http(api, "GET", "/api/v1/trunks", None, "").0, 401);
    assert_eq!(http(api, "GET", "/api/v1/trunks", Some("wrong-token-0123456789abcdef"), "").0, 401);
    assert_eq!(http(api, "POST", "/api/v1/routes", None, r#"{"prefix":"9","trunk":"carrier"}"#).0, 401);
    let (st, trunks) = http(api, "GET", "/api/v1/trunks", Some(TOKEN), "");
    assert_eq!(st, 200);
    assert_eq!(json(&trunks).as_array().map(Vec::len), Some(2), "{trunks}");

    // Invalid: a route to a trunk that does not exist, a trunk with a bad ACL entry.
    let file_before = std::fs::read(&cfg).unwrap();
    let (st, body) =
        http(api, "POST", "/api/v1/routes", Some(TOKEN), r#"{"prefix":"777","from_trunk":"pbx","trunk":"nosuch"}"#);
    assert_eq!(st, 422, "{body}");
    let paths: Vec<String> =
        json(&body)["problems"].as_array().unwrap().iter().map(|p| p["path"].as_str().unwrap().to_string()).collect();
    assert!(paths.iter().any(|p| p == "route[1].trunk"), "key paths: {paths:?}");
    let (st, body) =
        http(api, "POST", "/api/v1/trunks", Some(TOKEN), r#"{"name":"x","role":"carrier","acl":["300.1.1.1/8"]}"#);
    assert_eq!(st, 422, "{body}");
    assert_eq!(std::fs::read(&cfg).unwrap(), file_before, "nothing written");
    assert_eq!(json(&http(api, "GET", "/api/v1/routes", Some(TOKEN), "").1).as_array().map(Vec::len), Some(1));

    // Valid: a second carrier and a route to it.
    let trunk = format!(
        r#"{{"name":"carrier2","role":"carrier","targets":[{{"addr":"127.0.0.1:{uas2}","transport":"udp"}}],"codecs":["PCMA","PCMU","telephone-event"]}}"#
    );
    let (st, body) = http(api, "POST", "/api/v1/trunks", Some(TOKEN), &trunk);
    assert_eq!((st, json(&body)["applied"].as_bool()), (200, Some(true)), "{body}");
    let (st, body) =
        http(api, "POST", "/api/v1/routes", Some(TOKEN), r#"{"prefix":"777","from_trunk":"pbx","trunk":"carrier2"}"#);
    assert_eq!((st, json(&body)["applied"].as_bool()), (200, Some(true)), "{body}");
    let written = xtrunk_config::Config::load(&cfg).expect("the file written back is valid");
    assert!(written.trunks.iter().any(|t| t.name == "carrier2") && written.routes.len() == 2);

    // A call to 777… reaches carrier2 (a SIPp uas on its port); nothing restarted.
    let load =
        Load { dir: &dir, sip_port, uas_port: uas2, uac_port, calls: 1, rate: 1, hold_ms: 300, number: "777123" };
    load.start(&mut g);
    let (ok, failed, uas_ok) = load.finish(&mut g);
    assert_eq!((ok, failed, uas_ok), (1, 0, 1), "the call took the new route; log:\n{}", g.log_tail());
    assert_eq!(g.child_pids(), pid, "no process was restarted");
    assert!(!g.log().contains("sidecar restarted"));
    let answered = g
        .log()
        .lines()
        .filter(|l| l.contains("answered (call-id"))
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap_or_else(|e| panic!("not a JSON log line ({e}): {l}"))
        })
        .find(|v| v["span"]["trunk_out"] == "carrier2")
        .unwrap_or_else(|| panic!("no JSON log line of the call with its span; log:\n{}", g.log_tail()));
    assert_eq!(answered["span"]["name"], "call");
    assert_eq!(answered["span"]["trunk_in"], "pbx");
    assert!(answered["span"]["call_id"].as_str().is_some_and(|c| !c.is_empty()), "{answered}");
    assert!(answered["span"]["b_call_id"].as_str().is_some_and(|c| !c.is_empty()), "{answered}");

    // A call in progress is listed and can be ended.
    g.sipps.clear();
    let long =
        Load { dir: &dir, sip_port, uas_port: uas2, uac_port, calls: 1, rate: 1, hold_ms: 30_000, number: "777124" };
    long.start(&mut g);
    let t = Instant::now() + Duration::from_secs(10);
    let call_id = loop {
        let calls = json(&http(api, "GET", "/api/v1/calls", Some(TOKEN), "").1);
        let answered = calls
            .as_array()
            .and_then(|a| a.iter().find(|c| c["to"] == "777124" && c["answer_ms"].as_u64() > Some(0)).cloned());
        if let Some(c) = answered {
            break c["call_id"].as_str().unwrap().to_string();
        }
        assert!(Instant::now() < t, "no call listed: {calls}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(http(api, "DELETE", &format!("/api/v1/calls/{call_id}"), Some(TOKEN), "").0, 202);
    assert_eq!(http(api, "DELETE", "/api/v1/calls/no-such-call", Some(TOKEN), "").0, 404);
    let t = Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(dir.join("cdr.jsonl")).unwrap_or_default().contains(r#""end_reason":"admin""#) {
        assert!(Instant::now() < t, "no CDR with end_reason admin; log:\n{}", g.log_tail());
        std::thread::sleep(Duration::from_millis(100));
    }
    // `xtrunk ctl` is the same API from the shell.
    let ctl = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_xtrunk"))
            .arg("ctl")
            .arg("-c")
            .arg(&cfg)
            .args(args)
            .output()
            .unwrap()
    };
    let out = ctl(&["get", "trunks"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(json(&String::from_utf8_lossy(&out.stdout)).as_array().map(Vec::len), Some(3));
    let out = ctl(&["add", "routes", r#"{"trunk":"nosuch"}"#]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stdout).contains("route[2].trunk"));
    let out = ctl(&["remove", "routes", "1"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(xtrunk_config::Config::load(&cfg).unwrap().routes.len(), 1);
    eprintln!("admin API: 401, 422 with key paths, trunk+route applied live, call listed and ended");
}
