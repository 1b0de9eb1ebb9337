//! Memory of the admission tables when 1,000,000 distinct numbers are dialled (#15): flat, since
//! every table is bounded (a measurement; prints figures).
//!
//!     cargo bench -p xtrunk-signaling --bench admission_mem      (XT_CALLS=N sets the count)
//!
//! Every policy is on (limits, destinations, caller ID, fraud with `prefix_digits = 15`, so
//! each distinct number is its own fraud entry: the worst case). Each call is admitted by
//! `policy::admit`, then released as ended (so channels stay low); one simulated second passes
//! per 1 000 calls. Prints VmRSS and the table sizes every 10 % of the run.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use xtrunk_config::{Config, Host};
use xtrunk_signaling::policy::{self, Admission, Decision, IncomingCall};
use xtrunk_signaling::transport::Transport;

const CFG: &str = r#"
[[account]]
name = "acme"
dids = ["442071234500-442071234599"]
[account.limits]
channels = 1000
cps = 100000
cps_burst = 1000
calls_per_hour = 100000000
[account.destinations]
deny_countries = ["FR"]
deny_prefixes = ["88213"]
[account.fraud]
prefix_digits = 15
max_entries = 65536
calls_per_minute = { warning = 1000000, critical = 2000000 }
concurrent = { warning = 1000000, critical = 2000000 }
calls_per_day = { warning = 1000000, critical = 2000000 }

[[trunk]]
name = "pbx"
role = "customer"
acl = ["10.0.0.0/8"]
account = "acme"
[trunk.limits]
channels = 1000
cps = 100000
cps_burst = 1000

[[trunk]]
name = "carrier"
role = "carrier"
targets = [{ addr = "192.0.2.1:5060" }]
[trunk.numbers]
trusted = true
format = "plus-e164"

[[route]]
prefix = ""
trunk = "carrier"
"#;

fn rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn main() {
    let n: u64 = std::env::var("XT_CALLS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let cfg = Config::parse(CFG, "bench").unwrap().snapshot(Host { cores: 2, check_paths: false }).unwrap();
    let mut adm = Admission::default();
    let t0 = Instant::now();
    let wall = Instant::now();
    let source: SocketAddr = "10.1.2.3:5060".parse().unwrap();
    let local: SocketAddr = "127.0.0.1:5060".parse().unwrap();
    let (mut routed, mut refused) = (0u64, 0u64);
    println!("{:>9} {:>10} {:>9} {:>8}", "calls", "VmRSS KiB", "fraud", "leases");
    println!("{:>9} {:>10} {:>9} {:>8}", 0, rss_kib(), adm.fraud.len(), adm.store.leases());
    let mut first = 0;
    for i in 0..n {
        let now = t0 + Duration::from_millis(i);
        // Distinct German numbers: +49 30 and 8 digits from i.
        let to = format!("+4930{:08}", i % 100_000_000);
        let call = IncomingCall {
            source,
            local,
            transport: Transport::Udp,
            user: &to,
            from_user: Some("+442071234501"),
            pai: None,
            privacy: None,
            has_offer: true,
            at: None,
            trunk: None,
        };
        match policy::admit(&cfg, &call, now, &mut adm) {
            Decision::Route(mut plan) => {
                routed += 1;
                adm.release(&mut plan.hold, Some(30));
            }
            _ => refused += 1,
        }
        if (i + 1) % (n / 10).max(1) == 0 {
            let rss = rss_kib();
            if first == 0 {
                first = rss;
            }
            println!("{:>9} {:>10} {:>9} {:>8}", i + 1, rss, adm.fraud.len(), adm.store.leases());
        }
    }
    let rss = rss_kib();
    let secs = wall.elapsed().as_secs_f64();
    println!(
        "{n} distinct numbers: {routed} routed, {refused} refused; VmRSS {first} KiB at 10 %, {rss} KiB at the end \
         ({:+} KiB); fraud entries {} (bound 65536); {:.2} µs per admit+release",
        rss as i64 - first as i64,
        adm.fraud.len(),
        secs * 1e6 / n as f64
    );
}
