//! End-to-end tests of the socket backend over loopback: real UDP peers (test code) exchange
//! RTP and RTCP through `socket::run` started in-process with channel-backed command source and
//! event sink.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use xtrunk_datapath::relay::DropReason;
use xtrunk_datapath::socket::{self, SocketOptions, Stats};
use xtrunk_datapath::wire::rtcp::{RtcpRepr, SdesChunk, SdesItem, SenderInfo};
use xtrunk_datapath::wire::rtp::{RtpPacket, RtpRepr, MAX_CSRC};
use xtrunk_ring::msg::{
    Codec, Command, ErrorCode, Event, LatchPolicy, LegCrypto, LegSpec, PtEntry, PtMap, SessionId, SessionSpec,
    StreamStats,
};

const LO: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

struct Backend {
    cmd: Sender<Command>,
    ev: Receiver<Event>,
    stop: Arc<AtomicBool>,
    stats: Arc<Stats>,
    join: Option<JoinHandle<Result<(), socket::Error>>>,
    dtmf: std::cell::Cell<u64>,
}

impl Backend {
    /// Relay ports below the ephemeral range so test peers (port 0) never take them.
    fn start(port_min: u16, cores: Vec<usize>) -> Self {
        let (cmd, cmd_rx) = mpsc::channel::<Command>();
        let (ev_tx, ev) = mpsc::channel::<Event>();
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(Stats::default());
        let opts =
            SocketOptions { bind_ip: LO, port_min, port_max: port_min + 199, cores, max_sessions: 16, batch: 32 };
        let (s, st) = (stop.clone(), stats.clone());
        let join = std::thread::spawn(move || socket::run_with_stats(opts, cmd_rx, ev_tx, s, st));
        Self { cmd, ev, stop, stats, join: Some(join), dtmf: std::cell::Cell::new(0) }
    }

    /// The answer to `c`; DTMF reports (`Event::Dtmf`, the digits the streams carry) are
    /// counted in `dtmf` and skipped.
    fn command(&self, c: Command) -> Event {
        self.cmd.send(c).unwrap();
        loop {
            match self.next_event(Duration::from_secs(5)).expect("no answer from the backend") {
                Event::Dtmf { .. } => self.dtmf.set(self.dtmf.get() + 1),
                e => return e,
            }
        }
    }

    fn next_event(&self, t: Duration) -> Option<Event> {
        self.ev.recv_timeout(t).ok()
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(j) = self.join.take() {
            let r = j.join().expect("backend thread panicked");
            if !std::thread::panicking() {
                r.expect("backend returned an error");
            }
        }
    }
}

fn pts(list: &[(u8, Codec)]) -> PtMap {
    let mut m = PtMap::new();
    for &(pt, codec) in list {
        assert!(m.push(PtEntry { pt, codec }));
    }
    m
}

fn leg(port: u16, remote: Option<SocketAddr>, rtcp: u16, latch: LatchPolicy, map: PtMap) -> LegSpec {
    LegSpec {
        local: SocketAddr::new(LO, port),
        remote,
        remote_rtcp_port: rtcp,
        rtcp_mux: false,
        latch,
        signal_ip: None,
        pt_map: map,
        crypto: LegCrypto::default(),
        ptime_ms: 0,
    }
}

fn peer() -> UdpSocket {
    let s = UdpSocket::bind((LO, 0)).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    s
}

fn rtp(pt: u8, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let r = RtpRepr {
        marker: false,
        payload_type: pt,
        sequence_number: seq,
        timestamp: ts,
        ssrc,
        csrc_count: 0,
        csrcs: [0; MAX_CSRC],
        extension: None,
        padding: 0,
    };
    let mut b = vec![0u8; r.buffer_len(payload.len())];
    r.emit(&mut b, payload).unwrap();
    b
}

