//! Per-call cost of the sans-IO B2BUA core (criterion).
//!
//!     cargo bench -p xtrunk-signaling --bench call
//!
//! One iteration = one whole answered call, driven the way SIPp's `uac_basic`/`uas_basic` drive
//! the sidecar: INVITE+SDP → (100, INVITE to the carrier) → 180 → 200+SDP → (ACK to the carrier)
//! → caller ACK → caller BYE → (BYE to the carrier) → 200 → Delete → Deleted. Only the core's
//! own work is timed (`handle_input`, `handle_timeout`, `handle_media_event`, every `poll_*`,
//! journal records produced but not written) — the shared rig, `xtrunk_signaling::testing::Pair`; building the peers' messages is not. Time is
//! simulated: `now` advances 0.5 ms per call (2 000 CPS), so transactions and timers reach the
//! steady state of that rate (about 64·T1 = 32 s of finished transactions stay in the tables).
//!
//! `shed_call_core_only`: one new call shed under overload (#20): its INVITE answered `503` +
//! `Retry-After` without state, then its ACK.
//!
//! `XT_CALLS=N` skips criterion and runs N calls once, then N shed calls (for `valgrind --tool=callgrind` or
//! `perf record`): see BENCHMARKS.md (signaling section).

#![allow(missing_docs)] // criterion_group! generates an undocumented `pub fn benches`.

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::Duration;

use criterion::{criterion_group, Criterion, Throughput};
use xtrunk_signaling::auth::client::{self, Creds, Offer};
use xtrunk_signaling::b2bua::response;
use xtrunk_signaling::sip::msg::{parse, HName, Message, Method};
use xtrunk_signaling::testing::{Pair, Record};
use xtrunk_signaling::transport::{Dest, Transport};

const OFFER: &str = "v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 8 0 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\n";
const ANSWER: &str = "v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6002 RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\n";

/// How the caller's trunk is gated.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Gate {
    /// Its ACL only.
    Acl,
    /// ACL and digest (`auth = "both"`, MD5), every call answering its own `407`.
    DigestPerCall,
    /// ACL and digest, the caller reusing the last nonce with nc + 1 (one `407` in all).
    DigestReuse,
}

/// The shared rig ([`Pair`]) with the two peers' addresses; time moves 0.5 ms per call.
pub struct Rig {
    pair: Pair,
    from_pbx: Dest,
    from_carrier: Dest,
    pbx: SocketAddr,
    carrier: SocketAddr,
    n: u64,
    gate: Gate,
    /// The nonce the caller holds (reuse), and its last nc.
    nonce: Option<(Offer, u32)>,
}

impl Rig {
    pub fn new() -> Self {
        Self::gated(Gate::Acl)
    }

    pub fn gated(gate: Gate) -> Self {
        let mut cfg = xtrunk_config::Config::embedded_default().expect("embedded config");
        cfg.media.port_min = 10_000;
        cfg.media.port_max = 60_000;
        if gate != Gate::Acl {
            let ha1 = xtrunk_signaling::auth::digest::Algorithm::Md5.ha1("bench", &cfg.node.name, "bench-secret");
            cfg.trunks[0].auth = xtrunk_config::AuthMode::Both;
            cfg.trunks[0].users = vec![xtrunk_config::TrunkUser {
                username: "bench".into(),
                password: None,
                ha1_md5: Some(ha1),
                ha1_sha256: None,
                ha1_sha512_256: None,
            }];
            cfg.sip.auth.algorithms = vec![xtrunk_config::DigestAlgorithm::Md5];
        }
        let local: SocketAddr = "127.0.0.1:5060".parse().expect("addr");
        let pbx: SocketAddr = "127.0.0.1:5062".parse().expect("addr");
        let carrier = cfg.trunks[1].targets[0].addr;
        let mut pair = Pair::new(&cfg, local, 1);
        pair.record = Record::Transmissions;
        pair.timers_after_input = true;
        Self {
            pair,
            from_pbx: Dest { transport: Transport::Udp, local, remote: pbx },
            from_carrier: Dest { transport: Transport::Udp, local, remote: carrier },
            pbx,
            carrier,
            n: 0,
            gate,
            nonce: None,
        }
    }

    /// The caller's INVITE `i`: CSeq `seq`, credentials if given.
    fn invite(i: u64, seq: u32, auth: Option<&str>) -> String {
        let auth = auth.map(|a| format!("Proxy-Authorization: {a}\r\n")).unwrap_or_default();
        format!("INVITE sip:4930{i}@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK-{i}-{seq}-0;rport\r\nFrom: sipp <sip:sipp@127.0.0.1:5062>;tag=77SIPpTag00{i}\r\nTo: 4930{i} <sip:4930{i}@127.0.0.1:5060>\r\nCall-ID: {i}-77@127.0.0.1\r\nCSeq: {seq} INVITE\r\nContact: <sip:sipp@127.0.0.1:5062>\r\nMax-Forwards: 70\r\n{auth}Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{OFFER}", OFFER.len())
    }

