//! Fuzz SRTP unprotect: arbitrary bytes must never panic, and any input that protect
//! accepts must round-trip exactly and refuse a replay.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xtrunk_srtp::{Error, SrtpContext, Suite, MAX_TRAILER};

fn ctx(suite: Suite) -> SrtpContext {
    let key = [0x42u8; 32];
    let salt = [0x17u8; 14];
    SrtpContext::new(suite, &key[..suite.key_len()], &salt[..suite.salt_len()]).unwrap()
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, pkt)) = data.split_first() else {
        return;
    };
    let suite = Suite::ALL[usize::from(sel & 3)];
    let mut rx = ctx(suite);
    // 1. raw bytes: never accepted (no key), never panic
    let mut raw = pkt.to_vec();
    let r = rx.unprotect_rtp(&mut raw);
    assert!(r.is_err(), "forged packet accepted");
    assert_eq!(raw, pkt, "buffer changed on failure");
    // 2. the same bytes as plaintext: protect, then unprotect must give them back
    if sel & 4 != 0 {
        let mut tx = ctx(suite);
        let mut buf = pkt.to_vec();
        buf.resize(pkt.len() + MAX_TRAILER, 0);
        if let Ok(n) = tx.protect_rtp(&mut buf, pkt.len()) {
            let mut copy = buf[..n].to_vec();
            let m = rx.unprotect_rtp(&mut buf[..n]).expect("round trip");
            assert_eq!(&buf[..m], pkt);
            assert_eq!(rx.unprotect_rtp(&mut copy), Err(Error::Replayed));
        }
    }
});
