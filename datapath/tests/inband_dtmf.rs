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
    pcm.extend(std::iter::repeat(0).take(400));
    let mut want = vec![];
    for (k, &d) in DIGITS.iter().enumerate() {
        let dur = 480 + 80 * (k % 6) + 13 * k;
        let amp = [3500.0, 2500.0, 1500.0][k % 3];
        want.push((d, ts0.wrapping_add(pcm.len() as u32), dur as u32));
        pcm.extend(tone(d, dur, amp));
        pcm.extend(std::iter::repeat(0).take(400 + 37 * k));
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
