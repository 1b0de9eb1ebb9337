//! The soak's load: paced senders (valid, malformed and outsider packets) and the far-leg
//! receiver.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use xtrunk_datapath::socket::{BatchSocket, ReadyWaiter};

use super::{plan, unit, SoakArgs, MAX_LAG, OUTSIDER_MARK, RTP_HDR};
use crate::lab;

/// Live counters of the load, shared by the senders, the receiver and the progress lines.
#[derive(Default)]
pub(super) struct Live {
    rtp: AtomicU64,
    malformed: AtomicU64,
    outsider: AtomicU64,
    send_failed: AtomicU64,
    skipped: AtomicU64,
    /// Valid RTP that arrived at the far legs' peers.
    pub(super) received: AtomicU64,
    /// Outsider packets that arrived at a far leg's peer: the relay forwarded them (must be 0).
    pub(super) leaked: AtomicU64,
    /// Anything else that arrived there (not a session's RTP).
    pub(super) unexpected: AtomicU64,
}

/// What the senders did, in total.
#[derive(Default, Clone, Copy, Debug)]
pub(super) struct Sent {
    /// Valid RTP from the legs' peers.
    pub(super) rtp: u64,
    /// Malformed packets from the legs' peers.
    pub(super) malformed: u64,
    /// Valid RTP from the outsider address.
    pub(super) outsider: u64,
    /// Datagrams `sendmmsg` refused.
    pub(super) send_failed: u64,
    /// Packets never sent because the sender was more than [`MAX_LAG`] behind.
    pub(super) skipped: u64,
}

impl Sent {
    /// Everything offered to the datapath.
    pub(super) fn offered(&self) -> u64 {
        self.rtp + self.malformed + self.outsider
    }
}

impl Live {
    pub(super) fn offered(&self) -> u64 {
        self.sent().offered()
    }

    pub(super) fn sent(&self) -> Sent {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Sent {
            rtp: l(&self.rtp),
            malformed: l(&self.malformed),
            outsider: l(&self.outsider),
            send_failed: l(&self.send_failed),
            skipped: l(&self.skipped),
        }
    }

    fn add(&self, d: &Sent) {
        self.rtp.fetch_add(d.rtp, Ordering::Relaxed);
        self.malformed.fetch_add(d.malformed, Ordering::Relaxed);
        self.outsider.fetch_add(d.outsider, Ordering::Relaxed);
        self.send_failed.fetch_add(d.send_failed, Ordering::Relaxed);
        self.skipped.fetch_add(d.skipped, Ordering::Relaxed);
    }
}

/// One sender thread's share: the sessions `i` with `i % threads == index`.
pub(super) struct LoadPlan {
    /// The caller legs' peers (session `k` of this plan sends from `socks[k % len]`).
    pub(super) socks: Vec<BatchSocket>,
    outsider: BatchSocket,
    /// Caller-leg address of each owned session.
    dest: Vec<SocketAddr>,
    /// SSRC of each owned session (session index + 1).
    ssrc: Vec<u32>,
}

impl LoadPlan {
    pub(super) fn new(a: &SoakArgs, index: usize, socks: Vec<BatchSocket>, outsider: BatchSocket) -> Self {
        let owned: Vec<usize> = (index..a.sessions).step_by(a.load_threads).collect();
        let dest = owned.iter().map(|&i| SocketAddr::new(a.media_ip, plan(a).leg_port(i, 0))).collect();
        let ssrc = owned.iter().map(|&i| i as u32 + 1).collect();
        Self { socks, outsider, dest, ssrc }
    }
}

/// Writes an RTP packet (PCMU) with `mark` as the first payload byte; returns its length.
fn rtp(b: &mut [u8], seq: u16, ssrc: u32, payload: usize, mark: u8) -> usize {
    let len = RTP_HDR + payload;
    b[0] = 0x80;
    b[1] = 0;
    b[2..4].copy_from_slice(&seq.to_be_bytes());
    b[4..8].copy_from_slice(&(u32::from(seq).wrapping_mul(160)).to_be_bytes());
    b[8..12].copy_from_slice(&ssrc.to_be_bytes());
    b[12..len].fill(0x55);
    b[12] = mark;
    len
}

/// Writes malformed packet number `g` of kind `g % 3`: a truncated RTP header (the relay counts
/// `malformed_rtp`), a full packet with RTP version 1 (`foreign`) or garbage whose first byte
/// is no RTP/RTCP/STUN/DTLS (`foreign`).
fn malformed(b: &mut [u8], g: u64, ssrc: u32, payload: usize) -> usize {
    match g % 3 {
        0 => {
            rtp(b, g as u16, ssrc, payload, 0);
            8
        }
        1 => {
            let n = rtp(b, g as u16, ssrc, payload, 0);
            b[0] = 0x40;
            n
        }
        _ => {
            let n = RTP_HDR + payload;
            for (i, x) in b[..n].iter_mut().enumerate() {
                *x = (unit(g ^ ((i as u64) << 40)) * 256.0) as u8;
            }
            b[0] |= 0xC0;
            n
        }
    }
}