// ---------------------------------------------------------------------------------------------
// Independent G.711 reference, written from the G.711 tables (segment / quantization-interval
// form) rather than from the STL bit manipulation the relay transcribes: decode to the interval's
// reconstruction value; encode by finding the code whose decision interval contains the linear
// value (positive codes own [lo, hi), negative codes own [-hi, -lo), so a value exactly on a
// decision level belongs to the interval above it, and 0 encodes as positive).

fn ref_alaw_decode(a: u8) -> i32 {
    let x = a ^ 0x55;
    let seg = i32::from((x >> 4) & 7);
    let q = i32::from(x & 0x0F);
    let mag = if seg == 0 { 2 * q + 1 } else { (2 * q + 33) << (seg - 1) };
    // 12-bit magnitude scaled to 16-bit linear.
    if x & 0x80 != 0 {
        mag * 8
    } else {
        -mag * 8
    }
}

/// Decision interval [lo, hi) of an A-law code's magnitude, 16-bit linear.
fn alaw_interval(a: u8) -> (i32, i32) {
    let x = a ^ 0x55;
    let seg = i32::from((x >> 4) & 7);
    let q = i32::from(x & 0x0F);
    if seg == 0 {
        (16 * q, 16 * q + 16)
    } else {
        ((16 + q) << (seg + 3), (17 + q) << (seg + 3))
    }
}

fn ref_ulaw_decode(u: u8) -> i32 {
    let x = !u;
    let e = i32::from((x >> 4) & 7);
    let m = i32::from(x & 0x0F);
    let mag = ((2 * m + 33) << e) - 33;
    // 13-bit magnitude scaled to 16-bit linear.
    if u & 0x80 != 0 {
        mag * 4
    } else {
        -mag * 4
    }
}

/// Decision interval [lo, hi) of a µ-law code's magnitude, 16-bit linear (bias 33 removed).
fn ulaw_interval(u: u8) -> (i32, i32) {
    let x = !u;
    let e = i32::from((x >> 4) & 7);
    let m = i32::from(x & 0x0F);
    ((((16 + m) << (e + 1)) - 33).max(0) * 4, (((17 + m) << (e + 1)) - 33) * 4)
}

fn ref_encode(x: i32, interval: fn(u8) -> (i32, i32), decode: fn(u8) -> i32) -> u8 {
    let positive = |c: u8| decode(c) > 0 || (decode(c) == 0 && c & 0x80 != 0);
    let mut top = (0u8, 0u8); // largest-magnitude positive and negative codes, for clipping
    for c in 0..=255u8 {
        let (lo, hi) = interval(c);
        if positive(c) {
            if (lo..hi).contains(&x) {
                return c;
            }
            if decode(c) > decode(top.0) {
                top.0 = c;
            }
        } else {
            if (-hi..-lo).contains(&x) {
                return c;
            }
            if decode(c) < decode(top.1) {
                top.1 = c;
            }
        }
    }
    if x > 0 {
        top.0
    } else {
        top.1
    }
}

fn ref_a2u(a: u8) -> u8 {
    ref_encode(ref_alaw_decode(a), ulaw_interval, ref_ulaw_decode)
}

fn ref_u2a(u: u8) -> u8 {
    ref_encode(ref_ulaw_decode(u), alaw_interval, ref_alaw_decode)
}

/// RFC 3550 A.8 over (arrival in timestamp units, RTP timestamp).
fn a8_jitter(pkts: &[(u32, u32)]) -> u32 {
    let mut j: i64 = 0;
    let mut last: Option<i64> = None;
    for &(arr, ts) in pkts {
        let transit = i64::from(arr) - i64::from(ts);
        if let Some(l) = last {
            j += (transit - l).abs() - ((j + 8) >> 4);
        }
        last = Some(transit);
    }
    (j >> 4) as u32
}

