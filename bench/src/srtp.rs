//! `xtrunk-bench srtp`: SRTP cost per packet, xtrunk vs libsrtp2.
//!
//! For each suite, each round protects `--iterations` RTP packets (12-byte header +
//! `--payload` bytes, default 160 = 20 ms of G.711) with an xtrunk context and with a
//! libsrtp2 session, then unprotects them with a receiving context/session of the same
//! implementation. Packets go through in chunks of [`CHUNK`] so the working set stays
//! in cache; sequence numbers run on across chunks and rounds (the ROC advances).
//! xtrunk and libsrtp2 alternate within every round (the order flips each round), and
//! the median over rounds is reported. The packet fill (copying the template, setting
//! the sequence number) is outside the timed loops.

use std::hint::black_box;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use xtrunk_srtp::libsrtp2::{self, Direction, HEADROOM};
use xtrunk_srtp::{SrtpContext, Suite};

/// Arguments of `xtrunk-bench srtp`.
#[derive(clap::Args, Debug)]
pub(crate) struct SrtpArgs {
    /// Print one JSON object as the last line.
    #[arg(long)]
    json: bool,
    /// Packets per round, per implementation and suite.
    #[arg(long, default_value_t = 200_000)]
    iterations: usize,
    /// Rounds; xtrunk and libsrtp2 alternate within each, the median is reported.
    #[arg(long, default_value_t = 7)]
    rounds: usize,
    /// RTP payload bytes (160 = 20 ms of G.711).
    #[arg(long, default_value_t = 160)]
    payload: usize,
    /// Suites to run, as SDES names, comma separated (default: all four).
    #[arg(long, value_delimiter = ',')]
    suites: Vec<String>,
}

/// Packets per timed chunk.
const CHUNK: usize = 512;
const HEADER: usize = 12;
const SSRC: u32 = 0x5eed_cafe;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Impl {
    Xtrunk,
    Libsrtp2,
}

impl Impl {
    fn name(self) -> &'static str {
        match self {
            Impl::Xtrunk => "xtrunk",
            Impl::Libsrtp2 => "libsrtp2",
        }
    }
}

/// The two ends of one implementation.
enum Pair {
    Xtrunk(Box<SrtpContext>, Box<SrtpContext>),
    Libsrtp2(libsrtp2::Session, libsrtp2::Session),
}

impl Pair {
    fn new(imp: Impl, suite: Suite) -> anyhow::Result<Self> {
        let key: Vec<u8> = (0..suite.key_len()).map(|i| (i as u8).wrapping_mul(29) ^ 0x5a).collect();
        let salt: Vec<u8> = (0..suite.salt_len()).map(|i| (i as u8).wrapping_mul(53) ^ 0xa5).collect();
        Ok(match imp {
            Impl::Xtrunk => Pair::Xtrunk(
                Box::new(SrtpContext::new(suite, &key, &salt)?),
                Box::new(SrtpContext::new(suite, &key, &salt)?),
            ),
            Impl::Libsrtp2 => Pair::Libsrtp2(
                libsrtp2::Session::new(suite, &key, &salt, Direction::Outbound)
                    .with_context(|| format!("libsrtp2 {suite} outbound session"))?,
                libsrtp2::Session::new(suite, &key, &salt, Direction::Inbound)
                    .with_context(|| format!("libsrtp2 {suite} inbound session"))?,
            ),
        })
    }
}

/// Packet buffers of one chunk.
struct Chunk {
    slot: usize,
    plain_len: usize,
    bufs: Vec<u8>,
    lens: Vec<usize>,
    template: Vec<u8>,
}

impl Chunk {
    fn new(payload: usize) -> Self {
        let plain_len = HEADER + payload;
        // room for libsrtp2's worst-case trailer, rounded to a cache line
        let slot = (plain_len + HEADROOM).div_ceil(64) * 64;
        let mut template = vec![0x80, 0x00, 0, 0, 0, 0, 0, 0];
        template.extend_from_slice(&SSRC.to_be_bytes());
        template.extend((0..payload).map(|i| 0xd5 ^ i as u8)); // G.711 A-law silence-ish
        Chunk { slot, plain_len, bufs: vec![0; slot * CHUNK], lens: vec![0; CHUNK], template }
    }

