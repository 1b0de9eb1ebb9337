//! Stateless nonces and nonce-count replay protection, sans-IO (time comes in as seconds).
//!
//! A nonce is `hex(issued) ‖ hex(serial) ‖ hex(MAC)`: 16 hex digits of the issue time (seconds
//! since the core's epoch), 16 of a serial number (every challenge gets its own nonce, so two
//! calls challenged in the same second do not share a nonce-count) and the first 128 bits of
//! HMAC-SHA256 over the time, the serial and the source address,
//! under a per-process key from the core's CSPRNG seed. Nothing is stored to issue one; a nonce
//! checks as authentic only for the address it was sent to, and as stale once older than the
//! lifetime (RFC 3261 §22.4 `stale=true`).
//!
//! [`Replay`] keeps, per nonce in use, the highest `nc` seen and which of the [`WINDOW`] counts
//! below it were seen (a sliding window, as IPsec and SRTP keep for sequence numbers), in two
//! generations that rotate each lifetime or when the current one is half the capacity: bounded,
//! and ageing out. A count seen twice is a replay (RFC 7616 §3.4); a count below the window
//! cannot be told from one, and neither can a nonce whose entry was dropped early (capacity):
//! both get a fresh nonce (`stale=true`), never acceptance, so neither reopens a replay. The
//! window is what lets a PBX that reuses one nonce for many calls (`nc` + 1 each) lose an
//! INVITE on UDP: its retransmission comes after later counts and is still accepted.

use std::collections::HashMap;
use std::net::IpAddr;

use hmac13::{KeyInit, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Length of a nonce: 16 + 16 + 32 hex digits.
pub const NONCE_LEN: usize = 64;

/// The nonce MAC key.
pub struct NonceKey([u8; 32]);

impl std::fmt::Debug for NonceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NonceKey(<redacted>)")
    }
}

/// What a nonce is worth.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NonceCheck {
    /// Ours, for this source, within its lifetime: `issued` and its MAC (the replay key).
    Fresh {
        /// Issue time, seconds.
        issued: u64,
        /// The MAC: identifies the nonce in [`Replay`].
        id: [u8; 16],
    },
    /// Ours and for this source, but older than the lifetime.
    Stale,
    /// Not ours, not for this source, or malformed.
    Forged,
}

impl NonceKey {
    /// A key.
    pub fn new(key: [u8; 32]) -> Self {
        Self(key)
    }

    fn mac(&self, issued: u64, serial: u64, ip: IpAddr) -> [u8; 16] {
        // new_from_slice accepts keys of any length for HMAC.
        let Ok(mut m) = <hmac13::Hmac<Sha256> as KeyInit>::new_from_slice(&self.0) else { return [0; 16] };
        m.update(b"xtrunk-nonce-v1");
        m.update(&issued.to_be_bytes());
        m.update(&serial.to_be_bytes());
        match ip {
            IpAddr::V4(a) => m.update(&a.octets()),
            IpAddr::V6(a) => m.update(&a.octets()),
        }
        let full = m.finalize().into_bytes();
        let mut out = [0u8; 16];
        out.copy_from_slice(&full[..16]);
        out
    }

    /// A nonce for `ip`, issued at `secs`, with serial number `serial` (unique per nonce).
    pub fn issue(&self, secs: u64, serial: u64, ip: IpAddr) -> String {
        let mut s = format!("{secs:016x}{serial:016x}");
        s.push_str(&super::digest::hex(&self.mac(secs, serial, ip)));
        s
    }

    /// Checks a nonce from `ip` at `now` (seconds) against `lifetime` seconds.
    pub fn check(&self, nonce: &str, now: u64, ip: IpAddr, lifetime: u64) -> NonceCheck {
        let b = nonce.as_bytes();
        if b.len() != NONCE_LEN || !b.iter().all(|c| c.is_ascii_hexdigit()) {
            return NonceCheck::Forged;
        }
        let Ok(issued) = u64::from_str_radix(&nonce[..16], 16) else { return NonceCheck::Forged };
        let Ok(serial) = u64::from_str_radix(&nonce[16..32], 16) else { return NonceCheck::Forged };
        let mut got = [0u8; 16];
        for (i, g) in got.iter_mut().enumerate() {
            let Ok(x) = u8::from_str_radix(&nonce[32 + 2 * i..34 + 2 * i], 16) else { return NonceCheck::Forged };
            *g = x;
        }
        let want = self.mac(issued, serial, ip);
        if !bool::from(want.ct_eq(&got)) || issued > now {
            return NonceCheck::Forged;
        }
        if now - issued > lifetime {
            return NonceCheck::Stale;
        }
        NonceCheck::Fresh { issued, id: want }
    }
}

/// Counts below the highest seen that are still told apart, per nonce.
pub const WINDOW: u32 = 256;