/// What one direction's sender did, for the assertions.
#[derive(Debug, Default)]
struct Sent {
    packets: u64,
    bytes: u64,
    lost: u64,
    reordered: u64,
    duplicates: u64,
    rtcp: u64,
    /// (send time in 8 kHz units since the sender's epoch, RTP ts) of every audio packet.
    audio_times: Vec<(u32, u32)>,
    /// Expected (seq, pt, payload) as the far end must see it, in send order.
    expect: Vec<(u16, u8, Vec<u8>)>,
    /// Expected RTCP datagrams.
    expect_rtcp: Vec<Vec<u8>>,
}

#[allow(clippy::too_many_arguments)]
/// Sends `n` sequence numbers' worth of RTP at 1 packet/ms (RTP clock 8 per packet, so arrival
/// spacing matches the timestamps), with injected loss (every 97th seq skipped), reordering
/// (pairs swapped every 151 packets), one duplicate, a DTMF event every 400 packets, and an
/// SR+SDES compound on the RTCP socket every 250 packets.
fn send_stream(
    rtp_sock: &UdpSocket,
    rtcp_sock: &UdpSocket,
    to: SocketAddr,
    to_rtcp: SocketAddr,
    audio_pt: u8,
    dtmf_pt: u8,
    out_pt: (u8, u8),
    convert: fn(u8) -> u8,
    ssrc: u32,
    n: u16,
) -> Sent {
    let mut sent = Sent::default();
    // Build the send order first.
    let mut order: Vec<u16> = (0..n).filter(|s| s % 97 != 50).collect();
    sent.lost = u64::from(n) - order.len() as u64;
    let mut i = 100;
    while i + 1 < order.len() {
        order.swap(i, i + 1);
        sent.reordered += 1;
        i += 151;
    }
    let dup_at = order.iter().position(|&s| s == 777).unwrap();
    order.insert(dup_at + 1, 777);
    sent.duplicates = 1;
    let epoch = Instant::now();
    let base_seq: u16 = 65000; // crosses the 16-bit wrap
    for (k, &s) in order.iter().enumerate() {
        let seq = base_seq.wrapping_add(s);
        let ts = u32::from(s) * 8;
        let due = epoch + Duration::from_millis(k as u64);
        while Instant::now() < due {
            std::thread::sleep(Duration::from_micros(200));
        }
        let (pkt, expect) = if s % 400 == 399 {
            let ev = [(s / 400) as u8 % 16, 0x8a, 0x01, 0x40];
            (rtp(dtmf_pt, seq, ts, ssrc, &ev), (seq, out_pt.1, ev.to_vec()))
        } else {
            let payload: Vec<u8> = (0..160u32).map(|j| ((u32::from(s) * 7 + j) % 256) as u8).collect();
            let conv: Vec<u8> = payload.iter().map(|&b| convert(b)).collect();
            (rtp(audio_pt, seq, ts, ssrc, &payload), (seq, out_pt.0, conv))
        };
        let t = (epoch.elapsed().as_micros() * 8 / 1000) as u32;
        rtp_sock.send_to(&pkt, to).unwrap();
        if expect.1 == out_pt.0 {
            sent.audio_times.push((t, ts));
        }
        sent.packets += 1;
        sent.bytes += pkt.len() as u64;
        sent.expect.push(expect);
        if k % 250 == 0 {
            let mut c = vec![0u8; 256];
            let info =
                SenderInfo { ntp_timestamp: k as u64, rtp_timestamp: ts, packet_count: k as u32, octet_count: 0 };
            let mut len = RtcpRepr::SenderReport { ssrc, info, reports: &[] }.emit(&mut c).unwrap();
            let items = [SdesItem { kind: 1, text: b"peer@test" }];
            len += RtcpRepr::SourceDescription { chunks: &[SdesChunk { ssrc, items: &items }] }
                .emit(&mut c[len..])
                .unwrap();
            c.truncate(len);
            rtcp_sock.send_to(&c, to_rtcp).unwrap();
            sent.rtcp += 1;
            sent.expect_rtcp.push(c);
        }
    }
    sent
}

