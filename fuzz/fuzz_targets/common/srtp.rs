//! The check both SRTP fuzz targets run, for RTP or RTCP: arbitrary bytes must never panic nor
//! be accepted (and leave the buffer unchanged), and any input that protect accepts must
//! round-trip exactly and refuse a replay.

use xtrunk_srtp::{Error, SrtpContext, Suite, MAX_TRAILER};

/// Protect `buf[..len]` in place; returns the new length.
pub type Protect = fn(&mut SrtpContext, &mut [u8], usize) -> Result<usize, Error>;
/// Unprotect all of `buf` in place; returns the plain length.
pub type Unprotect = fn(&mut SrtpContext, &mut [u8]) -> Result<usize, Error>;

fn ctx(suite: Suite, key: u8, salt: u8) -> SrtpContext {
    let key = [key; 32];
    let salt = [salt; 14];
    SrtpContext::new(suite, &key[..suite.key_len()], &salt[..suite.salt_len()]).unwrap()
}

/// First byte: suite (bits 0-1) and whether to try the round trip (bit 2); the rest: the packet.
pub fn check(data: &[u8], key: u8, salt: u8, protect: Protect, unprotect: Unprotect) {
    let Some((&sel, pkt)) = data.split_first() else {
        return;
    };
    let suite = Suite::ALL[usize::from(sel & 3)];
    let mut rx = ctx(suite, key, salt);
    // 1. raw bytes: never accepted (no key), never panic
    let mut raw = pkt.to_vec();
    let r = unprotect(&mut rx, &mut raw);
    assert!(r.is_err(), "forged packet accepted");
    assert_eq!(raw, pkt, "buffer changed on failure");
    // 2. the same bytes as plaintext: protect, then unprotect must give them back
    if sel & 4 != 0 {
        let mut tx = ctx(suite, key, salt);
        let mut buf = pkt.to_vec();
        buf.resize(pkt.len() + MAX_TRAILER, 0);
        if let Ok(n) = protect(&mut tx, &mut buf, pkt.len()) {
            let mut copy = buf[..n].to_vec();
            let m = unprotect(&mut rx, &mut buf[..n]).expect("round trip");
            assert_eq!(&buf[..m], pkt);
            assert_eq!(unprotect(&mut rx, &mut copy), Err(Error::Replayed));
        }
    }
}
