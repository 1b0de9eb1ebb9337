//! SDP cost grows with the body, not with formats × attribute lines (issue #11, "SDP cost").
//!
//! Timing is compared within one test, as a ratio: a body ten times larger of the same shape
//! must cost less than 20 times as much (the old per-format scans of every attribute line made
//! it ~60–100 times). The bench (`cargo bench -p xtrunk-signaling --bench sdp`) gives figures.

#[path = "../benches/common/sdp_shape.rs"]
mod sdp_shape;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use xtrunk_signaling::sdp::{negotiated, rewrite_answer, rewrite_offer, Origin, Rewrite, Sdp, SdpError, SdpLimits};
use xtrunk_signaling::sip::msg::Method;
use xtrunk_signaling::testing::{Pair, Record};

const ALLOWED: [xtrunk_config::Codec; 3] =
    [xtrunk_config::Codec::Pcma, xtrunk_config::Codec::Pcmu, xtrunk_config::Codec::TelephoneEvent];

const UNBOUNDED: SdpLimits =
    SdpLimits { formats: usize::MAX, media_lines: usize::MAX, session_lines: usize::MAX, media: usize::MAX };

/// Parse, `remote()`, `negotiated`, both rewrites, serialization: what a call does with an offer
/// (answered by itself). Returns the rewritten offer's text.
fn handle(body: &[u8], limits: &SdpLimits) -> Result<String, SdpError> {
    let rw = Rewrite { ip: "192.0.2.1".parse().unwrap(), port: 20_000, allowed: &ALLOWED, srtp_off: true };
    let mut origin = Origin { id: 1, version: 0 };
    let o = Sdp::parse_with(body, limits)?;
    let r = o.remote()?;
    assert_eq!(negotiated(&r, &r).payloads.len(), r.payloads.len());
    let offer = rewrite_offer(&o, &rw, &mut origin)?;
    let answer = rewrite_answer(&o, &o, &rw, &mut origin)?;
    assert!(!answer.to_bytes().is_empty());
    Ok(offer.to_text())
}

/// The fastest of `n` runs of `f`.
fn best_of(n: usize, mut f: impl FnMut()) -> Duration {
    (0..n)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .min()
        .unwrap()
}

fn ratio(small: &str, big: &str, limits: &SdpLimits) -> f64 {
    let _ = handle(small.as_bytes(), limits); // warm up
    let ts = best_of(9, || drop(handle(small.as_bytes(), limits)));
    let tb = best_of(5, || drop(handle(big.as_bytes(), limits)));
    let r = tb.as_secs_f64() / ts.as_secs_f64().max(1e-9);
    eprintln!("{} B: {ts:?}, {} B: {tb:?}, ratio {r:.1}", small.len(), big.len());
    r
}

#[test]
fn cost_is_linear_in_the_body() {
    let (small, big) = (sdp_shape::formats_by_attrs(25_000), sdp_shape::formats_by_attrs(250_000));
    assert!(big.len() > 240_000 && small.len() > 24_000, "{} {}", big.len(), small.len());
    // Kept whole (no bounds), the result is the normal one...
    let text = handle(big.as_bytes(), &UNBOUNDED).unwrap();
    assert!(text.contains("m=audio 20000 RTP/AVP 8 0 101\r\n"), "{text}");
    assert!(text.contains("a=fmtp:101 0-15\r\n") && text.contains("a=ptime:20\r\n"), "{text}");
    // ...and ten times the body costs about ten times as much.
    let r = ratio(&small, &big, &UNBOUNDED);
    assert!(r < 20.0, "250 KB / 25 KB cost ratio {r:.1} (linear ≈ 10, formats × attributes ≈ 100)");
}

#[test]
fn oversized_sections_are_refused_early() {
    let (small, big) = (sdp_shape::formats_by_attrs(25_000), sdp_shape::formats_by_attrs(250_000));
    let e = SdpError::TooLarge { what: "formats on an m= line", limit: 64 };
    assert_eq!(Sdp::parse(big.as_bytes()), Err(e));
    assert_eq!(e.to_string(), "SDP too large: more than 64 formats on an m= line");
    assert_eq!(e.status(), (488, "Not Acceptable Here"));
    let r = ratio(&small, &big, &SdpLimits::DEFAULT);
    assert!(r < 20.0, "refusal cost ratio {r:.1}");
    // The largest shape within the bounds is handled normally.
    let text = handle(sdp_shape::at_limits().as_bytes(), &SdpLimits::DEFAULT).unwrap();
    assert!(text.contains("m=audio 20000 RTP/AVP 8 0 101\r\n"), "{text}");
}

#[test]
fn each_bound_is_named() {
    let head = "v=0\r\nc=IN IP4 10.0.0.1\r\n";
    let lim = SdpLimits { formats: 2, media_lines: 2, session_lines: 3, media: 2 };
    let ok = format!("{head}t=0 0\r\nm=audio 1 RTP/AVP 0 8\r\na=x\r\na=y\r\nm=video 0 RTP/AVP 31\r\n");
    assert!(Sdp::parse_with(ok.as_bytes(), &lim).is_ok());
    for (body, what) in [
        (format!("{head}m=audio 1 RTP/AVP 0 8 9\r\n"), "formats on an m= line"),
        (format!("{head}m=audio 1 RTP/AVP 0\r\na=x\r\na=y\r\na=z\r\n"), "lines in a media section"),
        (format!("{head}t=0 0\r\ns=-\r\n"), "session-level lines"),
        (format!("{head}m=audio 1 RTP/AVP 0\r\nm=audio 1 RTP/AVP 0\r\nm=audio 1 RTP/AVP 0\r\n"), "media sections"),
    ] {
        let limit = if what == "session-level lines" { 3 } else { 2 };
        assert_eq!(Sdp::parse_with(body.as_bytes(), &lim), Err(SdpError::TooLarge { what, limit }), "{body}");
    }
}

/// A 250 KB offer through the whole core (as if over TCP with `max_message_bytes` raised):
/// refused without a call toward the carrier.
#[test]
fn b2bua_refuses_an_oversized_offer() {
    let mut cfg = xtrunk_config::Config::embedded_default().unwrap();
    cfg.sip.max_message_bytes = 1_048_576;
    let local: SocketAddr = "127.0.0.1:5060".parse().unwrap();
    let pbx: SocketAddr = "127.0.0.1:5062".parse().unwrap();
    let carrier = cfg.trunks[1].targets[0].addr;
    let mut p = Pair::new(&cfg, local, 1);
    p.record = Record::Transmissions;
    let body = sdp_shape::formats_by_attrs(250_000);
    let invite = format!(
        "INVITE sip:49301@127.0.0.1:5060 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5062;branch=z9hG4bK-big\r\nFrom: <sip:pbx@127.0.0.1:5062>;tag=a\r\nTo: <sip:49301@127.0.0.1:5060>\r\nCall-ID: big@127.0.0.1\r\nCSeq: 1 INVITE\r\nContact: <sip:pbx@127.0.0.1:5062>\r\nMax-Forwards: 70\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    p.input(pbx, invite.as_bytes());
    // 400 "Bad SDP" today (the setup path maps every parse error to it); 488 once it uses the error's status.
    let r = p.take(pbx, |m| m.code().is_some_and(|c| c >= 300));
    assert!(matches!(r.code(), Some(400 | 488)), "{:?}", r.code());
    assert!(p.try_take(carrier, |m| m.method() == Some(&Method::Invite)).is_none());
}