/// Receives until `want` RTP packets arrived or 2 s pass without any.
fn receive(sock: &UdpSocket, want: usize, from: SocketAddr) -> Vec<(u16, u8, Vec<u8>)> {
    let mut got = vec![];
    let mut buf = [0u8; 2048];
    let mut idle = Instant::now();
    while got.len() < want && idle.elapsed() < Duration::from_secs(2) {
        if let Ok((n, src)) = sock.recv_from(&mut buf) {
            assert_eq!(src, from, "RTP must come from the relay's other-leg port");
            let p = RtpPacket::new_checked(&buf[..n]).expect("relay forwarded an invalid RTP packet");
            got.push((p.sequence_number(), p.payload_type(), p.payload().to_vec()));
            idle = Instant::now();
        }
    }
    got
}

fn receive_rtcp(sock: &UdpSocket, want: usize, from: SocketAddr) -> Vec<Vec<u8>> {
    let mut got = vec![];
    let mut buf = [0u8; 2048];
    let mut idle = Instant::now();
    while got.len() < want && idle.elapsed() < Duration::from_secs(3) {
        if let Ok((n, src)) = sock.recv_from(&mut buf) {
            assert_eq!(src, from, "RTCP must come from the relay's other-leg RTCP port");
            got.push(buf[..n].to_vec());
            idle = Instant::now();
        }
    }
    got
}

fn check_leg(stats: &StreamStats, sent: &Sent, what: &str) {
    assert_eq!(stats.packets, sent.packets, "{what}: packets");
    assert_eq!(stats.bytes, sent.bytes, "{what}: bytes");
    assert_eq!(stats.lost, sent.lost, "{what}: lost");
    assert_eq!(stats.reordered, sent.reordered, "{what}: reordered");
    assert_eq!(stats.duplicates, sent.duplicates, "{what}: duplicates");
    assert_eq!(stats.rtcp_packets, sent.rtcp, "{what}: rtcp");
    assert_eq!(stats.dropped, 0, "{what}: dropped");
    // The relay timestamps arrivals with its own millisecond clock; the test's reference uses the
    // send instants. They agree within the 1 ms quantum (8 timestamp units) plus 25%.
    let want = a8_jitter(&sent.audio_times);
    let tol = 8 + want / 4;
    assert!(stats.jitter.abs_diff(want) <= tol, "{what}: jitter {} vs reference {want} (±{tol})", stats.jitter);
}

#[test]
fn g711_reference_agrees_with_itself() {
    // Sanity of the test's own reference: decode/encode round trips on each law.
    for c in 0..=255u8 {
        assert_eq!(ref_encode(ref_alaw_decode(c), alaw_interval, ref_alaw_decode), c);
        let u = ref_encode(ref_ulaw_decode(c), ulaw_interval, ref_ulaw_decode);
        assert!(u == c || (c == 0x7F && u == 0xFF));
    }
    // And the relay's tables equal it on every code, both ways.
    for c in 0..=255u8 {
        assert_eq!(xtrunk_datapath::relay::g711::ALAW_TO_ULAW[usize::from(c)], ref_a2u(c), "A-law {c:#04x}");
        assert_eq!(xtrunk_datapath::relay::g711::ULAW_TO_ALAW[usize::from(c)], ref_u2a(c), "µ-law {c:#04x}");
    }
}

