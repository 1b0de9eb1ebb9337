//! #18 in-band DTMF ↔ RFC 4733 on the relay's sans-IO pieces (`relay::inband`): the tones of
//! `0123456789*#` played as audio, with speech-like sound before and after, become the right
//! digits with durations within 20 ms and RFC 4733 packets (updates, three end packets); RFC
//! 4733 events synthesised into audio come back out of the detector the same; speech-like input
//! alone gives no digit.

use xtrunk_datapath::relay::inband::{freqs, Detector, Digit, EventSender, ToneGen};
use xtrunk_datapath::wire::dtmf::DtmfRepr;

const DIGITS: [u8; 12] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];

/// The speech-like signal of the G.729 test: harmonics of a gliding pitch through two moving
/// formants, under a syllabic envelope.
fn speech_like(n: usize, seed: f64) -> Vec<i16> {
    use std::f64::consts::PI;
    let mut phase = 0.0f64;
    (0..n)
        .map(|i| {
            let t = i as f64 / 8000.0 + seed;
            let f0 = 165.0 + 55.0 * (2.0 * PI * 0.7 * t).sin();
            phase += 2.0 * PI * f0 / 8000.0;
            let f1 = 600.0 + 250.0 * (2.0 * PI * 0.9 * t).sin();
            let f2 = 1700.0 + 500.0 * (2.0 * PI * 0.6 * t).cos();
            let mut x = 0.0;
            for h in 1..=20 {
                let f = f0 * h as f64;
                if f > 3600.0 {
                    break;
                }
                let g = 1.0 / (1.0 + ((f - f1) / 150.0).powi(2)) + 0.5 / (1.0 + ((f - f2) / 200.0).powi(2));
                x += g * (h as f64 * phase).sin();
            }
            (6000.0 * (2.0 * PI * 4.0 * t).sin().abs().powf(0.7) * x) as i16
        })
        .collect()
}

fn tone(event: u8, n: usize, amp: f64) -> impl Iterator<Item = i16> {
    let (lo, hi) = freqs(event).unwrap();
    (0..n).map(move |i| {
        let t = i as f64 / 8000.0;
        let w = |f: f32| (2.0 * std::f64::consts::PI * f64::from(f) * t).sin();
        (amp * (w(lo) + w(hi))) as i16
    })
}

/// Runs the detector over `pcm` in 20 ms packets from timestamp `ts0`.
fn detect(ts0: u32, pcm: &[i16]) -> Vec<Digit> {
    let mut d = Detector::new();
    let mut out = vec![];
    for (k, chunk) in pcm.chunks(160).enumerate() {
        d.push(ts0.wrapping_add(k as u32 * 160), chunk, &mut |e| out.push(e));
    }
    d.finish(&mut |e| out.push(e));
    out
}

/// Checks `found` is exactly `want` (event, start, duration in samples), each start and duration
/// within 20 ms (160 samples).
fn check(found: &[Digit], want: &[(u8, u32, u32)]) {
    let ends: Vec<(u8, u32, u32)> = found
        .iter()
        .filter_map(|d| match *d {
            Digit::End { event, ts, duration } => Some((event, ts, duration)),
            Digit::Start { .. } => None,
        })
        .collect();
    assert_eq!(ends.len(), want.len(), "digits found: {found:?}");
    let starts = found.iter().filter(|d| matches!(d, Digit::Start { .. })).count();
    assert_eq!(starts, want.len(), "{found:?}");
    for (&(e, ts, dur), &(we, wts, wdur)) in ends.iter().zip(want) {
        assert_eq!(e, we, "{found:?}");
        let dts = (i64::from(ts) - i64::from(wts)).abs();
        let ddur = (i64::from(dur) - i64::from(wdur)).abs();
        assert!(dts <= 160 && ddur <= 160, "digit {e}: start {ts} vs {wts}, duration {dur} vs {wdur}");
    }
}