/// A nonce-count verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Count {
    /// Not seen before for this nonce: recorded.
    Ok,
    /// Seen before for this nonce: a replay.
    Replay,
    /// The nonce's entry was dropped for capacity, or the count is below the window: ask for a
    /// fresh nonce (stale).
    Forgotten,
}

/// What is known of one nonce: the highest count, the window below it, the issue time.
#[derive(Clone, Copy, Debug)]
struct Seen {
    max: u32,
    /// Bit i: count `max - i` was seen (bit 0 is `max` itself).
    bits: [u64; (WINDOW / 64) as usize],
    issued: u64,
}

impl Seen {
    fn first(nc: u32, issued: u64) -> Self {
        let mut bits = [0; (WINDOW / 64) as usize];
        bits[0] = 1;
        Self { max: nc, bits, issued }
    }

    /// Records `nc`; false when it was seen already or is too old to tell.
    fn record(&mut self, nc: u32) -> Count {
        if nc > self.max {
            self.shift(nc - self.max);
            self.max = nc;
            self.bits[0] |= 1;
            return Count::Ok;
        }
        let back = self.max - nc;
        if back >= WINDOW {
            return Count::Forgotten;
        }
        let (word, bit) = ((back / 64) as usize, back % 64);
        if self.bits[word] & (1 << bit) != 0 {
            return Count::Replay;
        }
        self.bits[word] |= 1 << bit;
        Count::Ok
    }

    /// Moves the window up by `n` counts.
    fn shift(&mut self, n: u32) {
        if n >= WINDOW {
            self.bits = [0; (WINDOW / 64) as usize];
            return;
        }
        let (words, bits) = ((n / 64) as usize, n % 64);
        let len = self.bits.len();
        for i in (0..len).rev() {
            let lo = i.checked_sub(words).map_or(0, |j| self.bits[j]);
            let below = i.checked_sub(words + 1).map_or(0, |j| self.bits[j]);
            self.bits[i] = if bits == 0 { lo } else { lo << bits | below >> (64 - bits) };
        }
    }
}

/// Nonce-counts seen per nonce in use; bounded, two generations.
#[derive(Debug)]
pub struct Replay {
    cur: HashMap<[u8; 16], Seen>,
    old: HashMap<[u8; 16], Seen>,
    cap: usize,
    rotated_at: u64,
    /// Nonces issued at or before this time may have lost their entry.
    forgotten_before: Option<u64>,
}

impl Replay {
    /// A table holding at most `cap` nonces (at least 2).
    pub fn new(cap: usize) -> Self {
        Self { cur: HashMap::new(), old: HashMap::new(), cap: cap.max(2), rotated_at: 0, forgotten_before: None }
    }

    /// Nonces tracked.
    pub fn len(&self) -> usize {
        self.cur.len() + self.old.len()
    }

    /// True when none is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Checks and records `nc` for nonce `id` (issued at `issued`) at `now` seconds.
    pub fn check(&mut self, id: [u8; 16], issued: u64, nc: u32, now: u64, lifetime: u64) -> Count {
        if now.saturating_sub(self.rotated_at) >= lifetime.max(1) || self.cur.len() >= self.cap / 2 {
            self.rotate(now, lifetime);
        }
        let last = self.cur.get(&id).copied().or_else(|| self.old.remove(&id));
        match last {
            Some(mut seen) => {
                let verdict = seen.record(nc);
                self.cur.insert(id, seen);
                verdict
            }
            None if self.forgotten_before.is_some_and(|t| issued <= t) => Count::Forgotten,
            None => {
                self.cur.insert(id, Seen::first(nc, issued));
                Count::Ok
            }
        }
    }

