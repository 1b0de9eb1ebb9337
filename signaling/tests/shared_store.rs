//! #19 the shared counter store against a real `redis-server` (Debian's 7.0, started here on a
//! private port and directory): two edges' stores share an account's channels and a trunk's
//! CPS, a dead edge's leases expire within the TTL, a store restart leaves no negative or stuck
//! count, and an unreachable or silent store costs at most one timeout before the edge decides
//! alone on its share.

use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

use xtrunk_config::{AccountId, Config, Host, SharedKind, Snapshot, TrunkId};
use xtrunk_signaling::policy::counters::{CounterStore, Dir, Rate, Scope, Take, Want};
use xtrunk_signaling::policy::RedisStore;

mod common;
use common::servers::{available, Redis};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn snapshot(url: &str, ttl: u32) -> Snapshot {
    let text = format!(
        "{}\n[shared]\nkind = \"redis\"\nurl = \"{url}\"\ntimeout_ms = 100\nlease_ttl_secs = {ttl}\nshare_pct = 50\nretry_secs = 1\n\
         prefix = \"t{}:\"\n[[account]]\nname = \"acme\"\ndids = [\"15550000000-15550009999\"]\n",
        xtrunk_config::DEFAULT_TOML,
        std::process::id()
    );
    let cfg = Config::parse(&text, "test").unwrap();
    assert_eq!(cfg.shared.kind, SharedKind::Redis);
    cfg.snapshot(Host { cores: 2, check_paths: false }).unwrap()
}

const ACCOUNT: Scope = Scope::Account(AccountId(0));

fn ten(dir: Dir) -> Want {
    Want { scope: ACCOUNT, dir, total: Some(10), in_dir: None }
}

fn need_redis() -> bool {
    if !available("redis-server") {
        eprintln!("redis-server not installed (scripts/setup installs it); skipping");
        return false;
    }
    true
}