    /// The caller's ACK of a final non-2xx answer (`to`: its To, with the tag) to INVITE `i`'s
    /// CSeq 1: the INVITE's branch (RFC 3261 §17.1.1.3).
    fn ack_of_final(i: u64, to: &str) -> String {
        format!("ACK sip:4930{i}@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK-{i}-1-0;rport\r\nFrom: sipp <sip:sipp@127.0.0.1:5062>;tag=77SIPpTag00{i}\r\nTo: {to}\r\nCall-ID: {i}-77@127.0.0.1\r\nCSeq: 1 ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n")
    }

    fn answer(offer: &Offer, i: u64, nc: u32) -> String {
        let who = Creds { username: "bench", password: "bench-secret" };
        client::answer(offer, who, ("INVITE", &format!("sip:4930{i}@127.0.0.1:5060")), nc, &format!("{i:x}"))
    }

    /// Sends the INVITE of call `i` the way the gate asks; returns its CSeq.
    fn send_invite(&mut self, i: u64) -> u32 {
        let reused = match self.nonce.as_mut().filter(|_| self.gate == Gate::DigestReuse) {
            Some((offer, nc)) => {
                *nc += 1;
                Some(Self::answer(offer, i, *nc))
            }
            None => None,
        };
        self.input(self.from_pbx, Self::invite(i, 1, reused.as_deref()).as_bytes());
        if self.gate == Gate::Acl {
            return 1;
        }
        // A reused nonce is challenged again only once stale (simulated time passes it).
        match self.pair.try_take(self.pbx, |m| m.code() == Some(407)) {
            Some(chal) => self.answer_challenge(i, &chal),
            None => 1,
        }
    }

    /// ACKs the 407 of call `i`'s first INVITE and sends it again with credentials (CSeq 2).
    fn answer_challenge(&mut self, i: u64, chal: &Message) -> u32 {
        self.pair.out.clear();
        let to = chal.header(&HName::To).expect("To").to_string();
        self.input(self.from_pbx, Self::ack_of_final(i, &to).as_bytes());
        let (_, offer) = client::pick(chal).expect("a digest challenge");
        let a = Self::answer(&offer, i, 1);
        self.nonce = Some((offer, 1));
        self.input(self.from_pbx, Self::invite(i, 2, Some(&a)).as_bytes());
        2
    }

    /// One datagram in at the current simulated time, then what the shell does after it.
    fn input(&mut self, from: Dest, data: &[u8]) {
        self.pair.input_now(from, data);
    }

    /// The first message sent to `to` matching `pred`; everything else sent is dropped.
    fn take(&mut self, to: SocketAddr, pred: impl Fn(&Message) -> bool) -> Message {
        let m = self.pair.take(to, pred);
        self.pair.out.clear();
        m
    }

    /// Time spent inside the core since the last reset.
    pub fn busy(&mut self) -> &mut Duration {
        &mut self.pair.busy
    }

    /// One whole call.
    pub fn call(&mut self) {
        let i = self.n;
        self.n += 1;
        self.pair.now += Duration::from_micros(500);
        let seq = self.send_invite(i);
        let b_inv = self.take(self.carrier, |m| m.method() == Some(&Method::Invite));
        let mut r180 = response(&b_inv, 180, "Ringing", Some("cb"));
        r180.push(HName::Contact, format!("<sip:sipp@{}>", self.carrier));
        let r180 = r180.to_bytes();
        self.input(self.from_carrier, &r180);
        self.pair.out.clear();
        let mut ok = response(&b_inv, 200, "OK", Some("cb"));
        ok.push(HName::Contact, format!("<sip:sipp@{}>", self.carrier)).push(HName::ContentType, "application/sdp");
        ok.body = ANSWER.as_bytes().to_vec();
        let ok = ok.to_bytes();
        self.input(self.from_carrier, &ok);
        let ok_a = self.take(self.pbx, |m| m.code() == Some(200));
        let to = ok_a.header(&HName::To).expect("To").to_string();
        let ack = format!("ACK sip:4930{i}@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK-{i}-1-5;rport\r\nFrom: sipp <sip:sipp@127.0.0.1:5062>;tag=77SIPpTag00{i}\r\nTo: {to}\r\nCall-ID: {i}-77@127.0.0.1\r\nCSeq: {seq} ACK\r\nContact: <sip:sipp@127.0.0.1:5062>\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n");
        self.input(self.from_pbx, ack.as_bytes());
        let bye = format!("BYE sip:4930{i}@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK-{i}-2-7;rport\r\nFrom: sipp <sip:sipp@127.0.0.1:5062>;tag=77SIPpTag00{i}\r\nTo: {to}\r\nCall-ID: {i}-77@127.0.0.1\r\nCSeq: {} BYE\r\nContact: <sip:sipp@127.0.0.1:5062>\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n", seq + 1);
        self.pair.out.clear();
        self.input(self.from_pbx, bye.as_bytes());
        let b_bye = self.take(self.carrier, |m| m.method() == Some(&Method::Bye));
        let ok_bye = response(&b_bye, 200, "OK", None).to_bytes();
        self.input(self.from_carrier, &ok_bye);
        self.pair.out.clear();
    }

