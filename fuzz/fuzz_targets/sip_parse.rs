//! SIP parser: any bytes → a message or a ParseError, never a panic; a parsed message
//! re-serializes to something that parses to the same message (modulo Content-Length).
#![no_main]
use libfuzzer_sys::fuzz_target;
use xtrunk_signaling::sip::msg::{frame_len, parse, CSeq, NameAddr, Uri, Via};

fuzz_target!(|data: &[u8]| {
    let _ = frame_len(data, 65_535);
    if let Ok(m) = parse(data) {
        let again = parse(&m.to_bytes()).expect("serialized message must parse");
        assert_eq!(again.start, m.start);
        assert_eq!(again.body, m.body);
        for h in &m.headers {
            let _ = Via::parse(&h.value);
            let _ = NameAddr::parse(&h.value);
            let _ = CSeq::parse(&h.value);
            let _ = Uri::parse(&h.value);
        }
        let _ = xtrunk_signaling::b2bua::preflight(&m);
    }
});