#[test]
fn relays_rtp_rtcp_with_transcoding_dtmf_and_exact_stats() {
    let be = Backend::start(21000, vec![]);
    let (a, a_rtcp, b, b_rtcp) = (peer(), peer(), peer(), peer());
    let spec = SessionSpec {
        id: SessionId(1),
        legs: [
            leg(
                21000,
                Some(a.local_addr().unwrap()),
                a_rtcp.local_addr().unwrap().port(),
                LatchPolicy::Once,
                pts(&[(8, Codec::Pcma), (101, Codec::TelephoneEvent)]),
            ),
            leg(
                21002,
                Some(b.local_addr().unwrap()),
                b_rtcp.local_addr().unwrap().port(),
                LatchPolicy::Once,
                pts(&[(0, Codec::Pcmu), (96, Codec::TelephoneEvent)]),
            ),
        ],
        media_timeout_ms: 0,
        leg_timeout_ms: [0; 2],
        allow_fast_path: false,
    };
    assert_eq!(be.command(Command::Create(spec)), Event::Created(SessionId(1)));
    let relay0 = SocketAddr::new(LO, 21000);
    let relay1 = SocketAddr::new(LO, 21002);
    let (relay0c, relay1c) = (SocketAddr::new(LO, 21001), SocketAddr::new(LO, 21003));
    const N: u16 = 2000;
    let forwarded = std::thread::scope(|sc| {
        // A → relay leg 0 (PCMA/101) → B (PCMU/96).
        let ta = sc.spawn(|| send_stream(&a, &a_rtcp, relay0, relay0c, 8, 101, (0, 96), ref_a2u, 0xA, N));
        // B → relay leg 1 (PCMU/96) → A (PCMA/101).
        let tb = sc.spawn(|| send_stream(&b, &b_rtcp, relay1, relay1c, 0, 96, (8, 101), ref_u2a, 0xB, N));
        let rb = sc.spawn(|| receive(&b, 2000, relay1));
        let ra = sc.spawn(|| receive(&a, 2000, relay0));
        let rbc = sc.spawn(|| receive_rtcp(&b_rtcp, 8, relay1c));
        let rac = sc.spawn(|| receive_rtcp(&a_rtcp, 8, relay0c));
        let (sa, sb) = (ta.join().unwrap(), tb.join().unwrap());
        let (got_b, got_a) = (rb.join().unwrap(), ra.join().unwrap());
        let (got_bc, got_ac) = (rbc.join().unwrap(), rac.join().unwrap());
        // Every packet arrived, in send order, converted sample by sample, DTMF intact.
        assert_eq!(got_b.len(), sa.expect.len());
        assert_eq!(got_a.len(), sb.expect.len());
        for (g, e) in got_b.iter().zip(&sa.expect) {
            assert_eq!(g, e, "A→B packet seq {}", e.0);
        }
        for (g, e) in got_a.iter().zip(&sb.expect) {
            assert_eq!(g, e, "B→A packet seq {}", e.0);
        }
        assert!(got_b.iter().filter(|p| p.1 == 96).count() >= 4, "DTMF went through");
        assert_eq!(got_bc, sa.expect_rtcp, "RTCP A→B unchanged");
        assert_eq!(got_ac, sb.expect_rtcp, "RTCP B→A unchanged");
        match be.command(Command::Delete(SessionId(1))) {
            Event::Deleted { id, stats, .. } => {
                assert_eq!(id, SessionId(1));
                // The RFC 4733 events A sent were reported (#18: a start and an end each).
                assert!(be.dtmf.get() >= 2, "{} DTMF reports", be.dtmf.get());
                check_leg(&stats[0], &sa, "leg 0 (from A)");
                check_leg(&stats[1], &sb, "leg 1 (from B)");
            }
            e => panic!("expected Deleted, got {e:?}"),
        }
        sa.packets + sb.packets + sa.rtcp + sb.rtcp
    });
    assert_eq!(be.stats.total_drops(), 0);
    assert_eq!(be.stats.tx_packets.load(Ordering::Relaxed), forwarded);
    assert_eq!(be.stats.rx_packets.load(Ordering::Relaxed), forwarded);
}