    /// Makes the core shed every new call (the shell reported the loop 2 s behind for 3 s).
    pub fn overload(&mut self) {
        for _ in 0..30 {
            self.pair.now += Duration::from_millis(100);
            let load = xtrunk_signaling::overload::Load { behind: Duration::from_secs(2), ring_fill_pct: 0 };
            self.pair.core.handle_load(self.pair.now, load);
        }
    }

    /// One new call shed (#20): its INVITE answered `503` statelessly, then its ACK.
    pub fn shed(&mut self) {
        let i = self.n;
        self.n += 1;
        self.pair.now += Duration::from_micros(500);
        self.input(self.from_pbx, Self::invite(i, 1, None).as_bytes());
        let r = self.take(self.pbx, |m| m.code().is_some());
        debug_assert_eq!(r.code(), Some(503));
        let to = r.header(&HName::To).expect("To").to_string();
        self.input(self.from_pbx, Self::ack_of_final(i, &to).as_bytes());
        self.pair.out.clear();
    }

    /// Calls still up (0 after every whole call).
    pub fn active(&self) -> usize {
        self.pair.core.active_calls()
    }
}

impl Default for Rig {
    fn default() -> Self {
        Self::new()
    }
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("b2bua");
    g.throughput(Throughput::Elements(1));
    for (name, gate) in [
        ("whole_call_core_only", Gate::Acl),
        ("whole_call_digest_per_call", Gate::DigestPerCall),
        ("whole_call_digest_nonce_reused", Gate::DigestReuse),
    ] {
        g.bench_function(name, |b| {
            let mut rig = Rig::gated(gate);
            // Warm up into the steady state of 2 000 CPS (64·T1 = 32 s of transactions).
            for _ in 0..70_000 {
                rig.call();
            }
            b.iter_custom(|iters| {
                *rig.busy() = Duration::ZERO;
                for _ in 0..iters {
                    rig.call();
                }
                assert_eq!(rig.active(), 0);
                *rig.busy()
            });
        });
    }
    // #20: what a shed call (INVITE answered 503 statelessly, and its ACK) costs the core,
    // against the whole call above, in the same invocation.
    g.bench_function("shed_call_core_only", |b| {
        let mut rig = Rig::new();
        rig.overload();
        b.iter_custom(|iters| {
            *rig.busy() = Duration::ZERO;
            for _ in 0..iters {
                rig.shed();
            }
            assert_eq!(rig.active(), 0);
            *rig.busy()
        });
    });
    g.bench_function("parse_invite", |b| {
        let inv = format!("INVITE sip:49301@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK-1-1-0;rport\r\nFrom: sipp <sip:sipp@127.0.0.1:5062>;tag=77SIPpTag001\r\nTo: 49301 <sip:49301@127.0.0.1:5060>\r\nCall-ID: 1-77@127.0.0.1\r\nCSeq: 1 INVITE\r\nContact: <sip:sipp@127.0.0.1:5062>\r\nMax-Forwards: 70\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{OFFER}", OFFER.len());
        b.iter(|| parse(black_box(inv.as_bytes())).expect("parses"));
    });
    g.finish();
}

criterion_group!(benches, bench);

fn main() {
    if let Some(n) = std::env::var("XT_CALLS").ok().and_then(|v| v.parse::<u64>().ok()) {
        let gate = match std::env::var("XT_GATE").as_deref() {
            Ok("digest") => Gate::DigestPerCall,
            Ok("digest-reuse") => Gate::DigestReuse,
            _ => Gate::Acl,
        };
        let mut rig = Rig::gated(gate);
        for _ in 0..n {
            rig.call();
        }
        assert_eq!(rig.active(), 0);
        println!("{n} calls, {:.2} µs/call in the core", rig.busy().as_secs_f64() * 1e6 / n as f64);
        let mut rig = Rig::new();
        rig.overload();
        for _ in 0..n {
            rig.shed();
        }
        println!("{n} shed calls, {:.2} µs/shed call in the core", rig.busy().as_secs_f64() * 1e6 / n as f64);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
