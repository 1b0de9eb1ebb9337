//! Property tests: protect -> unprotect round trips for random headers and payloads;
//! unprotect never panics (nor accepts) on arbitrary or mutated bytes.

use proptest::prelude::*;
use xtrunk_srtp::{Error, SrtpContext, Suite, MAX_TRAILER};

fn suite() -> impl Strategy<Value = Suite> {
    prop::sample::select(Suite::ALL.to_vec())
}

fn pair(suite: Suite, seed: u8) -> (SrtpContext, SrtpContext) {
    let key: Vec<u8> = (0..suite.key_len()).map(|i| i as u8 ^ seed).collect();
    let salt: Vec<u8> = (0..suite.salt_len()).map(|i| (i as u8).wrapping_add(seed)).collect();
    (SrtpContext::new(suite, &key, &salt).unwrap(), SrtpContext::new(suite, &key, &salt).unwrap())
}

#[derive(Debug, Clone)]
struct Rtp {
    marker: bool,
    pt: u8,
    seq: u16,
    ts: u32,
    ssrc: u32,
    csrcs: Vec<u32>,
    ext: Option<(u16, Vec<u32>)>,
    payload: Vec<u8>,
}

impl Rtp {
    fn bytes(&self) -> Vec<u8> {
        let mut p = vec![
            0x80 | self.csrcs.len() as u8 | if self.ext.is_some() { 0x10 } else { 0 },
            self.pt | if self.marker { 0x80 } else { 0 },
        ];
        p.extend_from_slice(&self.seq.to_be_bytes());
        p.extend_from_slice(&self.ts.to_be_bytes());
        p.extend_from_slice(&self.ssrc.to_be_bytes());
        for c in &self.csrcs {
            p.extend_from_slice(&c.to_be_bytes());
        }
        if let Some((profile, words)) = &self.ext {
            p.extend_from_slice(&profile.to_be_bytes());
            p.extend_from_slice(&(words.len() as u16).to_be_bytes());
            for w in words {
                p.extend_from_slice(&w.to_be_bytes());
            }
        }
        p.extend_from_slice(&self.payload);
        p
    }
}

fn rtp() -> impl Strategy<Value = Rtp> {
    (
        any::<bool>(),
        0u8..128,
        any::<u16>(),
        any::<u32>(),
        any::<u32>(),
        prop::collection::vec(any::<u32>(), 0..=15),
        prop::option::of((any::<u16>(), prop::collection::vec(any::<u32>(), 0..6))),
        prop::collection::vec(any::<u8>(), 0..400),
    )
        .prop_map(|(marker, pt, seq, ts, ssrc, csrcs, ext, payload)| Rtp {
            marker,
            pt,
            seq,
            ts,
            ssrc,
            csrcs,
            ext,
            payload,
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn rtp_round_trip(suite in suite(), pkts in prop::collection::vec(rtp(), 1..8), seed in any::<u8>()) {
        let (mut tx, mut rx) = pair(suite, seed);
        for (i, pkt) in pkts.iter().enumerate() {
            // consecutive seqs per SSRC so the estimation never has to guess far
            let mut pkt = pkt.clone();
            pkt.seq = pkts[0].seq.wrapping_add(i as u16);
            let plain = pkt.bytes();
            let mut buf = vec![0u8; plain.len() + MAX_TRAILER];
            buf[..plain.len()].copy_from_slice(&plain);
            let n = tx.protect_rtp(&mut buf, plain.len()).unwrap();
            prop_assert_eq!(n, plain.len() + suite.rtp_tag_len());
            let hdr_len = plain.len() - pkt.payload.len();
            prop_assert_eq!(&buf[..hdr_len], &plain[..hdr_len], "header stays clear");
            if pkt.payload.len() >= 4 {
                prop_assert_ne!(&buf[hdr_len..plain.len()], &plain[hdr_len..], "payload encrypted");
            }
            let m = rx.unprotect_rtp(&mut buf[..n]).unwrap();
            prop_assert_eq!(&buf[..m], &plain[..]);
            prop_assert_eq!(rx.unprotect_rtp(&mut buf[..n]).is_err(), true);
        }
    }

    #[test]
    fn rtcp_round_trip(suite in suite(), body in prop::collection::vec(any::<u8>(), 0..300), ssrc in any::<u32>(), count in 1usize..6) {
        let (mut tx, mut rx) = pair(suite, 9);
        let mut plain = vec![0x81, 201, 0, 0];
        plain.extend_from_slice(&ssrc.to_be_bytes());
        plain.extend_from_slice(&body);
        for _ in 0..count {
            let mut buf = vec![0u8; plain.len() + MAX_TRAILER];
            buf[..plain.len()].copy_from_slice(&plain);
            let n = tx.protect_rtcp(&mut buf, plain.len()).unwrap();
            prop_assert_eq!(n, plain.len() + suite.rtcp_trailer_len());
            let m = rx.unprotect_rtcp(&mut buf[..n]).unwrap();
            prop_assert_eq!(&buf[..m], &plain[..]);
        }
    }

    #[test]
    fn unprotect_arbitrary_bytes_never_panics(suite in suite(), mut bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let (_, mut rx) = pair(suite, 1);
        let mut copy = bytes.clone();
        // Random bytes never authenticate.
        prop_assert!(rx.unprotect_rtp(&mut bytes).is_err());
        prop_assert!(rx.unprotect_rtcp(&mut copy).is_err());
    }

    #[test]
    fn mutated_packets_are_refused(suite in suite(), pkt in rtp(), flip in any::<prop::sample::Index>(), bit in 0u8..8) {
        let (mut tx, mut rx) = pair(suite, 2);
        let plain = pkt.bytes();
        let mut buf = vec![0u8; plain.len() + MAX_TRAILER];
        buf[..plain.len()].copy_from_slice(&plain);
        let n = tx.protect_rtp(&mut buf, plain.len()).unwrap();
        let mut bad = buf[..n].to_vec();
        bad[flip.index(n)] ^= 1 << bit;
        let r = rx.unprotect_rtp(&mut bad);
        prop_assert!(matches!(r, Err(Error::AuthFailed | Error::BadVersion | Error::HeaderOverrun | Error::TooShort)), "{:?}", r);
        // the genuine packet is still accepted afterwards
        let m = rx.unprotect_rtp(&mut buf[..n]).unwrap();
        prop_assert_eq!(&buf[..m], &plain[..]);
    }

    #[test]
    fn protect_never_panics(suite in suite(), bytes in prop::collection::vec(any::<u8>(), 0..100), extra in 0usize..24, claim in 0usize..140) {
        let (mut tx, _) = pair(suite, 3);
        let mut buf = bytes.clone();
        buf.resize(bytes.len() + extra, 0);
        let _ = tx.protect_rtp(&mut buf, claim);
        let _ = tx.protect_rtcp(&mut buf, claim);
    }
}
