//! SDP parser and offer/answer rewrite: never a panic; rewrites of a parsed SDP parse again.
#![no_main]
use libfuzzer_sys::fuzz_target;
use xtrunk_signaling::sdp::{rewrite_answer, rewrite_offer, Origin, Rewrite, Sdp};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = Sdp::parse(data) else { return };
    let _ = s.remote();
    let allowed = vec![
        xtrunk_config::Codec::Pcma,
        xtrunk_config::Codec::Pcmu,
        xtrunk_config::Codec::G722,
        xtrunk_config::Codec::TelephoneEvent,
    ];
    let rw = Rewrite { ip: "192.0.2.1".parse().unwrap(), port: 20_000, allowed: &allowed, srtp_off: true };
    let mut o = Origin { id: 1, version: 0 };
    if let Ok(offer) = rewrite_offer(&s, &rw, &mut o) {
        let back = Sdp::parse(&offer.to_bytes()).expect("rewritten offer must parse");
        let _ = rewrite_answer(&back, &s, &rw, &mut o);
    }
    let _ = rewrite_answer(&s, &s, &rw, &mut o);
});
