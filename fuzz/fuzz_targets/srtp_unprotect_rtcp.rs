//! Fuzz SRTCP unprotect: arbitrary bytes must never panic, and any input that protect
//! accepts must round-trip exactly and refuse a replay.
#![no_main]

use libfuzzer_sys::fuzz_target;
use xtrunk_srtp::{Error, SrtpContext, Suite, MAX_TRAILER};

fn ctx(suite: Suite) -> SrtpContext {
    let key = [0x24u8; 32];
    let salt = [0x71u8; 14];
    SrtpContext::new(suite, &key[..suite.key_len()], &salt[..suite.salt_len()]).unwrap()
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, pkt)) = data.split_first() else {
        return;
    };
    let suite = Suite::ALL[usize::from(sel & 3)];
    let mut rx = ctx(suite);
    let mut raw = pkt.to_vec();
    let r = rx.unprotect_rtcp(&mut raw);
    assert!(r.is_err(), "forged packet accepted");
    assert_eq!(raw, pkt, "buffer changed on failure");
    if sel & 4 != 0 {
        let mut tx = ctx(suite);
        let mut buf = pkt.to_vec();
        buf.resize(pkt.len() + MAX_TRAILER, 0);
        if let Ok(n) = tx.protect_rtcp(&mut buf, pkt.len()) {
            let mut copy = buf[..n].to_vec();
            let m = rx.unprotect_rtcp(&mut buf[..n]).expect("round trip");
            assert_eq!(&buf[..m], pkt);
            assert_eq!(rx.unprotect_rtcp(&mut copy), Err(Error::Replayed));
        }
    }
});
