//! Interop with the system libsrtp2 (an independent implementation), every suite:
//! both directions of SRTP across a sequence-number wrap (ROC 0 -> 1), SRTCP both
//! ways, replays and corrupted tags refused by both, byte-identical SRTP output.
//!
//! Run with `cargo test -p xtrunk-srtp --features libsrtp2 --test libsrtp2_interop`.
#![cfg(feature = "libsrtp2")]

use xtrunk_srtp::libsrtp2::{Direction, Session, HEADROOM, STATUS_AUTH_FAIL, STATUS_REPLAY_FAIL};
use xtrunk_srtp::{Error, SrtpContext, Suite};

const BUF: usize = 1500 + HEADROOM;
const SSRC: u32 = 0x1234_5678;

fn material(suite: Suite, seed: u8) -> (Vec<u8>, Vec<u8>) {
    let key = (0..suite.key_len()).map(|i| (i as u8).wrapping_mul(7).wrapping_add(seed)).collect();
    let salt = (0..suite.salt_len()).map(|i| (i as u8).wrapping_mul(13) ^ seed).collect();
    (key, salt)
}

/// An RTP packet: sometimes with CSRCs and a header extension, payload of varying size.
fn rtp_packet(seq: u16, i: usize) -> Vec<u8> {
    let cc = (i % 3) as u8;
    let ext = i % 4 == 1;
    let mut p = vec![0x80 | cc | if ext { 0x10 } else { 0 }, 0x08 | if i.is_multiple_of(5) { 0x80 } else { 0 }];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(seq as u32 * 160).to_be_bytes());
    p.extend_from_slice(&SSRC.to_be_bytes());
    for c in 0..cc {
        p.extend_from_slice(&(0xc0c0_0000u32 + u32::from(c)).to_be_bytes());
    }
    if ext {
        p.extend_from_slice(&[0xbe, 0xde, 0, 2, 0x10, 0xaa, 0x21, 0xbb, 0xcc, 0, 0, 0]);
    }
    let n = [160, 0, 1, 17, 33, 320][i % 6];
    p.extend((0..n).map(|k| (k as u8) ^ (i as u8)));
    p
}

fn rtcp_packet(i: usize) -> Vec<u8> {
    // SR (28 bytes incl. header) + SDES chunk with CNAME.
    let mut p = vec![0x80, 200, 0, 6];
    p.extend_from_slice(&SSRC.to_be_bytes());
    p.extend_from_slice(&[0x11; 8]); // NTP
    p.extend_from_slice(&(i as u32).to_be_bytes()); // RTP ts
    p.extend_from_slice(&(i as u32 * 3).to_be_bytes()); // packet count
    p.extend_from_slice(&(i as u32 * 480).to_be_bytes()); // octet count
    p.extend_from_slice(&[0x81, 202, 0, 3]);
    p.extend_from_slice(&SSRC.to_be_bytes());
    p.extend_from_slice(&[1, 4, b'x', b't', b'r', b'k', 0, 0]);
    p
}

fn with_room(p: &[u8]) -> Vec<u8> {
    let mut b = vec![0u8; BUF];
    b[..p.len()].copy_from_slice(p);
    b
}

fn libsrtp(suite: Suite, dir: Direction, seed: u8) -> Session {
    let (k, s) = material(suite, seed);
    Session::new(suite, &k, &s, dir)
        .unwrap_or_else(|e| panic!("libsrtp2 cannot create a {suite} session ({e}); built without GCM?"))
}

fn xtrunk(suite: Suite, seed: u8) -> SrtpContext {
    let (k, s) = material(suite, seed);
    SrtpContext::new(suite, &k, &s).unwrap()
}

/// Sequence numbers 65500.. through the wrap, with one pair swapped after the wrap.
fn seqs() -> Vec<u16> {
    let mut v: Vec<u16> = (0..100u32).map(|i| (65500 + i) as u16).collect();
    v.swap(40, 41); // 65540 -> seq 4 and 5 swapped
    v.swap(35, 36); // 65535 and 0 swapped: the wrap packet arrives late
    v
}