#[test]
fn two_edges_share_channels_and_cps_and_a_dead_edges_leases_expire() {
    if !need_redis() {
        return;
    }
    let tmp = std::env::temp_dir().join(format!("xtrunk-redis-{}", std::process::id()));
    let r = Redis::start(free_port(), &tmp.join("a"));
    let s = snapshot(&format!("redis://127.0.0.1:{}/0", r.port), 3);
    let (mut a, mut b) = (RedisStore::new(&s, "edge-a"), RedisStore::new(&s, "edge-b"));
    let now = Instant::now();
    // 10 channels for the account across both edges, whichever edge the calls arrive at.
    let held_a: Vec<_> = (0..6).map(|_| a.try_acquire(&[ten(Dir::Inbound)], now).unwrap()).collect();
    let held_b: Vec<_> = (0..4).map(|_| b.try_acquire(&[ten(Dir::Outbound)], now).unwrap()).collect();
    assert_eq!(a.try_acquire(&[ten(Dir::Inbound)], now), Err(0), "the 11th call, at edge a");
    assert_eq!(b.try_acquire(&[ten(Dir::Inbound)], now), Err(0), "the 11th call, at edge b");
    assert!(a.release(held_a[0]));
    assert!(!a.release(held_a[0]), "released once");
    let again = b.try_acquire(&[ten(Dir::Inbound)], now).expect("a released channel is free for every edge");
    assert_eq!(b.channels(ACCOUNT), (1, 4), "edge b's own calls");
    assert!(a.status.up && b.status.up && a.status.failures == 0, "{:?} {:?}", a.status, b.status);

    // Edge a dies with 5 calls up (no release, no refresh): they stop counting within the TTL.
    drop(a);
    let t0 = Instant::now();
    let mut freed = None;
    while t0.elapsed() < Duration::from_secs(6) {
        // Edge b keeps its own leases alive meanwhile.
        b.tick(Instant::now() + Duration::from_secs(3600));
        if let Ok(l) = b.try_acquire(&[ten(Dir::Inbound)], Instant::now()) {
            freed = Some((t0.elapsed(), l));
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let (after, _) = freed.expect("the dead edge's channels come back");
    assert!(after <= Duration::from_millis(3500), "within the 3 s TTL: {after:?}");
    assert_eq!(b.channels(ACCOUNT).1, 4, "edge b's calls outlived the TTL (refreshed): {:?}", b.channels(ACCOUNT));
    for l in held_b.into_iter().chain([again]) {
        assert!(b.release(l));
    }

    // A 5-CPS trunk over two edges: 5 admitted in total in the first second, not 10.
    let rate = Rate { per_sec: 5.0, burst: 1, max_wait: Duration::ZERO, max_queued: 0 };
    let trunk = Scope::Trunk(TrunkId(1));
    let mut c = RedisStore::new(&s, "edge-c");
    let t0 = Instant::now();
    let mut admitted = 0;
    while t0.elapsed() < Duration::from_millis(990) {
        for st in [&mut b, &mut c] {
            if st.take(trunk, rate, Instant::now()) == Take::Now {
                admitted += 1;
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!((5..=6).contains(&admitted), "5 per second across the edges, got {admitted}");

    // Rolling caps are shared too.
    b.record(ACCOUNT, now);
    c.record(ACCOUNT, now);
    assert_eq!(b.count(ACCOUNT, xtrunk_signaling::policy::Period::Hour, now), 2);
    drop(r);
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn a_store_restart_leaves_no_stuck_count_and_a_silent_store_costs_one_timeout() {
    if !need_redis() {
        return;
    }
    let tmp = std::env::temp_dir().join(format!("xtrunk-redis2-{}", std::process::id()));
    let r = Redis::start(free_port(), &tmp.join("b"));
    let s = snapshot(&format!("redis://127.0.0.1:{}/0", r.port), 30);
    let mut a = RedisStore::new(&s, "edge-a");
    let now = Instant::now();
    let up: Vec<_> = (0..3).map(|_| a.try_acquire(&[ten(Dir::Inbound)], now).unwrap()).collect();

    // The store dies: the next setup finds out (refused at once), then decides alone on 50 %.
    let (port, dir) = r.stop();
    let t0 = Instant::now();
    let alone: Vec<_> = (0..5).filter_map(|_| a.try_acquire(&[ten(Dir::Inbound)], Instant::now()).ok()).collect();
    assert!(t0.elapsed() < Duration::from_millis(500), "no setup waits on a dead store: {:?}", t0.elapsed());
    assert_eq!(alone.len(), 5, "50 % of 10 admitted alone");
    assert!(a.try_acquire(&[ten(Dir::Inbound)], Instant::now()).is_err(), "the share is a limit too");
    assert!(!a.status.up && a.status.failures >= 1 && a.status.degraded_admits == 5, "{:?}", a.status);
    for l in &up {
        assert!(a.release(*l), "releases while down are kept to the lease TTL");
    }

    // It comes back empty (no persistence): the calls admitted alone are written into it.
    let r = Redis::start(port, &dir);
    std::thread::sleep(Duration::from_millis(1100));
    let mut b = RedisStore::new(&s, "edge-b");
    let l = a.try_acquire(&[ten(Dir::Inbound)], Instant::now()).expect("admitted through the store again");
    assert!(a.status.up, "{:?}", a.status);
    let taken: Vec<_> = (0..10).filter_map(|_| b.try_acquire(&[ten(Dir::Inbound)], Instant::now()).ok()).collect();
    assert_eq!(taken.len(), 4, "10 - (5 admitted alone + 1): the store counts every live call, none negative");
    for l in alone.into_iter().chain([l]) {
        assert!(a.release(l));
    }
    let more: Vec<_> = (0..10).filter_map(|_| b.try_acquire(&[ten(Dir::Inbound)], Instant::now()).ok()).collect();
    assert_eq!(more.len(), 6, "released calls free their channels everywhere");
    drop(r);

    // A store that accepts and never answers: one timeout (100 ms), then alone at once.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr: SocketAddr = silent.local_addr().unwrap();
    let s = snapshot(&format!("redis://{addr}/0"), 30);
    let mut c = RedisStore::new(&s, "edge-c");
    let t0 = Instant::now();
    let first = c.try_acquire(&[ten(Dir::Inbound)], Instant::now());
    let spent = t0.elapsed();
    assert!(first.is_ok(), "admitted alone");
    assert!(spent >= Duration::from_millis(90) && spent < Duration::from_millis(600), "one timeout: {spent:?}");
    let t1 = Instant::now();
    let _ = c.try_acquire(&[ten(Dir::Inbound)], Instant::now());
    assert!(t1.elapsed() < Duration::from_millis(20), "degraded: no wait at all: {:?}", t1.elapsed());
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn a_whole_admission_is_one_round_trip_and_all_or_nothing() {
    use xtrunk_signaling::policy::limits::{AdmitOutcome, AdmitRequest};
    use xtrunk_signaling::policy::Period;
    if !need_redis() {
        return;
    }
    let tmp = std::env::temp_dir().join(format!("xtrunk-redis3-{}", std::process::id()));
    let r = Redis::start(free_port(), &tmp.join("c"));
    let s = snapshot(&format!("redis://127.0.0.1:{}/0", r.port), 30);
    let (mut a, mut b) = (RedisStore::new(&s, "edge-a"), RedisStore::new(&s, "edge-b"));
    let trunk = Scope::Trunk(TrunkId(0));
    let fast = Rate { per_sec: 1000.0, burst: 100, max_wait: Duration::ZERO, max_queued: 0 };
    let req = AdmitRequest {
        caps: vec![(ACCOUNT, Period::Hour, 4)],
        wants: vec![Want { scope: ACCOUNT, dir: Dir::Inbound, total: Some(3), in_dir: None }],
        rates: vec![(trunk, fast)],
        record: vec![ACCOUNT],
    };
    let now = Instant::now();
    let rt = a.status.round_trips;
    let AdmitOutcome::Passed(p1) = a.admit(&req, now).unwrap() else { panic!("first") };
    assert_eq!(a.status.round_trips - rt, 1, "one round trip per call setup");
    let AdmitOutcome::Passed(_) = b.admit(&req, now).unwrap() else { panic!("second") };
    let AdmitOutcome::Passed(_) = a.admit(&req, now).unwrap() else { panic!("third") };
    assert_eq!(b.admit(&req, now), Some(AdmitOutcome::ChannelsFull(0)), "3 channels across both edges");
    assert!(a.release(p1.lease.unwrap()));
    let AdmitOutcome::Passed(_) = b.admit(&req, now).unwrap() else { panic!("fourth, after a release") };
    assert_eq!(a.admit(&req, now), Some(AdmitOutcome::Capped(0)), "4 calls an hour, counted once each");
    // A refused bucket takes nothing: the channel it would have held is free.
    let none = Rate { per_sec: 0.001, burst: 1, max_wait: Duration::ZERO, max_queued: 0 };
    let req2 = AdmitRequest { caps: vec![], rates: vec![(Scope::Trunk(TrunkId(1)), none)], ..req.clone() };
    let mut c = RedisStore::new(&s, "edge-c");
    let _ = c.admit(&AdmitRequest { wants: vec![], ..req2.clone() }, now); // takes the only slot
    assert!(matches!(c.admit(&AdmitRequest { wants: vec![], ..req2.clone() }, now), Some(AdmitOutcome::Cps(0, _))));
    drop(r);
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn fraud_measures_count_every_edges_calls() {
    use xtrunk_config::{Fraud, Threshold};
    use xtrunk_signaling::policy::fraud::Measure;
    if !need_redis() {
        return;
    }
    let tmp = std::env::temp_dir().join(format!("xtrunk-redis4-{}", std::process::id()));
    let r = Redis::start(free_port(), &tmp.join("d"));
    let s = snapshot(&format!("redis://127.0.0.1:{}/0", r.port), 30);
    let (mut a, mut b) = (RedisStore::new(&s, "edge-a"), RedisStore::new(&s, "edge-b"));
    let mut f: Fraud = toml_default_fraud();
    f.prefix_digits = 4;
    f.cooldown_secs = 60;
    f.concurrent = Threshold { warning: Some(2), critical: Some(3) };
    let now = Instant::now();
    let acct = AccountId(0);
    let (v1, k1) = a.fraud_call(acct, &f, "4930123", now).unwrap();
    assert_eq!((v1.blocked, v1.warnings.len()), (None, 0));
    let (v2, _k2) = b.fraud_call(acct, &f, "4930124", now).unwrap();
    assert_eq!(
        (v2.blocked, v2.warnings.as_slice()),
        (None, [Measure::Concurrent].as_slice()),
        "2nd concurrent call, other edge: warned"
    );
    let (v3, _) = a.fraud_call(acct, &f, "4930125", now).unwrap();
    assert_eq!(v3.blocked, Some(Measure::Concurrent), "3rd concurrent call across the edges: blocked");
    let (v4, _) = b.fraud_call(acct, &f, "4930126", now).unwrap();
    assert_eq!(v4.blocked, Some(Measure::Concurrent), "the prefix stays blocked for the cool-down, on every edge");
    assert!(a.fraud_ended(k1, Some(30)));
    // Another prefix is not blocked.
    let (v5, _) = b.fraud_call(acct, &f, "4420712", now).unwrap();
    assert_eq!(v5.blocked, None);
    drop(r);
    let _ = std::fs::remove_dir_all(&tmp);
}

fn toml_default_fraud() -> xtrunk_config::Fraud {
    let c =
        Config::parse(&format!("{}\n[[account]]\nname = \"x\"\ndids = [\"1\"]\n", xtrunk_config::DEFAULT_TOML), "t")
            .unwrap();
    c.accounts[0].fraud.clone()
}
