//! RTCP compound iteration and every typed accessor: no panic on any input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xtrunk_datapath::wire::rtcp::{validate_compound, CompoundIter};

fuzz_target!(|data: &[u8]| {
    let strict = validate_compound(data, true);
    let lax = validate_compound(data, false);
    if strict.is_ok() {
        assert_eq!(strict, lax);
    }
    let mut total = 0;
    for p in CompoundIter::new(data) {
        let Ok(p) = p else { break };
        total += p.packet_len();
        let _ = (p.ssrc(), p.sender_info(), p.bye_reason(), p.app_name(), p.app_data(), p.body());
        let _ = p.report_blocks().count();
        let _ = p.bye_ssrcs().count();
        p.for_each_sdes_item(|_, i| assert!(i.kind != 0));
    }
    if lax.is_ok() {
        assert_eq!(total, data.len());
    }
});
