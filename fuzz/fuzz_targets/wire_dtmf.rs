//! RFC 4733 payload: no panic; round trip of the first event.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xtrunk_datapath::wire::dtmf::{DtmfPayload, DtmfRepr};

fuzz_target!(|data: &[u8]| {
    let Ok(p) = DtmfPayload::new_checked(data) else {
        return;
    };
    let r = DtmfRepr::parse(&p).unwrap();
    let mut out = [0u8; 4];
    r.emit(&mut out).unwrap();
    // Byte 1 bit 6 is reserved: emit writes it as zero.
    assert_eq!([out[0], out[1], out[2], out[3]], [data[0], data[1] & 0xBF, data[2], data[3]]);
    assert_eq!(p.event_count(), data.len() / 4);
});
