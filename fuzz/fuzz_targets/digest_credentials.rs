//! Digest credentials parser (`Authorization` / `Proxy-Authorization`): any bytes → credentials
//! or a DigestError, never a panic; parsed credentials hash without panicking; a challenge
//! value parses too, on the server's side and on the client's (`auth::client::Offer`, the
//! carrier's challenge to our REGISTER/INVITE), and an answer to a parsed offer is built.
#![no_main]
use libfuzzer_sys::fuzz_target;
use xtrunk_signaling::auth::client::{answer, Creds, Offer};
use xtrunk_signaling::auth::digest::{Challenge, Credentials, DigestError};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Ok(c) = Credentials::parse(s) {
        assert!(c.response.len() == c.algorithm.hex_len());
        let _ = c.expected("00000000000000000000000000000000", "INVITE");
    }
    let _ = Challenge::parse(s);
    if let Ok(o) = Offer::parse(s) {
        let v = answer(&o, Creds { username: "u", password: "p" }, ("REGISTER", "sip:h"), 1, "c");
        // What we send must parse as credentials again (quoting and escaping survive).
        assert!(matches!(Credentials::parse(&v), Ok(_) | Err(DigestError::TooLong)), "{v}");
    }
});