/// Latching over real sockets, with a third party (another IP, 127.0.0.2) that knows the ports:
/// before and after latching, nothing it sends is relayed and nothing is sent back to it.
#[test]
fn latching_policies_over_sockets() {
    let be = Backend::start(21200, vec![]);
    let b = peer();
    let sdp_a = peer(); // the address A's SDP names; A really sends from elsewhere (NAT)
    let nat_a = peer();
    let nat_a2 = peer();
    let third = UdpSocket::bind((Ipv4Addr::new(127, 0, 0, 2), 0)).unwrap();
    third.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let mk = |id: u64, p: u16, latch| SessionSpec {
        id: SessionId(id),
        legs: [
            leg(p, Some(sdp_a.local_addr().unwrap()), 0, latch, PtMap::new()),
            leg(p + 2, Some(b.local_addr().unwrap()), 0, LatchPolicy::Once, PtMap::new()),
        ],
        media_timeout_ms: 0,
        leg_timeout_ms: [0; 2],
        allow_fast_path: false,
    };
    let pkt = rtp(0, 1, 0, 9, &[0xff; 160]);
    let mut buf = [0u8; 2048];
    let drain = |s: &UdpSocket| {
        let mut b = [0u8; 2048];
        s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        while s.recv_from(&mut b).is_ok() {}
        s.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    };
    for (id, port, policy) in
        [(1, 21200, LatchPolicy::Once), (2, 21210, LatchPolicy::Follow), (3, 21220, LatchPolicy::Strict)]
    {
        assert_eq!(be.command(Command::Create(mk(id, port, policy))), Event::Created(SessionId(id)));
        let relay_a = SocketAddr::new(LO, port);
        let relay_b = SocketAddr::new(LO, port + 2);
        // The third party sends first, on both legs (same SSRC as A's): nothing reaches A or B.
        third.send_to(&pkt, relay_a).unwrap();
        third.send_to(&pkt, relay_b).unwrap();
        assert!(b.recv_from(&mut buf).is_err(), "{policy:?}: third party relayed before latching");
        // A sends from its NAT port (same IP as its SDP, another port).
        nat_a.send_to(&pkt, relay_a).unwrap();
        let got = b.recv_from(&mut buf);
        if policy == LatchPolicy::Strict {
            assert!(got.is_err(), "Strict must drop packets not from the SDP address");
        } else {
            assert_eq!(got.unwrap().1, relay_b);
        }
        // B answers: where does it go?
        b.send_to(&pkt, relay_b).unwrap();
        let to = if policy == LatchPolicy::Strict { &sdp_a } else { &nat_a };
        assert_eq!(to.recv_from(&mut buf).unwrap().1, relay_a, "{policy:?}: B's media to the right A address");
        // The third party again, after latching.
        third.send_to(&pkt, relay_a).unwrap();
        assert!(b.recv_from(&mut buf).is_err(), "{policy:?}: third party relayed after latching");
        // A moves to a second NAT port within the window: only Follow follows.
        nat_a2.send_to(&pkt, relay_a).unwrap();
        if policy == LatchPolicy::Follow {
            assert_eq!(b.recv_from(&mut buf).unwrap().1, relay_b);
        }
        b.send_to(&pkt, relay_b).unwrap();
        let to = match policy {
            LatchPolicy::Once => &nat_a,
            LatchPolicy::Follow => &nat_a2,
            LatchPolicy::Strict => &sdp_a,
        };
        assert_eq!(to.recv_from(&mut buf).unwrap().1, relay_a, "{policy:?}: after the move");
        assert!(third.recv_from(&mut buf).is_err(), "{policy:?}: something was sent to the third party");
        for s in [&sdp_a, &nat_a, &nat_a2, &b] {
            drain(s);
        }
        match be.command(Command::Delete(SessionId(id))) {
            Event::Deleted { stats, .. } => {
                let want_drops = match policy {
                    LatchPolicy::Once => 1,
                    LatchPolicy::Follow => 0,
                    LatchPolicy::Strict => 2,
                };
                assert_eq!(stats[0].rejected_sources, 2 + want_drops, "{policy:?}");
                assert_eq!(stats[0].dropped, 2 + want_drops, "{policy:?}");
                assert_eq!(stats[0].packets, 2 - want_drops, "{policy:?}");
                assert_eq!(stats[1].rejected_sources, 1, "{policy:?}");
            }
            e => panic!("{e:?}"),
        }
    }
    // Published within 100 ms: per policy 3 from the third party, plus Once 1 and Strict 2.
    std::thread::sleep(Duration::from_millis(250));
    assert_eq!(be.stats.drops(DropReason::SourceMismatch), 3 * 3 + 1 + 2);
}

