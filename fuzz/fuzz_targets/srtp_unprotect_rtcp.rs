//! Fuzz SRTCP unprotect (see `common/srtp.rs` for what must hold).
#![no_main]

use libfuzzer_sys::fuzz_target;
use xtrunk_srtp::SrtpContext;

#[path = "common/srtp.rs"]
mod srtp;

fuzz_target!(|data: &[u8]| {
    srtp::check(data, 0x24, 0x71, SrtpContext::protect_rtcp, SrtpContext::unprotect_rtcp);
});
