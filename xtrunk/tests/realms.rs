//! The multi-homed edge (issue #12), in network namespaces the test makes: a PBX network
//! (10.77.1.0/24) and a carrier network (10.77.2.0/24) that cannot reach each other (no default
//! routes, no routes between them), `xtrunk run` on both (root namespace, one SIP listener and
//! one media address on each). Calls both ways carry media, and each side sees only its own
//! interface's address in Via, Contact, Record-Route and SDP.
//!
//! Needs root (namespaces, veth); without it the test is skipped with a loud message.

use std::fs;
use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

mod common;
use common::{arrivals, free_range, is_req, is_resp, recv_msg, rtp_sender, wait_ready, Guard};

use xtrunk_signaling::b2bua::response;
use xtrunk_signaling::sip::msg::{HName, Message, NameAddr};

const SIP_PORT: u16 = 5460;

fn sh(cmd: &str) {
    let st = Command::new("sh").arg("-c").arg(cmd).status().unwrap();
    assert!(st.success(), "`{cmd}` failed");
}

/// The two networks; removed on drop.
struct Nets {
    id: u32,
}

impl Nets {
    /// `variant` tells apart the networks of tests running at once in one process.
    fn new(variant: u32) -> Self {
        let id = (std::process::id() % 10_000) * 10 + variant;
        let n = Self { id };
        n.teardown();
        for (side, net) in [("p", 1), ("c", 2)] {
            let (ns, a, b) = (n.ns(side), format!("xr{side}{id}"), format!("xr{side}{id}n"));
            sh(&format!("ip netns add {ns}"));
            sh(&format!("ip link add {a} type veth peer name {b} && ip link set {b} netns {ns}"));
            sh(&format!("ip addr add 10.77.{net}.1/24 dev {a} && ip link set {a} up"));
            sh(&format!("ip -n {ns} addr add 10.77.{net}.2/24 dev {b} && ip -n {ns} link set {b} up && ip -n {ns} link set lo up"));
            // The far ends send real checksums: the AF_XDP path checks them (veth offloads them).
            // GRO gives the far veth a NAPI context, which a veth needs to take XDP-redirected
            // frames (the fast path); a real NIC has one anyway.
            sh(&format!("nsenter --net=/run/netns/{ns} ethtool -K {b} tx off gro on >/dev/null"));
        }
        n
    }

    fn link(&self, side: &str) -> String {
        format!("xr{side}{}", self.id)
    }

    fn ns(&self, side: &str) -> String {
        format!("xtrealm-{side}{}", self.id)
    }

    fn teardown(&self) {
        for side in ["p", "c"] {
            let quiet = |args: &[&str]| {
                let _ = Command::new("ip").args(args).stderr(std::process::Stdio::null()).status();
            };
            quiet(&["netns", "del", &self.ns(side)]);
            quiet(&["link", "del", &format!("xr{side}{}", self.id)]);
        }
    }

