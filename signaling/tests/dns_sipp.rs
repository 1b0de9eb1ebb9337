//! #16 RFC 3263 trunk domains against a real DNS server: each test starts its own `dnsmasq` on a
//! loopback port with NAPTR, SRV and A records, points `[sip.dns]` at it, and sends SIPp calls
//! to a trunk that has only a `domain`.

#[macro_use]
mod common;

use std::net::UdpSocket;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;

fn dnsmasq_available() -> bool {
    Command::new("dnsmasq").arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok()
}

/// A dnsmasq answering only from `records` (no upstream, no /etc/hosts), TTL 1 s.
struct Dns {
    child: Child,
    port: u16,
}

impl Dns {
    fn start(records: &[String]) -> Self {
        let port = free_port();
        let child = Command::new("dnsmasq")
            .args(["--keep-in-foreground", "--no-resolv", "--no-hosts", "--no-poll", "--conf-file=/dev/null"])
            .args(["--listen-address=127.0.0.1", "--bind-interfaces", "--local-ttl=1", "--user=root"])
            .arg(format!("--port={port}"))
            .arg("--pid-file=")
            .args(records)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn dnsmasq");
        assert!(xtrunk_signaling::testing::wait_port_bound(port, Duration::from_secs(10)), "dnsmasq did not bind");
        Self { child, port }
    }
}

impl Drop for Dns {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A sidecar whose carrier trunk is `domain` resolved by `dns`; waits until it resolved.
fn sidecar(name: &str, dns: &Dns, domain: &str) -> Sidecar {
    let dns_port = dns.port;
    let domain = domain.to_string();
    let side = Sidecar::start(name, &[], move |c| {
        c.sip.dns.servers = vec![std::net::SocketAddr::from(([127, 0, 0, 1], dns_port))];
        c.sip.dns.timeout_ms = 500;
        let t = c.trunks.iter_mut().find(|t| t.name == "carrier").unwrap();
        t.targets.clear();
        t.domain = Some(domain);
    });
    // The resolver answers within milliseconds on loopback; calls placed before would find the
    // trunk without targets.
    std::thread::sleep(Duration::from_millis(1500));
    side
}

fn srv(name: &str, port: u16, prio: u16, weight: u16, host: &str) -> String {
    format!("--srv-host={name},{host},{port},{prio},{weight}")
}

#[test]
fn srv_priority_and_weight_spread_the_calls() {
    need_sipp!();
    if !dnsmasq_available() {
        eprintln!("dnsmasq not installed; skipping (scripts/setup installs dnsmasq-base)");
        return;
    }
    let (a, b, c) = (free_port(), free_port(), free_port());
    // NAPTR → _sip._udp; SRV priority 10: a (weight 3) and b (weight 1); priority 20: c.
    let dns = Dns::start(&[
        "--naptr-record=carrier.test,10,50,s,SIP+D2U,,_sip._udp.carrier.test".into(),
        srv("_sip._udp.carrier.test", a, 10, 3, "a.carrier.test"),
        srv("_sip._udp.carrier.test", b, 10, 1, "b.carrier.test"),
        srv("_sip._udp.carrier.test", c, 20, 1, "c.carrier.test"),
        "--host-record=a.carrier.test,127.0.0.1".into(),
        "--host-record=b.carrier.test,127.0.0.1".into(),
        "--host-record=c.carrier.test,127.0.0.1".into(),
    ]);
    let side = sidecar("dns-srv", &dns, "carrier.test");
    let ua = sipp(&side.dir, "a", "uas_domain", a, None, 40, &[]);
    let ub = sipp(&side.dir, "b", "uas_domain", b, None, 40, &[]);
    let uc = sipp(&side.dir, "c", "uas_domain", c, None, 40, &[]);
    let pbx = sipp(&side.dir, "uac", "uac_basic", free_port(), Some(side.port), 40, &["-r", "20"]);
    let p = pbx.wait();
    std::thread::sleep(Duration::from_millis(500));
    let (oa, ob, _) = (ua.kill(), ub.kill(), uc.kill());
    let (s, cdrs) = side.stop_with_cdrs();
    // Where each call was answered, from its CDR (SIPp's own statistics lag by up to a second).
    let answered_at = |port: u16| {
        let t = format!("127.0.0.1:{port}");
        cdrs.iter()
            .filter(|c| c["attempts"].as_array().and_then(|a| a.last()).is_some_and(|a| a["target"] == t))
            .count()
    };
    let got = (answered_at(a), answered_at(b), answered_at(c));
    println!("40 calls: a {} b {} c {} (weights 3:1 at priority 10, c at 20)", got.0, got.1, got.2);
    assert_eq!((p.successful, p.failed), (40, 0), "{p:?}");
    assert_eq!(got, (30, 10, 0), "SRV weight 3:1, priority 20 unused");
    assert!(cdrs.iter().all(|c| c["attempts"].as_array().map(Vec::len) == Some(1)), "no call needed a second try");
    assert_eq!((oa.failed, ob.failed), (0, 0), "every Request-URI carried the domain");
    assert_eq!(cdrs.len(), 40);
    assert_clean(&s);
}

#[test]
fn a_dead_first_srv_target_fails_over_to_the_second() {
    need_sipp!();
    if !dnsmasq_available() {
        eprintln!("dnsmasq not installed; skipping (scripts/setup installs dnsmasq-base)");
        return;
    }
    // No NAPTR: the resolver falls back to _sip._udp (RFC 3263 §4.1). Priority 10 is a closed
    // port (ICMP unreachable), priority 20 answers.
    let dead = free_port();
    let live = free_port();
    let dns = Dns::start(&[
        srv("_sip._udp.carrier.test", dead, 10, 1, "a.carrier.test"),
        srv("_sip._udp.carrier.test", live, 20, 1, "b.carrier.test"),
        "--host-record=a.carrier.test,127.0.0.1".into(),
        "--host-record=b.carrier.test,127.0.0.1".into(),
    ]);
    let side = sidecar("dns-failover", &dns, "carrier.test");
    let uas = sipp(&side.dir, "live", "uas_domain", live, None, 10, &[]);
    let pbx = sipp(&side.dir, "uac", "uac_basic", free_port(), Some(side.port), 10, &["-r", "10"]);
    let (p, u) = (pbx.wait(), uas.wait());
    let (s, cdrs) = side.stop_with_cdrs();
    assert_eq!((p.successful, u.successful), (10, 10), "{p:?} {u:?}");
    let attempts: Vec<Vec<String>> = cdrs
        .iter()
        .map(|c| c["attempts"].as_array().unwrap().iter().map(|a| a["target"].as_str().unwrap().to_string()).collect())
        .collect();
    let (d, l) = (format!("127.0.0.1:{dead}"), format!("127.0.0.1:{live}"));
    assert!(attempts.iter().all(|a| a.last() == Some(&l)), "every call ended on the live target: {attempts:?}");
    assert_eq!(attempts[0], [d.clone(), l.clone()], "the first call tried the dead priority-10 target first");
    // The dead target is backed off (sip.target_backoff_secs): later calls go straight on.
    let direct = attempts.iter().filter(|a| a.len() == 1).count();
    println!("attempts per call: {:?}", attempts.iter().map(Vec::len).collect::<Vec<_>>());
    assert!(direct >= 8, "calls after the first skip the backed-off target: {attempts:?}");
    assert_clean(&s);
    // The UDP port the dead target names was never bound by anyone.
    assert!(UdpSocket::bind(("127.0.0.1", dead)).is_ok());
}
