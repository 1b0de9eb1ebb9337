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

/// The running edge and what the steps need of it.
struct Edge {
    g: Guard,
    dir: PathBuf,
    cfg: PathBuf,
    api: SocketAddr,
    sip_port: u16,
    uac_port: u16,
    /// The port of `carrier2`, the trunk the test creates (a SIPp uas).
    uas2: u16,
}

impl Edge {
    /// `xtrunk run` with the admin API on and JSON logs (debug for the signaling crate).
    fn start() -> Self {
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
        append_config(
            &cfg,
            &format!("[control]\nlisten = \"{api}\"\nadmin_token_file = \"{}\"\n", token_file.display()),
        );
        let mut g = Guard::new(&dir.join("xtrunk.log"), &dir, &shm);
        g.start_logging(&cfg, "info,xtrunk_signaling=debug");
        assert!(
            g.wait_log("admin API on (/api/v1/)", 1, Duration::from_secs(20)),
            "no admin API; log:\n{}",
            g.log_tail()
        );
        Self { g, dir, cfg, api, sip_port, uac_port, uas2 }
    }

    fn req(&self, method: &str, path: &str, body: &str) -> (u16, String) {
        http(self.api, method, path, Some(TOKEN), body)
    }

    /// One call to `number` through the edge to carrier2, held `hold_ms` (SIPp, started only).
    fn call(&mut self, number: &str, hold_ms: u32) -> (u64, u64, u64) {
        let load = Load {
            dir: &self.dir,
            sip_port: self.sip_port,
            uas_port: self.uas2,
            uac_port: self.uac_port,
            calls: 1,
            rate: 1,
            hold_ms,
            number,
        };
        self.g.sipps.clear();
        load.start(&mut self.g);
        if hold_ms > 5_000 {
            return (0, 0, 0);
        }
        load.finish(&mut self.g)
    }
}