fn flush(s: &mut BatchSocket, d: &mut Sent) {
    let (_, failed) = s.flush();
    d.send_failed += failed as u64;
}

/// One sender: paced at `--pps-per-session` per owned session for `--seconds`, then returns.
pub(super) fn send(mut p: LoadPlan, a: &SoakArgs, live: &Live) {
    let n = p.dest.len() as u64;
    let rate = n as f64 * f64::from(a.pps_per_session);
    let interval_ns = 1e9 / rate;
    let total = (rate * a.seconds as f64) as u64;
    let max_lag = (rate * MAX_LAG.as_secs_f64()) as u64;
    let (bad, extra) = (a.malformed_pct / 100.0, 1.0 - a.outsider_pct / 100.0);
    let mut seq = vec![0u16; n as usize];
    let epoch = Instant::now();
    let mut g = 0u64;
    while g < total && !lab::interrupted().load(Ordering::Relaxed) {
        let mut d = Sent::default();
        let due = ((epoch.elapsed().as_nanos() as f64 / interval_ns) as u64 + 1).min(total);
        if due > g + max_lag {
            d.skipped += due - max_lag - g;
            g = due - max_lag;
        }
        let mut budget = 4 * a.batch * p.socks.len();
        while g < due && budget > 0 {
            let k = (g % n) as usize;
            let (to, ssrc) = (p.dest[k], p.ssrc[k]);
            let nsock = p.socks.len();
            let s = &mut p.socks[k % nsock];
            if s.queued() >= a.batch {
                flush(s, &mut d);
            }
            let u = unit(g);
            if u < bad {
                s.queue(&to, |b| malformed(b, g, ssrc, a.payload));
                d.malformed += 1;
            } else {
                let q = seq[k];
                seq[k] = q.wrapping_add(1);
                s.queue(&to, |b| rtp(b, q, ssrc, a.payload, 0));
                d.rtp += 1;
                if u >= extra {
                    if p.outsider.queued() >= a.batch {
                        flush(&mut p.outsider, &mut d);
                    }
                    p.outsider.queue(&to, |b| rtp(b, q, ssrc, a.payload, OUTSIDER_MARK));
                    d.outsider += 1;
                }
            }
            g += 1;
            budget -= 1;
        }
        for s in p.socks.iter_mut().chain(std::iter::once(&mut p.outsider)) {
            if s.queued() > 0 {
                flush(s, &mut d);
            }
        }
        live.add(&d);
        if g < due {
            continue; // budget spent: more is due now
        }
        let wait = ((g as f64 * interval_ns) as u64).saturating_sub(epoch.elapsed().as_nanos() as u64);
        if wait > 50_000 {
            std::thread::sleep(Duration::from_nanos(wait.min(10_000_000)));
        }
    }
}

/// The far legs' peers: counts what the relay delivers, per session, until `done`.
pub(super) fn receive(
    mut socks: Vec<BatchSocket>,
    a: &SoakArgs,
    live: &Live,
    done: &AtomicBool,
) -> anyhow::Result<Vec<u32>> {
    let mut per_session = vec![0u32; a.sessions];
    let mut waiter = ReadyWaiter::new(socks.iter());
    while !done.load(Ordering::Relaxed) {
        let (mut ok, mut leaked, mut other, mut got) = (0u64, 0u64, 0u64, 0usize);
        for s in &mut socks {
            for _ in 0..16 {
                let n = s.recv_batch(|_, d| {
                    let ssrc = d.get(8..12).map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
                    let i = ssrc.wrapping_sub(1) as usize;
                    match (d.len() > RTP_HDR && d[0] == 0x80, per_session.get_mut(i)) {
                        (true, Some(c)) if d[RTP_HDR] == OUTSIDER_MARK => {
                            *c += 1;
                            leaked += 1;
                        }
                        (true, Some(c)) => {
                            *c += 1;
                            ok += 1;
                        }
                        _ => other += 1,
                    }
                })?;
                got += n;
                if n < a.batch {
                    break;
                }
            }
        }
        live.received.fetch_add(ok, Ordering::Relaxed);
        live.leaked.fetch_add(leaked, Ordering::Relaxed);
        live.unexpected.fetch_add(other, Ordering::Relaxed);
        if got == 0 {
            waiter.wait(Duration::from_millis(20))?;
        }
    }
    Ok(per_session)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_kinds_are_what_the_relay_should_call_them() {
        use xtrunk_datapath::wire::rtp::{classify, MuxKind, RtpPacket};
        let mut b = [0u8; 256];
        let n = malformed(&mut b, 0, 1, 160);
        assert_eq!((n, classify(&b[..n])), (8, MuxKind::Rtp));
        assert!(RtpPacket::new_checked(&b[..n]).is_err());
        for g in [1, 2, 4, 5, 7, 8] {
            let n = malformed(&mut b, g, 1, 160);
            assert_eq!(classify(&b[..n]), MuxKind::Other, "kind {}", g % 3);
        }
        let n = rtp(&mut b, 1, 2, 160, 0);
        assert!(RtpPacket::new_checked(&b[..n]).is_ok());
    }
}