#[test]
fn srtp_libsrtp2_to_xtrunk_all_suites() {
    for suite in Suite::ALL {
        let mut tx = libsrtp(suite, Direction::Outbound, 1);
        let mut rx = xtrunk(suite, 1);
        let mut wire = Vec::new();
        // libsrtp2 protects in send order; the receiver sees a reordered stream.
        for (i, seq) in (0..100u32).map(|i| (65500 + i) as u16).enumerate() {
            let plain = rtp_packet(seq, i);
            let mut b = with_room(&plain);
            let n = tx.protect_rtp(&mut b, plain.len()).unwrap();
            assert_eq!(n, plain.len() + suite.rtp_tag_len());
            wire.push((plain, b[..n].to_vec()));
        }
        wire.swap(35, 36);
        wire.swap(40, 41);
        for (plain, srtp) in &wire {
            let mut p = srtp.clone();
            let m = rx.unprotect_rtp(&mut p).unwrap_or_else(|e| panic!("{suite}: {e}"));
            assert_eq!(&p[..m], &plain[..], "{suite}");
        }
        assert_eq!(rx.roc(SSRC), Some(1), "{suite}: ROC went 0 -> 1");
        // replays and corrupted tags
        for (_, srtp) in wire.iter().step_by(17) {
            let mut p = srtp.clone();
            assert_eq!(rx.unprotect_rtp(&mut p), Err(Error::Replayed), "{suite}");
        }
        let (plain, srtp) = {
            let seq = 65500u16.wrapping_add(100);
            let plain = rtp_packet(seq, 3);
            let mut b = with_room(&plain);
            let n = tx.protect_rtp(&mut b, plain.len()).unwrap();
            (plain, b[..n].to_vec())
        };
        let mut bad = srtp.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert_eq!(rx.unprotect_rtp(&mut bad), Err(Error::AuthFailed), "{suite}");
        let mut bad = srtp.clone();
        bad[plain.len() - 1] ^= 0x20; // payload byte
        assert_eq!(rx.unprotect_rtp(&mut bad), Err(Error::AuthFailed), "{suite}");
        let mut good = srtp;
        let m = rx.unprotect_rtp(&mut good).unwrap();
        assert_eq!(&good[..m], &plain[..], "{suite}: still accepts after failures");
    }
}

#[test]
fn srtp_xtrunk_to_libsrtp2_all_suites_byte_identical() {
    for suite in Suite::ALL {
        let mut tx = xtrunk(suite, 2);
        let mut reference = libsrtp(suite, Direction::Outbound, 2);
        let mut rx = libsrtp(suite, Direction::Inbound, 2);
        let mut wire = Vec::new();
        for (i, seq) in (0..100u32).map(|i| (65500 + i) as u16).enumerate() {
            let plain = rtp_packet(seq, i);
            let mut b = with_room(&plain);
            let n = tx.protect_rtp(&mut b, plain.len()).unwrap();
            let mut r = with_room(&plain);
            let rn = reference.protect_rtp(&mut r, plain.len()).unwrap();
            assert_eq!(b[..n], r[..rn], "{suite} seq {seq}: same bytes as libsrtp2");
            wire.push((plain, b[..n].to_vec()));
        }
        assert_eq!(tx.roc(SSRC), Some(1));
        let order = seqs();
        let mut by_seq: Vec<_> = wire.clone();
        by_seq.sort_by_key(|(p, _)| order.iter().position(|s| s.to_be_bytes() == p[2..4]).unwrap());
        for (plain, srtp) in &by_seq {
            let mut p = srtp.clone();
            let m = rx.unprotect_rtp(&mut p).unwrap_or_else(|e| panic!("{suite}: {e}"));
            assert_eq!(&p[..m], &plain[..], "{suite}");
        }
        // replay refused by libsrtp2
        let mut p = wire[99].1.clone();
        assert_eq!(rx.unprotect_rtp(&mut p).unwrap_err().status(), Some(STATUS_REPLAY_FAIL));
        // corrupted tag refused by libsrtp2
        let plain = rtp_packet(65500u16.wrapping_add(100), 0);
        let mut b = with_room(&plain);
        let n = tx.protect_rtp(&mut b, plain.len()).unwrap();
        let mut bad = b[..n].to_vec();
        bad[n - 1] ^= 0x80;
        assert_eq!(rx.unprotect_rtp(&mut bad).unwrap_err().status(), Some(STATUS_AUTH_FAIL), "{suite}");
        let mut good = b[..n].to_vec();
        assert_eq!(rx.unprotect_rtp(&mut good).unwrap(), plain.len());
    }
}

