//! Micro-benchmarks of the relay core's packet path and the wire parsers (criterion).
//!
//! Needs `[[bench]] name = "relay" harness = false` in datapath/Cargo.toml.
//! Run: `cargo bench -p xtrunk-datapath --bench relay`.

#![allow(missing_docs)] // criterion_group! generates an undocumented `pub fn benches`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use xtrunk_datapath::relay::{Relay, RelayConfig, Verdict};
use xtrunk_datapath::wire::rtcp::{validate_compound, RtcpRepr, SdesChunk, SdesItem};
use xtrunk_datapath::wire::rtp::{RtpPacket, RtpRepr, MAX_CSRC};
use xtrunk_ring::msg::{Codec, Command, LatchPolicy, LegCrypto, LegSpec, PtEntry, PtMap, SessionId, SessionSpec};

fn map(list: &[(u8, Codec)]) -> PtMap {
    let mut m = PtMap::new();
    for &(pt, codec) in list {
        m.push(PtEntry { pt, codec });
    }
    m
}

fn relay_with(sessions: usize, m0: PtMap, m1: PtMap) -> Relay {
    relay_ptime(sessions, m0, m1, (0, 0))
}

fn relay_ptime(sessions: usize, m0: PtMap, m1: PtMap, (t0, t1): (u8, u8)) -> Relay {
    let mut r = Relay::new(RelayConfig { port_min: 10000, port_max: 60000, max_sessions: sessions });
    for i in 0..sessions {
        let p = 10000 + (i * 4) as u16;
        let leg = |port: u16, remote: u16, m: PtMap, ptime_ms: u8| LegSpec {
            local: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port),
            remote: Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), remote)),
            remote_rtcp_port: 0,
            rtcp_mux: false,
            latch: LatchPolicy::Once,
            signal_ip: None,
            pt_map: m,
            crypto: LegCrypto::default(),
            ptime_ms,
        };
        let s = SessionSpec {
            id: SessionId(i as u64 + 1),
            legs: [leg(p, 4000, m0, t0), leg(p + 2, 5000, m1, t1)],
            media_timeout_ms: 30_000,
            leg_timeout_ms: [0; 2],
            allow_fast_path: false,
        };
        r.apply(0, &Command::Create(s), &mut |_| {});
    }
    r
}

fn rtp(pt: u8) -> Vec<u8> {
    rtp_with(pt, &[0x55; 160])
}

fn rtp_with(pt: u8, payload: &[u8]) -> Vec<u8> {
    let r = RtpRepr {
        marker: false,
        payload_type: pt,
        sequence_number: 1,
        timestamp: 0,
        ssrc: 7,
        csrc_count: 0,
        csrcs: [0; MAX_CSRC],
        extension: None,
        padding: 0,
    };
    let mut b = vec![0u8; 2048];
    r.emit(&mut b, payload).unwrap();
    b
}

fn bench_relay(c: &mut Criterion) {
    let src = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 4000);
    let mut g = c.benchmark_group("handle_packet");
    g.throughput(Throughput::Elements(1));
    for (name, m0, m1, pt) in [
        ("passthrough", PtMap::new(), PtMap::new(), 0u8),
        ("pt_rewrite", map(&[(0, Codec::Pcmu)]), map(&[(100, Codec::Pcmu)]), 0),
        ("pcma_to_pcmu", map(&[(8, Codec::Pcma)]), map(&[(0, Codec::Pcmu)]), 8),
    ] {
        let mut r = relay_with(10_000, m0, m1);
        let pkt = rtp(pt);
        let mut buf = pkt.clone();
        let mut seq = 0u16;
        let mut now = 1u64;
        g.bench_function(name, |b| {
            b.iter(|| {
                seq = seq.wrapping_add(1);
                now += 1;
                buf[..172].copy_from_slice(&pkt[..172]);
                buf[2..4].copy_from_slice(&seq.to_be_bytes());
                let port = 10000 + (u32::from(seq) % 10_000 * 4) as u16;
                let v = r.handle_packet(now, port, src, black_box(&mut buf), 172);
                debug_assert!(matches!(v, Verdict::Forward { .. }));
                black_box(v)
            })
        });
    }
    g.finish();
}

fn bench_wire(c: &mut Criterion) {
    let pkt = rtp(0);
    let mut rtcp = vec![0u8; 256];
    let items = [SdesItem { kind: 1, text: b"user@example.com" }];
    let mut n = RtcpRepr::ReceiverReport { ssrc: 1, reports: &[Default::default(); 2] }.emit(&mut rtcp).unwrap();
    n += RtcpRepr::SourceDescription { chunks: &[SdesChunk { ssrc: 1, items: &items }] }.emit(&mut rtcp[n..]).unwrap();
    let mut g = c.benchmark_group("wire");
    g.throughput(Throughput::Elements(1));
    g.bench_function("rtp_new_checked", |b| {
        b.iter(|| RtpPacket::new_checked(black_box(&pkt[..172])).map(|p| p.sequence_number()))
    });
    g.bench_function("rtcp_validate_compound", |b| b.iter(|| validate_compound(black_box(&rtcp[..n]), true)));
    g.finish();
}