#[test]
fn media_timeout_event_end_to_end() {
    let be = Backend::start(21400, vec![]);
    let (a, b) = (peer(), peer());
    let spec = SessionSpec {
        id: SessionId(7),
        legs: [
            leg(21400, Some(a.local_addr().unwrap()), 0, LatchPolicy::Once, PtMap::new()),
            leg(21402, Some(b.local_addr().unwrap()), 0, LatchPolicy::Once, PtMap::new()),
        ],
        media_timeout_ms: 300,
        leg_timeout_ms: [0; 2],
        allow_fast_path: false,
    };
    assert_eq!(be.command(Command::Create(spec)), Event::Created(SessionId(7)));
    // Media for ~400 ms keeps the session alive.
    let t0 = Instant::now();
    for k in 0..20u16 {
        a.send_to(&rtp(0, k, u32::from(k) * 160, 1, &[0; 160]), SocketAddr::new(LO, 21400)).unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(be.next_event(Duration::from_millis(1)), None, "no timeout while media flows");
    let last = Instant::now();
    match be.next_event(Duration::from_secs(3)) {
        Some(Event::MediaTimeout { id, idle_ms, leg: None }) => {
            let waited = last.elapsed().as_millis() as u64;
            assert_eq!(id, SessionId(7));
            assert!((300..=waited + 50).contains(&idle_ms), "idle_ms {idle_ms}, waited {waited}");
            // 20 packets 20 ms apart, then at least the 300 ms timeout.
            assert!(t0.elapsed() >= Duration::from_millis(650));
        }
        e => panic!("expected MediaTimeout, got {e:?}"),
    }
    // Only once per idle period.
    assert_eq!(be.next_event(Duration::from_millis(700)), None);
}

#[test]
fn garbage_is_dropped_and_counted() {
    let be = Backend::start(21600, vec![]);
    let (a, b) = (peer(), peer());
    let spec = SessionSpec {
        id: SessionId(3),
        legs: [
            // a=rtcp names A's one port: its RTCP comes from the port its RTP does.
            leg(
                21600,
                Some(a.local_addr().unwrap()),
                a.local_addr().unwrap().port(),
                LatchPolicy::Once,
                pts(&[(0, Codec::Pcmu)]),
            ),
            leg(21602, Some(b.local_addr().unwrap()), 0, LatchPolicy::Once, pts(&[(0, Codec::Pcmu)])),
        ],
        media_timeout_ms: 0,
        leg_timeout_ms: [0; 2],
        allow_fast_path: false,
    };
    assert_eq!(be.command(Command::Create(spec)), Event::Created(SessionId(3)));
    let rtp_port = SocketAddr::new(LO, 21600);
    let rtcp_port = SocketAddr::new(LO, 21601);
    let good = rtp(0, 1, 0, 1, &[0; 160]);
    a.send_to(&good[..7], rtp_port).unwrap(); // truncated RTP
    a.send_to(&[0x8f, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0], rtp_port).unwrap(); // CSRCs missing
    a.send_to(&rtp(9, 2, 0, 1, &[0; 20]), rtp_port).unwrap(); // unmapped PT
    a.send_to(b"\x00\x01\x00\x00\x21\x12\xa4\x42stun", rtp_port).unwrap(); // STUN
    a.send_to(b"hello, not RTP", rtp_port).unwrap(); // foreign
    a.send_to(&[0x81, 201, 0, 9, 0, 0, 0, 1], rtcp_port).unwrap(); // RTCP length past end
    a.send_to(&good, rtcp_port).unwrap(); // RTP on the RTCP port
    a.send_to(&good, rtp_port).unwrap(); // one good packet
    let mut buf = [0u8; 2048];
    let (n, from) = b.recv_from(&mut buf).unwrap();
    assert_eq!((n, from), (good.len(), SocketAddr::new(LO, 21602)));
    assert!(b.recv_from(&mut buf).is_err(), "nothing else gets through");
    std::thread::sleep(Duration::from_millis(250));
    assert_eq!(be.stats.drops(DropReason::MalformedRtp), 2);
    assert_eq!(be.stats.drops(DropReason::UnmappedPayloadType), 1);
    assert_eq!(be.stats.drops(DropReason::Foreign), 2);
    assert_eq!(be.stats.drops(DropReason::MalformedRtcp), 2);
    assert_eq!(be.stats.total_drops(), 7);
    match be.command(Command::Delete(SessionId(3))) {
        Event::Deleted { stats, .. } => assert_eq!((stats[0].dropped, stats[0].packets), (7, 1)),
        e => panic!("{e:?}"),
    }
}

#[test]
fn two_workers_dump_and_cross_worker_port_conflicts() {
    let be = Backend::start(21800, vec![0, 1]);
    let mk = |id: u64, p0: u16, p1: u16| SessionSpec {
        id: SessionId(id),
        legs: [leg(p0, None, 0, LatchPolicy::Once, PtMap::new()), leg(p1, None, 0, LatchPolicy::Once, PtMap::new())],
        media_timeout_ms: 0,
        leg_timeout_ms: [0; 2],
        allow_fast_path: false,
    };
    for i in 0..6u16 {
        let p = 21800 + i * 4;
        assert_eq!(
            be.command(Command::Create(mk(u64::from(i) + 1, p, p + 2))),
            Event::Created(SessionId(u64::from(i) + 1))
        );
    }
    // Session 1 is on worker 0, session 2 on worker 1: a port of session 2 clashes in the kernel.
    assert_eq!(
        be.command(Command::Create(mk(10, 21900, 21806))),
        Event::Error { id: SessionId(10), code: ErrorCode::PortInUse, port: 21806 }
    );
    assert_eq!(
        be.command(Command::Create(mk(1, 21910, 21912))),
        Event::Error { id: SessionId(1), code: ErrorCode::DuplicateSession, port: 0 }
    );
    // The refused session 10 left nothing behind: its free port can be used.
    assert_eq!(be.command(Command::Create(mk(11, 21900, 21902))), Event::Created(SessionId(11)));
    be.cmd.send(Command::Dump { token: 5 }).unwrap();
    let mut ids = vec![];
    loop {
        match be.next_event(Duration::from_secs(5)).expect("dump answer") {
            Event::Session(s) => ids.push(s.id.0),
            Event::DumpDone { token, count } => {
                assert_eq!((token, count), (5, 7));
                break;
            }
            e => panic!("{e:?}"),
        }
    }
    ids.sort();
    assert_eq!(ids, vec![1, 2, 3, 4, 5, 6, 11]);
    assert_eq!(
        be.command(Command::Delete(SessionId(10))),
        Event::Error { id: SessionId(10), code: ErrorCode::UnknownSession, port: 0 }
    );
    // A relayed packet on a session of worker 1 still works.
    let (a, b) = (peer(), peer());
    let mut s2 = mk(2, 21804, 21806);
    s2.legs[0].remote = Some(a.local_addr().unwrap());
    s2.legs[1].remote = Some(b.local_addr().unwrap());
    assert_eq!(be.command(Command::Update(s2)), Event::Updated(SessionId(2)));
    a.send_to(&rtp(0, 1, 0, 1, &[1; 10]), SocketAddr::new(LO, 21804)).unwrap();
    let mut buf = [0u8; 64];
    assert_eq!(b.recv_from(&mut buf).unwrap(), (22, SocketAddr::new(LO, 21806)));
}
