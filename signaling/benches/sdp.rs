//! Cost of SDP handling as the body grows (criterion).
//!
//!     cargo bench -p xtrunk-signaling --bench sdp
//!
//! One iteration = what a call does with an offer and its answer: parse, `remote()`, the offer
//! rewrite, the answer rewrite (the offer answering itself), `negotiated`, serialization of
//! what was rewritten. A refused body (an error anywhere) counts as handled. Shapes (see
//! `common/sdp_shape.rs`): `typical` (the offer/answer of the `call` bench), `formats_x_attrs/<bytes>`
//! (half formats, half attribute lines: the shape whose cost used to grow as their product) and
//! `at_limits` (64 formats, ~1 000 attribute lines). Figures: BENCHMARKS.md (signaling section).

#![allow(missing_docs)] // criterion_group! generates an undocumented `pub fn benches`.

#[path = "common/sdp_shape.rs"]
mod sdp_shape;

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, BenchmarkId, Criterion, Throughput};
use xtrunk_signaling::sdp::{negotiated, rewrite_answer, rewrite_offer, Origin, Rewrite, Sdp};

const OFFER: &str = "v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 8 0 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\n";
const ANSWER: &str = "v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6002 RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\n";

/// Parse + remote + both rewrites + negotiated + serialization; returns bytes produced.
fn handle(offer: &[u8], answer: &[u8]) -> usize {
    let allowed = [xtrunk_config::Codec::Pcma, xtrunk_config::Codec::Pcmu, xtrunk_config::Codec::TelephoneEvent];
    let rw = Rewrite { ip: "192.0.2.1".parse().expect("ip"), port: 20_000, allowed: &allowed, srtp_off: true };
    let mut origin = Origin { id: 1, version: 0 };
    let Ok(o) = Sdp::parse(offer) else { return 0 };
    let Ok(a) = Sdp::parse(answer) else { return 0 };
    let (Ok(ro), Ok(ra)) = (o.remote(), a.remote()) else { return 0 };
    let mut n = black_box(negotiated(&ro, &ra)).payloads.len();
    if let Ok(out) = rewrite_offer(&o, &rw, &mut origin) {
        n += out.to_bytes().len();
    }
    if let Ok(out) = rewrite_answer(&a, &o, &rw, &mut origin) {
        n += out.to_bytes().len();
    }
    n
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("sdp");
    g.sample_size(10).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(3));
    g.throughput(Throughput::Bytes(OFFER.len() as u64));
    g.bench_function("typical", |b| b.iter(|| handle(black_box(OFFER.as_bytes()), black_box(ANSWER.as_bytes()))));
    for bytes in [2_500, 25_000, 250_000] {
        let s = sdp_shape::formats_by_attrs(bytes);
        g.throughput(Throughput::Bytes(s.len() as u64));
        g.bench_with_input(BenchmarkId::new("formats_x_attrs", bytes), &s, |b, s| {
            b.iter(|| handle(black_box(s.as_bytes()), black_box(s.as_bytes())))
        });
    }
    let s = sdp_shape::at_limits();
    g.throughput(Throughput::Bytes(s.len() as u64));
    g.bench_function("at_limits", |b| b.iter(|| handle(black_box(s.as_bytes()), black_box(s.as_bytes()))));
    g.finish();
}

criterion_group!(benches, bench);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
}