#[test]
fn tones_between_speech_become_the_right_digits() {
    // Speech, then each digit (durations 60–130 ms, level −10…−20 dBm0, gaps 50–90 ms, at odd
    // sample offsets), then speech.
    let ts0 = 0xFFFF_0000u32; // wraps during the call
    let mut pcm = speech_like(8000, 0.0);
    pcm.extend(std::iter::repeat_n(0, 400));
    let mut want = vec![];
    for (k, &d) in DIGITS.iter().enumerate() {
        let dur = 480 + 80 * (k % 6) + 13 * k;
        let amp = [3500.0, 2500.0, 1500.0][k % 3];
        want.push((d, ts0.wrapping_add(pcm.len() as u32), dur as u32));
        pcm.extend(tone(d, dur, amp));
        pcm.extend(std::iter::repeat_n(0, 400 + 37 * k));
    }
    pcm.extend(speech_like(8000, 3.0));
    let found = detect(ts0, &pcm);
    check(&found, &want);
    let errs: Vec<i64> = found
        .iter()
        .filter_map(|d| if let Digit::End { duration, .. } = d { Some(i64::from(*duration)) } else { None })
        .zip(&want)
        .map(|(d, w)| (d - i64::from(w.2)) / 8)
        .collect();
    eprintln!("duration errors (ms): {errs:?}");
}

#[test]
fn speech_alone_gives_no_digit() {
    for seed in [0.0, 1.7, 5.3] {
        let found = detect(0, &speech_like(8000 * 5, seed));
        assert!(found.is_empty(), "false digits on speech (seed {seed}): {found:?}");
    }
    // Noise (a fixed-seed generator) and single tones neither.
    let mut x = 1u32;
    let noise: Vec<i16> = (0..40_000)
        .map(|_| {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            ((x >> 16) as i16) / 4
        })
        .collect();
    assert!(detect(0, &noise).is_empty());
    let single: Vec<i16> =
        (0..8000).map(|i| (8000.0 * (2.0 * std::f64::consts::PI * 770.0 * i as f64 / 8000.0).sin()) as i16).collect();
    assert!(detect(0, &single).is_empty());
}

#[test]
fn detected_digits_become_rfc4733_packets_with_three_ends() {
    let mut pcm = vec![0i16; 800];
    pcm.extend(tone(5, 800, 3000.0));
    pcm.extend(vec![0; 800]);
    let mut d = Detector::new();
    let mut tx = EventSender::default();
    let mut packets = vec![];
    for (k, chunk) in pcm.chunks(160).enumerate() {
        let ts = k as u32 * 160;
        d.push(ts, chunk, &mut |e| tx.on_digit(e));
        if let Some(p) = tx.next_packet(ts + 160) {
            packets.push(p);
        }
    }
    assert!(packets[0].marker && !packets[0].repr.end);
    assert!(packets.iter().all(|p| p.repr.event == 5 && p.ts == packets[0].ts));
    let ends: Vec<_> = packets.iter().filter(|p| p.repr.end).collect();
    assert_eq!(ends.len(), 3, "{packets:?}");
    assert!(ends.iter().all(|p| p.repr.duration == ends[0].repr.duration));
    assert!((i32::from(ends[0].repr.duration) - 800).abs() <= 160, "{:?}", ends[0]);
    assert!((i64::from(packets[0].ts) - 800).abs() <= 160);
    // Durations grow until the end.
    assert!(packets.windows(2).all(|w| w[1].repr.duration >= w[0].repr.duration));
}

#[test]
fn rfc4733_events_synthesised_into_audio_are_detected_back() {
    // A sender's events for every digit: 20 ms updates, three end packets; the receiving side
    // plays them into its 20 ms audio packets.
    let mut gen = ToneGen::default();
    let mut pcm = vec![];
    let mut want = vec![];
    let mut ts = 0u32;
    let frame = |gen: &mut ToneGen, pcm: &mut Vec<i16>, ts: &mut u32| {
        let mut f = [0i16; 160];
        gen.fill(&mut f);
        pcm.extend_from_slice(&f);
        *ts += 160;
    };
    for _ in 0..10 {
        frame(&mut gen, &mut pcm, &mut ts);
    }
    for (k, &d) in DIGITS.iter().enumerate() {
        let start = ts;
        let packets = 4 + k % 4; // 80–140 ms
        for p in 1..=packets {
            gen.on_event(
                start,
                &DtmfRepr { event: d, end: false, volume: 10 + k as u8 % 3 * 4, duration: 160 * p as u16 },
            );
            frame(&mut gen, &mut pcm, &mut ts);
        }
        for _ in 0..3 {
            gen.on_event(start, &DtmfRepr { event: d, end: true, volume: 10, duration: 160 * packets as u16 });
            frame(&mut gen, &mut pcm, &mut ts);
        }
        // The tone played from the first update's packet on.
        want.push((d, start, 160 * packets as u32));
        for _ in 0..4 {
            frame(&mut gen, &mut pcm, &mut ts);
        }
    }
    check(&detect(0, &pcm), &want);
}