    fn fill(&mut self, first_seq: u16) {
        for (i, b) in self.bufs.chunks_exact_mut(self.slot).enumerate() {
            let seq = first_seq.wrapping_add(i as u16);
            b[..self.plain_len].copy_from_slice(&self.template);
            b[2..4].copy_from_slice(&seq.to_be_bytes());
            b[4..8].copy_from_slice(&(u32::from(seq) * 160).to_be_bytes());
        }
    }
}

/// Nanoseconds spent in protect and in unprotect for `iterations` packets.
fn run_round(
    pair: &mut Pair,
    chunk: &mut Chunk,
    seq: &mut u16,
    iterations: usize,
) -> anyhow::Result<(Duration, Duration)> {
    let mut t_protect = Duration::ZERO;
    let mut t_unprotect = Duration::ZERO;
    let mut done = 0;
    let (slot, plain_len) = (chunk.slot, chunk.plain_len);
    while done < iterations {
        chunk.fill(*seq);
        *seq = seq.wrapping_add(CHUNK as u16);
        let n = CHUNK.min(iterations - done);
        let bufs = &mut chunk.bufs;
        let lens = &mut chunk.lens;

        let t0 = Instant::now();
        match pair {
            Pair::Xtrunk(tx, _) => {
                for (b, l) in bufs.chunks_exact_mut(slot).zip(lens.iter_mut()).take(n) {
                    *l = tx.protect_rtp(black_box(b), plain_len)?;
                }
            }
            Pair::Libsrtp2(tx, _) => {
                for (b, l) in bufs.chunks_exact_mut(slot).zip(lens.iter_mut()).take(n) {
                    *l = tx.protect_rtp(black_box(b), plain_len)?;
                }
            }
        }
        let t1 = Instant::now();
        match pair {
            Pair::Xtrunk(_, rx) => {
                for (b, l) in bufs.chunks_exact_mut(slot).zip(lens.iter_mut()).take(n) {
                    *l = rx.unprotect_rtp(black_box(&mut b[..*l]))?;
                }
            }
            Pair::Libsrtp2(_, rx) => {
                for (b, l) in bufs.chunks_exact_mut(slot).zip(lens.iter_mut()).take(n) {
                    *l = rx.unprotect_rtp(black_box(&mut b[..*l]))?;
                }
            }
        }
        let t2 = Instant::now();
        t_protect += t1 - t0;
        t_unprotect += t2 - t1;
        // sanity, untimed: the round trip gave the plaintext back
        ensure!(lens[..n].iter().all(|&l| l == plain_len), "unprotect returned a wrong length");
        ensure!(bufs[HEADER..plain_len] == chunk.template[HEADER..], "round trip changed the payload");
        done += n;
    }
    Ok((t_protect, t_unprotect))
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// Medians of one implementation for one suite: ns per packet.
#[derive(Clone, Copy)]
struct Figures {
    protect_ns: f64,
    unprotect_ns: f64,
}

impl Figures {
    fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "protect_ns": round2(self.protect_ns),
            "unprotect_ns": round2(self.unprotect_ns),
            "protect_mpps": round2(1e3 / self.protect_ns),
            "unprotect_mpps": round2(1e3 / self.unprotect_ns),
        })
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Runs the SRTP benchmark.
pub(crate) fn run(args: SrtpArgs) -> anyhow::Result<()> {
    ensure!(args.iterations > 0 && args.rounds > 0, "--iterations and --rounds must be > 0");
    ensure!(args.payload <= 1400, "--payload at most 1400 bytes");
    let suites: Vec<Suite> = if args.suites.is_empty() {
        vec![Suite::AesCm128HmacSha1_80, Suite::AesCm128HmacSha1_32, Suite::AeadAes128Gcm, Suite::AeadAes256Gcm]
    } else {
        args.suites
            .iter()
            .map(|n| Suite::from_sdes_name(n).with_context(|| format!("unknown suite {n}")))
            .collect::<anyhow::Result<_>>()?
    };

    let mut results = Vec::new();
    for &suite in &suites {
        let mut chunk = Chunk::new(args.payload);
        let imps = [Impl::Xtrunk, Impl::Libsrtp2];
        let mut pairs = [Pair::new(Impl::Xtrunk, suite)?, Pair::new(Impl::Libsrtp2, suite)?];
        let mut seqs = [60_000u16; 2];
        // warm-up: one small round each (page faults, CPU feature detection)
        for (i, p) in pairs.iter_mut().enumerate() {
            run_round(p, &mut chunk, &mut seqs[i], CHUNK * 4)?;
        }
        let mut samples = [[Vec::new(), Vec::new()], [Vec::new(), Vec::new()]];
        for round in 0..args.rounds {
            let order: [usize; 2] = if round % 2 == 0 { [0, 1] } else { [1, 0] };
            for i in order {
                let (p, u) = run_round(&mut pairs[i], &mut chunk, &mut seqs[i], args.iterations)
                    .with_context(|| format!("{} {suite}", imps[i].name()))?;
                let n = args.iterations as f64;
                samples[i][0].push(p.as_nanos() as f64 / n);
                samples[i][1].push(u.as_nanos() as f64 / n);
            }
        }
        let fig = |i: usize, s: &mut [[Vec<f64>; 2]; 2]| Figures {
            protect_ns: median(&mut s[i][0]),
            unprotect_ns: median(&mut s[i][1]),
        };
        let x = fig(0, &mut samples);
        let l = fig(1, &mut samples);
        results.push((suite, x, l));
    }

    println!(
        "SRTP per packet: {} B RTP ({} B payload), {} packets x {} rounds, median",
        HEADER + args.payload,
        args.payload,
        args.iterations,
        args.rounds
    );
    println!(
        "{:<24} {:<9} {:>11} {:>8} {:>13} {:>8} {:>7}",
        "suite", "impl", "protect ns", "Mpkt/s", "unprotect ns", "Mpkt/s", "ratio"
    );
    let mut json_suites = serde_json::Map::new();
    let mut headline = None;
    for (suite, x, l) in &results {
        let ratio = (l.protect_ns + l.unprotect_ns) / (x.protect_ns + x.unprotect_ns);
        for (imp, f) in [(Impl::Xtrunk, x), (Impl::Libsrtp2, l)] {
            println!(
                "{:<24} {:<9} {:>11.1} {:>8.2} {:>13.1} {:>8.2} {:>7}",
                if imp == Impl::Xtrunk { suite.sdes_name() } else { "" },
                imp.name(),
                f.protect_ns,
                1e3 / f.protect_ns,
                f.unprotect_ns,
                1e3 / f.unprotect_ns,
                if imp == Impl::Xtrunk { format!("{ratio:.2}") } else { String::new() },
            );
        }
        json_suites.insert(
            suite.sdes_name().to_string(),
            serde_json::json!({
                "xtrunk": x.json(),
                "libsrtp2": l.json(),
                "ratio_to_libsrtp": round2(ratio),
            }),
        );
        if *suite == Suite::AesCm128HmacSha1_80 {
            headline = Some(ratio);
        }
    }
    println!("ratio = libsrtp2 (protect+unprotect) time / xtrunk time; > 1 means xtrunk is faster");
    if args.json {
        let obj = serde_json::json!({
            "mode": "srtp",
            "packet_bytes": HEADER + args.payload,
            "payload_bytes": args.payload,
            "iterations": args.iterations,
            "rounds": args.rounds,
            "suites": json_suites,
            "ratio_to_libsrtp": headline.map(round2),
        });
        println!("{obj}");
    }
    if headline.is_none() && args.suites.is_empty() {
        bail!("AES_CM_128_HMAC_SHA1_80 did not run");
    }
    Ok(())
}
