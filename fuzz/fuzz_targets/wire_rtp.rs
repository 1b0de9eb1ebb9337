//! RTP view: no panic on any input; a parsed packet re-emits byte-identically up to padding content.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xtrunk_datapath::wire::rtp::{classify, RtpPacket, RtpRepr};

fuzz_target!(|data: &[u8]| {
    let _ = classify(data);
    let Ok(p) = RtpPacket::new_checked(data) else {
        return;
    };
    let _ = (p.marker(), p.payload_type(), p.sequence_number(), p.timestamp(), p.ssrc());
    let _ = p.csrcs().count();
    let _ = p.extension_header();
    assert!(p.header_len() + p.padding_len() <= data.len());
    let repr = RtpRepr::parse(&p).expect("checked packet parses");
    let mut out = vec![0u8; repr.buffer_len(p.payload().len())];
    let n = repr.emit(&mut out, p.payload()).expect("parsed repr emits");
    assert_eq!(n, data.len());
    // Everything but the padding filler bytes must match.
    let body = data.len() - p.padding_len();
    assert_eq!(&out[..body], &data[..body]);
    assert_eq!(out.last(), data.last());
});