#[test]
fn srtcp_both_ways_all_suites() {
    for suite in Suite::ALL {
        // libsrtp2 -> xtrunk
        let mut tx = libsrtp(suite, Direction::Outbound, 3);
        let mut rx = xtrunk(suite, 3);
        let mut sent = Vec::new();
        for i in 0..20 {
            let plain = rtcp_packet(i);
            let mut b = with_room(&plain);
            let n = tx.protect_rtcp(&mut b, plain.len()).unwrap();
            assert_eq!(n, plain.len() + suite.rtcp_trailer_len(), "{suite}");
            assert_ne!(b[8..plain.len()], plain[8..], "{suite}: encrypted");
            let mut p = b[..n].to_vec();
            let m = rx.unprotect_rtcp(&mut p).unwrap_or_else(|e| panic!("{suite}: {e}"));
            assert_eq!(&p[..m], &plain[..], "{suite}");
            sent.push(b[..n].to_vec());
        }
        let mut p = sent[7].clone();
        assert_eq!(rx.unprotect_rtcp(&mut p), Err(Error::Replayed), "{suite}");
        let plain = rtcp_packet(20);
        let mut b = with_room(&plain);
        let n = tx.protect_rtcp(&mut b, plain.len()).unwrap();
        let mut p = b[..n].to_vec();
        let tag_at = if suite.is_aead() { n - 5 } else { n - 1 };
        p[tag_at] ^= 4;
        assert_eq!(rx.unprotect_rtcp(&mut p), Err(Error::AuthFailed), "{suite}");
        let mut p = b[..n].to_vec();
        assert_eq!(rx.unprotect_rtcp(&mut p), Ok(plain.len()), "{suite}: accepted after a forgery");

        // xtrunk -> libsrtp2
        let mut tx = xtrunk(suite, 4);
        let mut rx = libsrtp(suite, Direction::Inbound, 4);
        let mut sent = Vec::new();
        for i in 0..20 {
            let plain = rtcp_packet(i);
            let mut b = with_room(&plain);
            let n = tx.protect_rtcp(&mut b, plain.len()).unwrap();
            let mut p = b[..n].to_vec();
            let m = rx.unprotect_rtcp(&mut p).unwrap_or_else(|e| panic!("{suite}: {e}"));
            assert_eq!(&p[..m], &plain[..], "{suite}");
            sent.push(b[..n].to_vec());
        }
        let mut p = sent[3].clone();
        assert_eq!(rx.unprotect_rtcp(&mut p).unwrap_err().status(), Some(STATUS_REPLAY_FAIL));
        let plain = rtcp_packet(99);
        let mut b = with_room(&plain);
        let n = tx.protect_rtcp(&mut b, plain.len()).unwrap();
        let mut p = b[..n].to_vec();
        p[12] ^= 1;
        assert_eq!(rx.unprotect_rtcp(&mut p).unwrap_err().status(), Some(STATUS_AUTH_FAIL), "{suite}");
    }
}

/// A long run, both directions, every suite, in lock step: one wrap by default,
/// `XTRUNK_SRTP_LONG=1` for three (slow in a debug build).
#[test]
fn long_run_wraps() {
    let wraps = if std::env::var_os("XTRUNK_SRTP_LONG").is_some() { 3 } else { 1 };
    for suite in Suite::ALL {
        let mut a_tx = xtrunk(suite, 5);
        let mut b_rx = libsrtp(suite, Direction::Inbound, 5);
        let mut b_tx = libsrtp(suite, Direction::Outbound, 6);
        let mut a_rx = xtrunk(suite, 6);
        let mut seq: u16 = 65535 - 1999;
        for i in 0..(wraps * 65536 + 10) {
            let plain = rtp_packet(seq, i % 6 * 4); // i%6*4 keeps it small-ish and varied
            let mut b = with_room(&plain);
            let n = a_tx.protect_rtp(&mut b, plain.len()).unwrap();
            assert_eq!(b_rx.unprotect_rtp(&mut b[..n]).unwrap(), plain.len());
            let mut b = with_room(&plain);
            let n = b_tx.protect_rtp(&mut b, plain.len()).unwrap();
            assert_eq!(a_rx.unprotect_rtp(&mut b[..n]).unwrap(), plain.len());
            assert_eq!(&b[..plain.len()], &plain[..]);
            seq = seq.wrapping_add(1);
        }
        assert_eq!(a_tx.roc(SSRC), Some(wraps as u32));
        assert_eq!(a_rx.roc(SSRC), Some(wraps as u32));
    }
}