/// No token, a wrong token: 401; with it, the tables.
fn unauthorized_requests_get_401(e: &Edge) {
    assert_eq!(http(e.api, "GET", "/api/v1/trunks", None, "").0, 401);
    assert_eq!(http(e.api, "GET", "/api/v1/trunks", Some("wrong-token-0123456789abcdef"), "").0, 401);
    assert_eq!(http(e.api, "POST", "/api/v1/routes", None, r#"{"prefix":"9","trunk":"carrier"}"#).0, 401);
    let (st, trunks) = e.req("GET", "/api/v1/trunks", "");
    assert_eq!(st, 200);
    assert_eq!(json(&trunks).as_array().map(Vec::len), Some(2), "{trunks}");
}

/// A route to a trunk that does not exist, a trunk with a bad ACL entry: 422, nothing written.
fn invalid_changes_get_422_with_key_paths(e: &Edge) {
    let file_before = std::fs::read(&e.cfg).unwrap();
    let (st, body) = e.req("POST", "/api/v1/routes", r#"{"prefix":"777","from_trunk":"pbx","trunk":"nosuch"}"#);
    assert_eq!(st, 422, "{body}");
    let paths: Vec<String> =
        json(&body)["problems"].as_array().unwrap().iter().map(|p| p["path"].as_str().unwrap().to_string()).collect();
    assert!(paths.iter().any(|p| p == "route[1].trunk"), "key paths: {paths:?}");
    let (st, body) = e.req("POST", "/api/v1/trunks", r#"{"name":"x","role":"carrier","acl":["300.1.1.1/8"]}"#);
    assert_eq!(st, 422, "{body}");
    assert_eq!(std::fs::read(&e.cfg).unwrap(), file_before, "nothing written");
    assert_eq!(json(&e.req("GET", "/api/v1/routes", "").1).as_array().map(Vec::len), Some(1));
}

/// A second carrier and a route to it, applied live and written back.
fn create_trunk_and_route(e: &Edge) {
    let trunk = format!(
        r#"{{"name":"carrier2","role":"carrier","targets":[{{"addr":"127.0.0.1:{}","transport":"udp"}}],"codecs":["PCMA","PCMU","telephone-event"]}}"#,
        e.uas2
    );
    let (st, body) = e.req("POST", "/api/v1/trunks", &trunk);
    assert_eq!((st, json(&body)["applied"].as_bool()), (200, Some(true)), "{body}");
    let (st, body) = e.req("POST", "/api/v1/routes", r#"{"prefix":"777","from_trunk":"pbx","trunk":"carrier2"}"#);
    assert_eq!((st, json(&body)["applied"].as_bool()), (200, Some(true)), "{body}");
    let written = xtrunk_config::Config::load(&e.cfg).expect("the file written back is valid");
    assert!(written.trunks.iter().any(|t| t.name == "carrier2") && written.routes.len() == 2);
}

/// Digest secrets never leave over the API: `GET` shows `<redacted>`, and a `PUT` of what `GET`
/// showed keeps the stored secrets (the file still holds the password).
fn secrets_are_redacted(e: &Edge) {
    let user = r#"{"name":"digest-pbx","role":"customer","auth":"digest","users":[{"username":"bob","password":"hunter2-long"}]}"#;
    let (st, body) = e.req("POST", "/api/v1/trunks", user);
    assert_eq!(st, 200, "{body}");
    let (st, listed) = e.req("GET", "/api/v1/trunks", "");
    assert_eq!(st, 200);
    assert!(!listed.contains("hunter2-long"), "a password in GET: {listed}");
    assert!(listed.contains("<redacted>"), "{listed}");
    let (st, body) = e.req("PUT", "/api/v1/trunks", &listed);
    assert_eq!(st, 200, "PUT of what GET showed: {body}");
    let written = xtrunk_config::Config::load(&e.cfg).expect("valid");
    let bob = written.trunks.iter().flat_map(|t| &t.users).find(|u| u.username == "bob").expect("bob kept");
    assert_eq!(bob.password.as_deref(), Some("hunter2-long"), "the stored password survived the PUT");
    let bad = listed.replace("\"bob\"", "\"carol\"");
    let (st, body) = e.req("PUT", "/api/v1/trunks", &bad);
    assert_eq!(st, 422, "<redacted> for a user with nothing stored: {body}");
    assert!(body.contains(".users[0].password"), "{body}");
}

/// The JSON log line of the call's answer carries its span.
fn check_call_span(e: &Edge) {
    let answered =
        e.g.log()
            .lines()
            .filter(|l| l.contains("answered (call-id"))
            .map(|l| {
                serde_json::from_str::<serde_json::Value>(l)
                    .unwrap_or_else(|err| panic!("not a JSON log line ({err}): {l}"))
            })
            .find(|v| v["span"]["trunk_out"] == "carrier2")
            .unwrap_or_else(|| panic!("no JSON log line of the call with its span; log:\n{}", e.g.log_tail()));
    assert_eq!(answered["span"]["name"], "call");
    assert_eq!(answered["span"]["trunk_in"], "pbx");
    assert!(answered["span"]["call_id"].as_str().is_some_and(|c| !c.is_empty()), "{answered}");
    assert!(answered["span"]["b_call_id"].as_str().is_some_and(|c| !c.is_empty()), "{answered}");
}

/// A call in progress is listed and `DELETE /api/v1/calls/{id}` ends it (CDR `admin`).
fn list_and_end_a_call(e: &mut Edge) {
    e.call("777124", 30_000);
    let t = Instant::now() + Duration::from_secs(10);
    let call_id = loop {
        let calls = json(&e.req("GET", "/api/v1/calls", "").1);
        let answered = calls
            .as_array()
            .and_then(|a| a.iter().find(|c| c["to"] == "777124" && c["answer_ms"].as_u64() > Some(0)).cloned());
        if let Some(c) = answered {
            break c["call_id"].as_str().unwrap().to_string();
        }
        assert!(Instant::now() < t, "no call listed: {calls}");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(e.req("DELETE", &format!("/api/v1/calls/{call_id}"), "").0, 202);
    assert_eq!(e.req("DELETE", "/api/v1/calls/no-such-call", "").0, 404);
    let t = Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(e.dir.join("cdr.jsonl")).unwrap_or_default().contains(r#""end_reason":"admin""#) {
        assert!(Instant::now() < t, "no CDR with end_reason admin; log:\n{}", e.g.log_tail());
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `xtrunk ctl` is the same API from the shell.
fn ctl_drives_the_api(e: &Edge) {
    let ctl = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_xtrunk"))
            .arg("ctl")
            .arg("-c")
            .arg(&e.cfg)
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
    assert_eq!(xtrunk_config::Config::load(&e.cfg).unwrap().routes.len(), 1);
}

#[test]
fn trunk_and_route_created_over_http_carry_a_call_without_restart() {
    if !sipp_available() {
        eprintln!("sipp not installed; skipping");
        return;
    }
    let mut e = Edge::start();
    let pids = e.g.child_pids();
    unauthorized_requests_get_401(&e);
    invalid_changes_get_422_with_key_paths(&e);
    create_trunk_and_route(&e);
    // A call to 777… reaches carrier2 (a SIPp uas on its port); nothing restarted.
    let (ok, failed, uas_ok) = e.call("777123", 300);
    assert_eq!((ok, failed, uas_ok), (1, 0, 1), "the call took the new route; log:\n{}", e.g.log_tail());
    assert_eq!(e.g.child_pids(), pids, "no process was restarted");
    assert!(!e.g.log().contains("sidecar restarted"));
    check_call_span(&e);
    list_and_end_a_call(&mut e);
    ctl_drives_the_api(&e);
    secrets_are_redacted(&e);
    eprintln!("admin API: 401, 422 with key paths, trunk+route applied live, call listed and ended, ctl");
}