    fn rotate(&mut self, now: u64, lifetime: u64) {
        // Entries of the old generation are dropped; any that could still be fresh marks the
        // time before which a missing entry means "forgotten".
        for Seen { issued, .. } in self.old.values() {
            if now.saturating_sub(*issued) <= lifetime {
                self.forgotten_before = Some(self.forgotten_before.map_or(*issued, |t| t.max(*issued)));
            }
        }
        self.old = std::mem::take(&mut self.cur);
        self.rotated_at = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 7));

    #[test]
    fn fresh_stale_forged() {
        let k = NonceKey::new([7; 32]);
        let n = k.issue(100, 1, IP);
        assert_ne!(n, k.issue(100, 2, IP));
        assert_eq!(n.len(), NONCE_LEN);
        assert!(matches!(k.check(&n, 130, IP, 60), NonceCheck::Fresh { issued: 100, .. }));
        assert_eq!(k.check(&n, 161, IP, 60), NonceCheck::Stale);
        assert_eq!(k.check(&n, 130, "192.0.2.8".parse().unwrap(), 60), NonceCheck::Forged);
        let other_serial = format!("{}{:016x}{}", &n[..16], 2, &n[32..]);
        assert_eq!(k.check(&other_serial, 130, IP, 60), NonceCheck::Forged);
        assert_eq!(NonceKey::new([8; 32]).check(&n, 130, IP, 60), NonceCheck::Forged);
        let mut bad = n.clone().into_bytes();
        bad[40] = if bad[40] == b'0' { b'1' } else { b'0' };
        assert_eq!(k.check(std::str::from_utf8(&bad).unwrap(), 130, IP, 60), NonceCheck::Forged);
        assert_eq!(k.check("zz", 130, IP, 60), NonceCheck::Forged);
        assert_eq!(k.check(&"\u{e9}".repeat(32), 130, IP, 60), NonceCheck::Forged);
        // Issued in the future (an authentic nonce cannot be).
        assert_eq!(k.check(&k.issue(200, 3, IP), 130, IP, 60), NonceCheck::Forged);
    }

    #[test]
    fn replay_rejects_a_count_seen_twice() {
        let mut r = Replay::new(100);
        let id = [1; 16];
        assert_eq!(r.check(id, 10, 1, 10, 60), Count::Ok);
        assert_eq!(r.check(id, 10, 1, 11, 60), Count::Replay);
        assert_eq!(r.check(id, 10, 2, 11, 60), Count::Ok);
        assert_eq!(r.check(id, 10, 2, 12, 60), Count::Replay);
        assert_eq!(r.check(id, 10, 5, 12, 60), Count::Ok);
        // 3 and 4 were skipped (lost on the way, say): still accepted once each.
        assert_eq!(r.check(id, 10, 4, 12, 60), Count::Ok);
        assert_eq!(r.check(id, 10, 4, 12, 60), Count::Replay);
        assert_eq!(r.check(id, 10, 3, 12, 60), Count::Ok);
        // Survives one rotation (it moves back to the current generation).
        assert_eq!(r.check(id, 10, 5, 75, 60), Count::Replay);
        assert_eq!(r.check(id, 10, 3, 75, 60), Count::Replay);
    }

    #[test]
    fn the_window_slides_and_below_it_is_stale_not_accepted() {
        let mut r = Replay::new(100);
        let id = [2; 16];
        // Every other count up to 1000, then the ones in between, across word boundaries.
        for nc in (2..=1000).step_by(2) {
            assert_eq!(r.check(id, 10, nc, 10, 60), Count::Ok, "{nc}");
        }
        for nc in (1000 - WINDOW + 1..1000).filter(|n| n % 2 == 1) {
            assert_eq!(r.check(id, 10, nc, 10, 60), Count::Ok, "{nc}");
        }
        for nc in 1000 - WINDOW + 1..=1000 {
            assert_eq!(r.check(id, 10, nc, 10, 60), Count::Replay, "{nc}");
        }
        // Below the window: cannot be told from a replay, so a fresh nonce.
        assert_eq!(r.check(id, 10, 1000 - WINDOW, 10, 60), Count::Forgotten);
        assert_eq!(r.check(id, 10, 1, 10, 60), Count::Forgotten);
        // A jump beyond the window clears it; what was seen near the old top is now too old.
        assert_eq!(r.check(id, 10, 5000, 10, 60), Count::Ok);
        assert_eq!(r.check(id, 10, 1000, 10, 60), Count::Forgotten);
        assert_eq!(r.check(id, 10, 4999, 10, 60), Count::Ok);
        assert_eq!(r.check(id, 10, 5000 - WINDOW + 1, 10, 60), Count::Ok);
        // A shift by a multiple of 64 keeps bits in their words.
        assert_eq!(r.check(id, 10, 5064, 10, 60), Count::Ok);
        assert_eq!(r.check(id, 10, 4999, 10, 60), Count::Replay);
        assert_eq!(r.check(id, 10, 5000, 10, 60), Count::Replay);
        assert_eq!(r.check(id, 10, 5001, 10, 60), Count::Ok);
    }

    #[test]
    fn bounded_and_evicted_is_forgotten_not_new() {
        let mut r = Replay::new(8);
        for i in 0..100u8 {
            let t = u64::from(i);
            assert_eq!(r.check([i; 16], t, 1, t, 3600), Count::Ok);
            assert!(r.len() <= 8);
        }
        // Nonce 0's entry is gone; its issue time is before the forgotten mark.
        assert_eq!(r.check([0; 16], 0, 2, 100, 3600), Count::Forgotten);
        // A nonce issued after the mark is new.
        assert_eq!(r.check([200; 16], 100, 1, 100, 3600), Count::Ok);
    }

    #[test]
    fn ages_out() {
        let mut r = Replay::new(1000);
        for i in 0..50u8 {
            r.check([i; 16], 0, 1, 0, 60);
        }
        r.check([99; 16], 61, 1, 61, 60);
        r.check([98; 16], 122, 1, 122, 60);
        assert_eq!(r.len(), 2);
    }
}