/// #18: G.729 ↔ G.711 transcoding per 20 ms packet, next to the same relay's A↔µ conversion
/// (the plain-relay baseline of the ratio in BENCHMARKS.md), in one invocation. 2 000 sessions
/// (each has its own codec contexts); 20 ms packets: 160 bytes of G.711 or 20 of G.729.
fn bench_transcode(c: &mut Criterion) {
    let src = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 4000);
    // G.729 frames as a real encoder makes them (a tone), so the decoder does its usual work.
    let mut enc = xtrunk_datapath::codec::bcg729::Encoder::new(false).unwrap();
    let mut g729 = Vec::new();
    let mut g711 = Vec::new();
    for f in 0..2 {
        let pcm: [i16; 80] = std::array::from_fn(|i| {
            let t = (f * 80 + i) as f64 / 8000.0;
            (6000.0 * (2.0 * std::f64::consts::PI * 300.0 * t).sin()) as i16
        });
        let mut bits = [0u8; 10];
        enc.encode(&pcm, &mut bits);
        g729.extend_from_slice(&bits);
        g711.extend(pcm.iter().map(|&s| xtrunk_datapath::relay::g711::alaw_compress(s)));
    }
    const N: usize = 2_000;
    let mut g = c.benchmark_group("transcode");
    g.throughput(Throughput::Elements(1));
    for (name, m0, m1, pt, payload) in [
        ("pcma_to_pcmu", map(&[(8, Codec::Pcma)]), map(&[(0, Codec::Pcmu)]), 8u8, &g711),
        ("pcma_to_g729", map(&[(8, Codec::Pcma)]), map(&[(18, Codec::G729)]), 8, &g711),
        ("g729_to_pcma", map(&[(18, Codec::G729)]), map(&[(8, Codec::Pcma)]), 18, &g729),
        // In-band DTMF detection (relay::inband) on a leg without telephone-event.
        (
            "pcma_inband_to_te",
            map(&[(8, Codec::Pcma)]),
            map(&[(8, Codec::Pcma), (101, Codec::TelephoneEvent)]),
            8,
            &g711,
        ),
    ] {
        let mut r = relay_with(N, m0, m1);
        let pkt = rtp_with(pt, payload);
        let len = 12 + payload.len();
        let mut buf = pkt.clone();
        let mut seq = 0u16;
        let mut now = 1u64;
        g.bench_function(name, |b| {
            b.iter(|| {
                seq = seq.wrapping_add(1);
                now += 1;
                buf[..len].copy_from_slice(&pkt[..len]);
                buf[2..4].copy_from_slice(&seq.to_be_bytes());
                let port = 10000 + (u32::from(seq) % N as u32 * 4) as u16;
                let v = r.handle_packet(now, port, src, black_box(&mut buf), len);
                debug_assert!(matches!(v, Verdict::Forward { .. }), "{v:?}");
                black_box(v)
            })
        });
    }
    g.finish();
}

/// #18: re-packetising 20 ms G.711 toward a leg that asked for 10 ms (each input makes two
/// packets: the verdict and one from `poll_reframed`) or 40 ms (every second input sends one),
/// next to the same 20 ms relay without re-framing, in one invocation. 2 000 sessions; each
/// session's timestamps are contiguous, so the buffers fill as in a call. Per input packet.
fn bench_reframe(c: &mut Criterion) {
    let src = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), 4000);
    const N: usize = 2_000;
    let mut g = c.benchmark_group("reframe");
    g.throughput(Throughput::Elements(1));
    let pcma = || map(&[(8, Codec::Pcma)]);
    for (name, ptimes) in [("pcma_20_to_20", (20, 20)), ("pcma_20_to_10", (20, 10)), ("pcma_20_to_40", (20, 40))] {
        let mut r = relay_ptime(N, pcma(), pcma(), ptimes);
        let pkt = rtp(8);
        let mut buf = pkt.clone();
        let mut extra = vec![0u8; 2048];
        let (mut k, mut now) = (0u64, 1u64);
        g.bench_function(name, |b| {
            b.iter(|| {
                k += 1;
                now += 1;
                buf[..172].copy_from_slice(&pkt[..172]);
                buf[2..4].copy_from_slice(&(k as u16).to_be_bytes());
                buf[4..8].copy_from_slice(&((k / N as u64) as u32 * 160).to_be_bytes());
                let port = 10000 + (k % N as u64 * 4) as u16;
                let v = r.handle_packet(now, port, src, black_box(&mut buf), 172);
                while let Some(x) = r.poll_reframed(&mut extra) {
                    black_box(x);
                }
                black_box(v)
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench_relay, bench_wire, bench_transcode, bench_reframe);
criterion_main!(benches);
