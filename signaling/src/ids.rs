//! Unguessable identifiers: tags, branches, Call-IDs and SDP session ids.
//!
//! Every identifier an outsider sees is drawn from a CSPRNG: the AES-128-CTR keystream under a
//! key and counter block from a 32-byte [`Seed`] (the shell takes it from the OS, `getrandom`).
//! Recovering the next value from any number of earlier ones means breaking AES as a
//! pseudo-random permutation, so identifiers carry their full width in entropy: 96 bits per
//! token (24 hex digits), well above the 64 RFC 3261 §19.3 asks of tags ("at least 32 bits of
//! randomness") and what in-dialog request matching relies on. No counter or call number leaks.
//!
//! Sans-IO: the core owns an [`Ids`] built from the seed it is given and reads nothing else.

use aes::Aes128;
use cipher::{KeyIvInit, StreamCipher};

/// 32 bytes of seed: the AES key and the initial counter block.
#[derive(Clone, Copy)]
pub struct Seed(pub [u8; 32]);

impl std::fmt::Debug for Seed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Seed(<redacted>)")
    }
}

impl From<[u8; 32]> for Seed {
    fn from(b: [u8; 32]) -> Self {
        Self(b)
    }
}

/// A deterministic seed from a number, for tests and benches that want repeatable runs (the
/// stream is still a CSPRNG's, but anyone who knows the number knows it: never in production).
impl From<u64> for Seed {
    fn from(n: u64) -> Self {
        let mut b = [0u8; 32];
        let mut x = n;
        for chunk in b.chunks_mut(8) {
            // splitmix64: spreads the number over the whole seed.
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            chunk.copy_from_slice(&(z ^ (z >> 31)).to_le_bytes());
        }
        Self(b)
    }
}

impl Seed {
    /// An independent seed for another consumer (`domain` ≠ 0): same key, counter block moved by
    /// `domain` · 2^120 blocks, so the two keystreams never overlap in practice.
    pub fn derive(&self, domain: u8) -> Self {
        let mut b = self.0;
        // Byte 16 is the most significant byte of the big-endian counter block.
        b[16] ^= domain;
        Self(b)
    }

    /// A seed from the operating system's CSPRNG.
    pub fn from_os() -> Result<Self, getrandom::Error> {
        let mut b = [0u8; 32];
        getrandom::getrandom(&mut b)?;
        Ok(Self(b))
    }
}

/// The identifier generator.
pub struct Ids {
    ks: ctr::Ctr128BE<Aes128>,
    buf: [u8; 64],
    pos: usize,
}

impl std::fmt::Debug for Ids {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Ids(<keystream>)")
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Random bytes per token.
pub const TOKEN_BYTES: usize = 12;

impl Ids {
    /// A generator keyed by `seed`.
    pub fn new(seed: Seed) -> Self {
        let (key, iv) = seed.0.split_at(16);
        let ks = ctr::Ctr128BE::<Aes128>::new(key.into(), iv.into());
        Self { ks, buf: [0; 64], pos: 64 }
    }

    fn fill(&mut self, out: &mut [u8]) {
        for b in out {
            if self.pos == self.buf.len() {
                self.buf = [0; 64];
                self.ks.apply_keystream(&mut self.buf);
                self.pos = 0;
            }
            *b = self.buf[self.pos];
            self.pos += 1;
        }
    }

    /// A fresh token: [`TOKEN_BYTES`] random bytes as lower-case hex (a valid `token` for tags,
    /// branches after `z9hG4bK`, and Call-IDs).
    pub fn token(&mut self) -> String {
        let mut raw = [0u8; TOKEN_BYTES];
        self.fill(&mut raw);
        let mut s = String::with_capacity(TOKEN_BYTES * 2);
        for b in raw {
            s.push(HEX[usize::from(b >> 4)] as char);
            s.push(HEX[usize::from(b & 15)] as char);
        }
        s
    }

    /// A uniformly random number below `n` (`n` > 0), by rejection (no modulo bias).
    pub fn below(&mut self, n: u32) -> u32 {
        let n = n.max(1);
        // The largest multiple of n that fits: values at or above it are drawn again.
        let zone = u32::MAX - u32::MAX % n;
        loop {
            let mut raw = [0u8; 4];
            self.fill(&mut raw);
            let x = u32::from_le_bytes(raw);
            if x < zone {
                return x % n;
            }
        }
    }

    /// A random number below 2^62 (an SDP `o=` session id: a decimal that fits any peer's
    /// signed 64-bit parser).
    pub fn session_id(&mut self) -> u64 {
        let mut raw = [0u8; 8];
        self.fill(&mut raw);
        u64::from_le_bytes(raw) >> 2
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn tokens_are_unique_wide_and_balanced() {
        let mut ids = Ids::new(Seed::from(7));
        let tokens: Vec<String> = (0..4000).map(|_| ids.token()).collect();
        assert!(tokens.iter().all(|t| t.len() == 24 && t.bytes().all(|b| b.is_ascii_hexdigit())));
        assert_eq!(tokens.iter().collect::<HashSet<_>>().len(), tokens.len());
        // Every bit position is set in about half of the tokens (4000 samples: ±5 % is > 6 σ).
        let vals: Vec<u128> = tokens.iter().map(|t| u128::from_str_radix(t, 16).unwrap()).collect();
        for bit in 0..96 {
            let ones = vals.iter().filter(|v| *v >> bit & 1 == 1).count();
            assert!((1800..=2200).contains(&ones), "bit {bit} set in {ones} of 4000");
        }
    }

    #[test]
    fn next_token_is_not_derivable_from_the_previous_ones() {
        // The relations a counter-based generator shows: constant difference or constant XOR
        // between consecutive values, or a shared prefix.
        let mut ids = Ids::new(Seed::from(1));
        let v: Vec<u128> = (0..64).map(|_| u128::from_str_radix(&ids.token(), 16).unwrap()).collect();
        let diffs: HashSet<u128> = v.windows(2).map(|w| w[1].wrapping_sub(w[0])).collect();
        let xors: HashSet<u128> = v.windows(2).map(|w| w[1] ^ w[0]).collect();
        assert_eq!(diffs.len(), 63);
        assert_eq!(xors.len(), 63);
        let prefixes: HashSet<u128> = v.iter().map(|x| x >> 64).collect();
        assert!(prefixes.len() > 60);
        // Different seeds, unrelated streams.
        let mut a = Ids::new(Seed::from(1));
        let mut b = Ids::new(Seed::from(2));
        assert_ne!(a.token(), b.token());
        assert!(format!("{:?}{:?}", Seed::from(1), a).contains("redacted"));
    }
}