mod through_the_relay {
    //! The same through `Relay::handle_packet`: leg 0 (PCMU, no telephone-event: in-band),
    //! leg 1 (PCMA + telephone-event 101).
    use super::*;
    use std::net::{IpAddr, Ipv4Addr, SocketAddr};
    use xtrunk_datapath::relay::{g711, DropReason, Relay, RelayConfig, Verdict};
    use xtrunk_datapath::wire::dtmf::DtmfPayload;
    use xtrunk_datapath::wire::rtp::{RtpPacket, RtpRepr, MAX_CSRC};
    use xtrunk_ring::msg::{
        Codec, Command, Event, LatchPolicy, LegCrypto, LegSpec, PtEntry, PtMap, SessionId, SessionSpec,
    };

    const IP: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    const A: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(198, 51, 100, 10)), 4000);
    const B: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(203, 0, 113, 20)), 6000);

    fn relay() -> Relay {
        let map = |l: &[(u8, Codec)]| {
            let mut m = PtMap::new();
            for &(pt, codec) in l {
                m.push(PtEntry { pt, codec });
            }
            m
        };
        let leg = |port, remote, pt_map| LegSpec {
            local: SocketAddr::new(IP, port),
            remote: Some(remote),
            remote_rtcp_port: 0,
            rtcp_mux: false,
            latch: LatchPolicy::Strict,
            signal_ip: None,
            pt_map,
            crypto: LegCrypto::default(),
            ptime_ms: 0,
        };
        let mut r = Relay::new(RelayConfig { port_min: 10000, port_max: 10999, max_sessions: 2 });
        let spec = SessionSpec {
            id: SessionId(1),
            legs: [
                leg(10000, A, map(&[(0, Codec::Pcmu)])),
                leg(10002, B, map(&[(8, Codec::Pcma), (101, Codec::TelephoneEvent)])),
            ],
            media_timeout_ms: 0,
            leg_timeout_ms: [0; 2],
            allow_fast_path: true,
        };
        r.apply(0, &Command::Create(spec), &mut |_| {});
        assert!(r.fast_path_rule(10000).is_none() && r.fast_path_rule(10002).is_none());
        r
    }

    fn rtp(pt: u8, seq: u16, ts: u32, payload: &[u8]) -> Vec<u8> {
        let r = RtpRepr {
            marker: false,
            payload_type: pt,
            sequence_number: seq,
            timestamp: ts,
            ssrc: 9,
            csrc_count: 0,
            csrcs: [0; MAX_CSRC],
            extension: None,
            padding: 0,
        };
        let mut b = vec![0u8; 2048];
        r.emit(&mut b, payload).unwrap();
        b
    }

    #[test]
    fn inband_tones_arrive_as_rfc4733_events() {
        let mut r = relay();
        let mut pcm = speech_like(4000, 0.0);
        let mut want = vec![];
        for (k, &d) in DIGITS.iter().enumerate() {
            pcm.extend(std::iter::repeat_n(0, 400 + 29 * k));
            want.push((d, pcm.len() as u32, 640 + 40 * (k as u32 % 4)));
            pcm.extend(tone(d, 640 + 40 * (k % 4), 3000.0));
        }
        pcm.extend(std::iter::repeat_n(0, 400));
        pcm.extend(speech_like(4000, 2.0));
        // (event, ts, duration, end) of every event packet, in order.
        let mut events = vec![];
        for (seq, chunk) in pcm.chunks_exact(160).enumerate() {
            let ts = seq as u32 * 160;
            let payload: Vec<u8> = chunk.iter().map(|&s| g711::ulaw_compress(s)).collect();
            let mut pkt = rtp(0, seq as u16, ts, &payload);
            let v = r.handle_packet(seq as u64 * 20, 10000, A, &mut pkt, 172);
            let Verdict::Forward { len, to, .. } = v else { panic!("{v:?}") };
            assert_eq!(to, B);
            let p = RtpPacket::new_checked(&pkt[..len]).unwrap();
            assert_eq!(p.sequence_number(), seq as u16, "the stream's numbering is kept");
            match p.payload_type() {
                101 => {
                    let e = DtmfRepr::parse(&DtmfPayload::new_checked(p.payload()).unwrap()).unwrap();
                    events.push((e.event, p.timestamp(), u32::from(e.duration), e.end));
                }
                pt => assert_eq!((pt, len), (8, 172)),
            }
        }
        let ends: Vec<_> = events.iter().filter(|e| e.3).collect();
        assert_eq!(ends.len(), 3 * DIGITS.len(), "three end packets per digit: {events:?}");
        // The sidecar hears of each digit's start and end (Event::Dtmf, from poll_timeouts).
        let mut reported = vec![];
        r.poll_timeouts(1_000_000, &mut |e| {
            if let Event::Dtmf { id, leg, event, end, duration_ms } = e {
                assert_eq!((id, leg), (SessionId(1), 0));
                reported.push((event, end, duration_ms));
            }
        });
        assert_eq!(reported.len(), 2 * DIGITS.len(), "{reported:?}");
        for (k, &(d, _, dur)) in want.iter().enumerate() {
            assert_eq!(reported[2 * k], (d, false, 0));
            let (e, end, ms) = reported[2 * k + 1];
            assert!(e == d && end && (i64::from(ms) - i64::from(dur / 8)).abs() <= 20, "{:?}", reported[2 * k + 1]);
        }
        for (k, &(d, ts, dur)) in want.iter().enumerate() {
            let e = ends[3 * k];
            assert!(ends[3 * k..3 * k + 3].iter().all(|x| *x == e), "{:?}", &ends[3 * k..3 * k + 3]);
            assert_eq!(e.0, d);
            assert!((i64::from(e.1) - i64::from(ts)).abs() <= 160, "digit {d}: ts {} vs {ts}", e.1);
            assert!((i64::from(e.2) - i64::from(dur)).abs() <= 160, "digit {d}: duration {} vs {dur}", e.2);
        }
    }

    #[test]
    fn rfc4733_events_arrive_as_inband_tones() {
        let mut r = relay();
        let mut out = vec![];
        let mut want = vec![];
        let mut seq = 0u16;
        let mut send = |r: &mut Relay, pt: u8, ts: u32, payload: &[u8], out: &mut Vec<i16>| {
            let mut pkt = rtp(pt, seq, ts, payload);
            seq = seq.wrapping_add(1);
            match r.handle_packet(u64::from(seq) * 20, 10002, B, &mut pkt, 12 + payload.len()) {
                Verdict::Forward { len, to, .. } => {
                    assert_eq!(to, A);
                    let p = RtpPacket::new_checked(&pkt[..len]).unwrap();
                    assert_eq!(p.payload_type(), 0);
                    out.extend(p.payload().iter().map(|&b| g711::ulaw_expand(b)));
                }
                v => assert_eq!(v, Verdict::Drop(DropReason::DtmfToInband)),
            }
        };
        let silence = [0xD5u8; 160];
        let mut ts = 0u32;
        for _ in 0..10 {
            send(&mut r, 8, ts, &silence, &mut out);
            ts += 160;
        }
        for (k, &d) in DIGITS.iter().enumerate() {
            let start = ts;
            let n = 4 + k % 3;
            // A carrier sends each event packet alongside its 20 ms audio packets.
            for p in 1..=n {
                let mut e = [0u8; 4];
                DtmfRepr { event: d, end: false, volume: 10, duration: 160 * p as u16 }.emit(&mut e).unwrap();
                send(&mut r, 101, start, &e, &mut out);
                send(&mut r, 8, ts, &silence, &mut out);
                ts += 160;
            }
            for _ in 0..3 {
                let mut e = [0u8; 4];
                DtmfRepr { event: d, end: true, volume: 10, duration: 160 * n as u16 }.emit(&mut e).unwrap();
                send(&mut r, 101, start, &e, &mut out);
            }
            want.push((d, start, 160 * n as u32));
            for _ in 0..5 {
                send(&mut r, 8, ts, &silence, &mut out);
                ts += 160;
            }
        }
        check(&detect(0, &out), &want);
    }
}