    /// A UDP socket bound to `addr` inside the namespace of `side` (a socket stays in the
    /// namespace it was created in, whichever thread uses it).
    fn socket(&self, side: &str, addr: &str) -> UdpSocket {
        let (path, addr) = (format!("/run/netns/{}", self.ns(side)), addr.to_string());
        std::thread::spawn(move || {
            let f = fs::File::open(&path).unwrap();
            // SAFETY: setns(2) on this (short-lived) thread only, with a namespace fd we opened.
            let rc = unsafe { libc::setns(std::os::fd::AsRawFd::as_raw_fd(&f), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns {path}");
            let s = UdpSocket::bind(&addr).unwrap();
            s.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
            s
        })
        .join()
        .unwrap()
    }
}

impl Drop for Nets {
    fn drop(&mut self) {
        self.teardown();
    }
}

/// The edge's config; `datapath` is its `[datapath]` table (backend and what it needs).
fn config(dir: &std::path::Path, shm: &std::path::Path, media: u16, datapath: &str) -> PathBuf {
    let text = format!(
        r#"[node]
name = "xtrunk-realms"
shm_path = "{shm}"
cdr_path = "{cdr}"

[[sip.listen]]
transport = "udp"
addr = "10.77.1.1:{SIP_PORT}"

[[sip.listen]]
transport = "udp"
addr = "10.77.2.1:{SIP_PORT}"

[media]
port_min = {media}
port_max = {media_max}
bind_ip = "0.0.0.0"
advertised_ip = "10.77.1.1"

{datapath}

[[trunk]]
name = "pbx"
role = "customer"
acl = ["10.77.1.0/24"]
targets = [{{ addr = "10.77.1.2:5060", transport = "udp" }}]
sip_listen = "10.77.1.1:{SIP_PORT}"
media_ip = "10.77.1.1"

[[trunk]]
name = "carrier"
role = "carrier"
acl = ["10.77.2.0/24"]
targets = [{{ addr = "10.77.2.2:5060", transport = "udp" }}]
sip_listen = "10.77.2.1:{SIP_PORT}"
media_ip = "10.77.2.1"

[[route]]
prefix = ""
from_trunk = "pbx"
trunk = "carrier"

[[route]]
prefix = ""
from_trunk = "carrier"
trunk = "pbx"
"#,
        shm = shm.display(),
        cdr = dir.join("cdr.jsonl").display(),
        media_max = media + 39,
    );
    let f = dir.join("xtrunk.toml");
    fs::write(&f, text).unwrap();
    f
}

fn sdp_at(ip: &str, port: u16) -> String {
    format!("v=0\r\no=x 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP 8\r\na=rtpmap:8 PCMA/8000\r\na=ptime:20\r\n")
}

/// Everything `m` says about addresses (Via, Contact, Record-Route, SDP) mentions `own` and
/// nothing of `other`.
fn only_own_side(m: &Message, own: &str, other: &str, what: &str) {
    let text = String::from_utf8_lossy(&m.to_bytes()).into_owned();
    assert!(!text.contains(other), "{what} names the other network ({other}):\n{text}");
    for h in [HName::Via, HName::Contact, HName::RecordRoute] {
        for v in m.headers_of(&h) {
            assert!(v.contains(own), "{what}: {h:?} {v} is not on {own}");
        }
    }
    let body = String::from_utf8_lossy(&m.body);
    assert!(body.lines().filter(|l| l.starts_with("c=")).all(|l| l.contains(own)), "{what} SDP:\n{body}");
}

/// One call from `caller` (on `caller_ip`'s side) to `callee`, answered, with RTP both ways;
/// checks what each side saw, then hangs up.
#[allow(clippy::too_many_arguments)]
fn call(
    xt: SocketAddr,
    caller: &UdpSocket,
    callee: &UdpSocket,
    (caller_own, callee_own): (&str, &str),
    rtp: (UdpSocket, UdpSocket),
    id: &str,
    g: &Guard,
) {
    let me = caller.local_addr().unwrap();
    let (caller_rtp, callee_rtp) = rtp;
    let (cr, er) = (caller_rtp.local_addr().unwrap(), callee_rtp.local_addr().unwrap());
    let offer = sdp_at(&cr.ip().to_string(), cr.port());
    let inv = format!("INVITE sip:4930123@{xt} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK{id};rport\r\nFrom: <sip:100@{me}>;tag=a{id}\r\nTo: <sip:4930123@{xt}>\r\nCall-ID: {id}\r\nCSeq: 1 INVITE\r\nContact: <sip:100@{me}>\r\nMax-Forwards: 70\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{offer}", offer.len());
    caller.send_to(inv.as_bytes(), xt).unwrap();
    let (b_inv, from) = recv_msg(callee, Duration::from_secs(5), is_req("INVITE"))
        .unwrap_or_else(|| panic!("{id}: no INVITE at the callee; log:\n{}", g.log_tail()));
    only_own_side(&b_inv, callee_own, caller_own, &format!("{id}: INVITE toward the callee"));
    let mut ok = response(&b_inv, 200, "OK", Some("b"));
    ok.push(HName::Contact, format!("<sip:c@{}>", callee.local_addr().unwrap()));
    ok.push(HName::ContentType, "application/sdp");
    ok.body = sdp_at(&er.ip().to_string(), er.port()).into_bytes();
    callee.send_to(&ok.to_bytes(), from).unwrap();
    let (ok_a, _) = recv_msg(caller, Duration::from_secs(5), is_resp(200, "INVITE")).expect("200 at the caller");
    only_own_side(&ok_a, caller_own, callee_own, &format!("{id}: 200 toward the caller"));
    let to = ok_a.header(&HName::To).unwrap();
    let target = ok_a.header(&HName::Contact).and_then(|c| NameAddr::parse(c).ok()).unwrap().uri;
    let ack = format!("ACK {target} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK{id}a;rport\r\nFrom: <sip:100@{me}>;tag=a{id}\r\nTo: {to}\r\nCall-ID: {id}\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n");
    caller.send_to(ack.as_bytes(), xt).unwrap();
    // The edge is .1 on each network.
    let relay_a = SocketAddr::new(format!("{caller_own}1").parse().unwrap(), common::sdp_port(&ok_a.body));
    let relay_b = SocketAddr::new(format!("{callee_own}1").parse().unwrap(), common::sdp_port(&b_inv.body));
    // RTP both ways through the relay, each side sending to its own side's relay address.
    let stop = Arc::new(AtomicBool::new(false));
    let (at_callee, at_caller) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let threads = [
        rtp_sender(caller_rtp.try_clone().unwrap(), relay_a, Arc::clone(&stop)),
        rtp_sender(callee_rtp.try_clone().unwrap(), relay_b, Arc::clone(&stop)),
    ];
    // Each side must receive its media from the relay address on its own network.
    let strays = Arc::new(AtomicU64::new(0));
    let counters = [
        rtp_counter_from(callee_rtp, relay_b, Arc::clone(&at_callee), Arc::clone(&strays), Arc::clone(&stop)),
        rtp_counter_from(caller_rtp, relay_a, Arc::clone(&at_caller), Arc::clone(&strays), Arc::clone(&stop)),
    ];
    std::thread::sleep(Duration::from_millis(300));
    let (down, up) =
        (arrivals(&at_callee, Duration::from_millis(600)), arrivals(&at_caller, Duration::from_millis(600)));
    stop.store(true, Ordering::Relaxed);
    threads.into_iter().for_each(|t| drop(t.join()));
    counters.into_iter().for_each(|t| t.join().unwrap());
    println!("{id}: {down} RTP packets caller→callee, {up} callee→caller in 600 ms");
    assert!(down >= 15 && up >= 15, "{id}: media {down}/{up}; log:\n{}", g.log_tail());
    assert_eq!(strays.load(Ordering::Relaxed), 0, "{id}: RTP from an address other than the side's relay address");
    let bye = format!("BYE {target} SIP/2.0\r\nVia: SIP/2.0/UDP {me};branch=z9hG4bK{id}b;rport\r\nFrom: <sip:100@{me}>;tag=a{id}\r\nTo: {to}\r\nCall-ID: {id}\r\nCSeq: 2 BYE\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n");
    caller.send_to(bye.as_bytes(), xt).unwrap();
    let (bye_b, from) = recv_msg(callee, Duration::from_secs(3), is_req("BYE")).expect("BYE at the callee");
    only_own_side(&bye_b, callee_own, caller_own, &format!("{id}: BYE toward the callee"));
    callee.send_to(&response(&bye_b, 200, "OK", None).to_bytes(), from).unwrap();
}

fn is_root() -> bool {
    // SAFETY: geteuid(2) reads a process attribute; no memory involved.
    unsafe { libc::geteuid() == 0 }
}

/// Counts RTP arriving at `sock` from `relay`; anything from another source is a stray.
fn rtp_counter_from(
    sock: UdpSocket,
    relay: SocketAddr,
    count: Arc<AtomicU64>,
    strays: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while !stop.load(Ordering::Relaxed) {
            if let Ok((n, src)) = sock.recv_from(&mut buf) {
                if n >= 12 && buf[0] >> 6 == 2 {
                    let c = if src == relay { &count } else { &strays };
                    c.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    })
}

/// The two tests use the same networks: one at a time.
static NETS: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn each_side_sees_only_its_own_interface_and_media_flows_both_ways() {
    if !is_root() {
        eprintln!("#### realms: NOT ROOT — the multi-homed namespace test is SKIPPED ####");
        return;
    }
    let _one = NETS.lock().unwrap_or_else(|e| e.into_inner());
    let nets = Nets::new(0);
    two_calls(&nets, "socket", "[datapath]\nbackend = \"socket\"\nmax_sessions = 8\n");
}

/// The same edge on the AF_XDP backend: the XDP program on both interfaces, one worker serving
/// queue 0 of each; media ports on the wildcard address, so each leg's packets leave from the
/// address its peer reached (or the route's source toward it).
#[test]
fn af_xdp_backend_serves_both_interfaces_from_their_own_addresses() {
    if !is_root() {
        eprintln!("#### realms: NOT ROOT — the multi-homed AF_XDP namespace test is SKIPPED ####");
        return;
    }
    let _one = NETS.lock().unwrap_or_else(|e| e.into_inner());
    let nets = Nets::new(1);
    let dp = format!(
        "[datapath]\nbackend = \"af_xdp\"\nmax_sessions = 8\n\n[datapath.af_xdp]\nmode = \"copy\"\nframe_count = 4096\nring_size = 1024\n\n\
         [[datapath.af_xdp.interfaces]]\nname = \"{}\"\nqueues = [{{ id = 0, core = 0 }}]\n\n\
         [[datapath.af_xdp.interfaces]]\nname = \"{}\"\nqueues = [{{ id = 0, core = 0 }}]\n",
        nets.link("p"),
        nets.link("c")
    );
    two_calls(&nets, "xdp", &dp);
}

fn two_calls(nets: &Nets, what: &str, datapath: &str) {
    let tag = format!("realms-{what}-{}", std::process::id());
    let dir = std::env::temp_dir().join(format!("xtrunk-{tag}"));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    let shm = PathBuf::from(format!("/dev/shm/xtrunk-test-{tag}"));
    let cfg = config(&dir, &shm, free_range(40, &[]), datapath);
    let mut g = Guard::new(&dir.join("xtrunk.log"), &dir, &shm);
    g.start(&cfg);
    let pbx = nets.socket("p", "10.77.1.2:5060");
    let carrier = nets.socket("c", "10.77.2.2:5060");
    let (xt_p, xt_c): (SocketAddr, SocketAddr) =
        (format!("10.77.1.1:{SIP_PORT}").parse().unwrap(), format!("10.77.2.1:{SIP_PORT}").parse().unwrap());
    wait_ready(&mut g, &pbx, xt_p, &tag);
    let rtp = |a: &str, b: &str| (nets.socket("p", a), nets.socket("c", b));
    // PBX → carrier.
    let (p_rtp, c_rtp) = rtp("10.77.1.2:7000", "10.77.2.2:8000");
    call(xt_p, &pbx, &carrier, ("10.77.1.", "10.77.2."), (p_rtp, c_rtp), &format!("out-{tag}"), &g);
    // Carrier → PBX.
    let (p_rtp, c_rtp) = rtp("10.77.1.2:7002", "10.77.2.2:8002");
    call(xt_c, &carrier, &pbx, ("10.77.2.", "10.77.1."), (c_rtp, p_rtp), &format!("in-{tag}"), &g);
    drop(g);
}
