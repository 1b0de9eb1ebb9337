//! Cost of the shared counter store (#19) per call, against a real `redis-server` started here:
//! one call = channels check-and-take (the ACQUIRE script) + CPS take + release, with
//! `--live N` other calls' leases in the same sorted sets (their size is what the scripts pay
//! for). Prints the edge's wall time per call and the server's CPU per call (from
//! /proc/<pid>/stat), the figures the sizing in ARCHITECTURE.md is made from.
//!
//!     cargo bench -p xtrunk-signaling --bench shared_store -- [--calls 20000] [--live 10000]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use xtrunk_config::{AccountId, Config, Host, TrunkId};
use xtrunk_signaling::policy::counters::{CounterStore, Dir, Rate, Scope, Want};
use xtrunk_signaling::policy::RedisStore;

fn arg(name: &str, default: usize) -> usize {
    let a: Vec<String> = std::env::args().collect();
    a.iter().position(|x| x == name).and_then(|i| a.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn cpu_ticks(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let f: Vec<&str> = s.rsplit_once(')').map_or("", |x| x.1).split_whitespace().collect();
    f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
}

fn main() {
    let (calls, live) = (arg("--calls", 20_000), arg("--live", 10_000));
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dir = std::env::temp_dir().join(format!("xtrunk-bench-redis-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut redis = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .args(["--dir", dir.to_str().unwrap()])
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server (scripts/setup installs it)");
    assert!(xtrunk_signaling::testing::wait_port_bound(port, Duration::from_secs(10)));
    let text = format!(
        "{}\n[shared]\nkind = \"redis\"\nurl = \"redis://127.0.0.1:{port}/0\"\nlease_ttl_secs = 600\n\
         [[account]]\nname = \"acme\"\ndids = [\"15550000000-15550009999\"]\n",
        xtrunk_config::DEFAULT_TOML
    );
    let snap = Config::parse(&text, "bench").unwrap().snapshot(Host { cores: 2, check_paths: false }).unwrap();
    let mut s = RedisStore::new(&snap, "bench");
    let want = |dir| Want { scope: Scope::Account(AccountId(0)), dir, total: Some(u32::MAX / 2), in_dir: None };
    let now = Instant::now();
    for _ in 0..live {
        s.try_acquire(&[want(Dir::Inbound), want(Dir::Outbound)], now).unwrap();
    }
    let rate = Rate { per_sec: 1e9, burst: 1000, max_wait: Duration::ZERO, max_queued: 0 };
    let (t0, c0) = (Instant::now(), cpu_ticks(redis.id()));
    for _ in 0..calls {
        let l = s.try_acquire(&[want(Dir::Inbound), want(Dir::Outbound)], Instant::now()).unwrap();
        s.take(Scope::Trunk(TrunkId(0)), rate, Instant::now());
        s.release(l);
    }
    let (wall, ticks) = (t0.elapsed(), cpu_ticks(redis.id()) - c0);
    let hz = 100.0; // USER_HZ
    let per_call_us = wall.as_secs_f64() * 1e6 / calls as f64;
    let server_us = ticks as f64 / hz * 1e6 / calls as f64;
    println!(
        "shared store: {calls} calls with {live} live leases (2 per call): {per_call_us:.1} µs wall per call at the edge, \
         {server_us:.1} µs redis-server CPU per call, {} round trips ({:.1} per call), failures {}",
        s.status.round_trips,
        s.status.round_trips as f64 / calls as f64,
        s.status.failures
    );
    let _ = redis.kill();
    let _ = redis.wait();
    let _ = std::fs::remove_dir_all(&dir);
    degraded(calls);
}

/// Setup latency with the store unreachable: a listener that accepts and never answers (the
/// worst case: each retry costs one `timeout_ms`) and a closed port (refused at once). Calls
/// are spread over ~4 s so that several retries (`retry_secs` = 1) fall inside.
fn degraded(calls: usize) {
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    for (what, addr) in [("silent", silent.local_addr().unwrap()), ("refusing", closed)] {
        let text = format!(
            "{}\n[shared]\nkind = \"redis\"\nurl = \"redis://{addr}/0\"\ntimeout_ms = 50\nretry_secs = 1\n\
             [[account]]\nname = \"acme\"\ndids = [\"15550000000-15550009999\"]\n",
            xtrunk_config::DEFAULT_TOML
        );
        let snap = Config::parse(&text, "bench").unwrap().snapshot(Host { cores: 2, check_paths: false }).unwrap();
        let mut s = RedisStore::new(&snap, "bench");
        let want =
            Want { scope: Scope::Account(AccountId(0)), dir: Dir::Inbound, total: Some(u32::MAX / 2), in_dir: None };
        let mut lat: Vec<Duration> = Vec::with_capacity(calls);
        let gap = Duration::from_secs(4) / calls.max(1) as u32;
        for _ in 0..calls {
            let t = Instant::now();
            let l = s.try_acquire(&[want], t).unwrap();
            lat.push(t.elapsed());
            s.release(l);
            std::thread::sleep(gap.saturating_sub(t.elapsed()));
        }
        lat.sort();
        let q = |f: f64| lat[((lat.len() as f64 * f) as usize).min(lat.len() - 1)];
        println!(
            "store {what}: {calls} admissions over ~4 s, latency p50 {:?} p99 {:?} p99.9 {:?} max {:?}; {} failures seen, {} admitted alone",
            q(0.5),
            q(0.99),
            q(0.999),
            lat[lat.len() - 1],
            s.status.failures,
            s.status.degraded_admits
        );
    }
}
