//! Digest credentials parser (`Authorization` / `Proxy-Authorization`): any bytes → credentials
//! or a DigestError, never a panic; parsed credentials hash without panicking; a challenge
//! value parses too.
#![no_main]
use libfuzzer_sys::fuzz_target;
use xtrunk_signaling::auth::digest::{Challenge, Credentials};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Ok(c) = Credentials::parse(s) {
        assert!(c.response.len() == c.algorithm.hex_len());
        let _ = c.expected("00000000000000000000000000000000", "INVITE");
    }
    let _ = Challenge::parse(s);
});
