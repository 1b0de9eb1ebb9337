//! Fuzz SRTP unprotect (see `common/srtp.rs` for what must hold).
#![no_main]

use libfuzzer_sys::fuzz_target;
use xtrunk_srtp::SrtpContext;

#[path = "common/srtp.rs"]
mod srtp;

fuzz_target!(|data: &[u8]| {
    srtp::check(data, 0x42, 0x17, SrtpContext::protect_rtp, SrtpContext::unprotect_rtp);
});
