//! The one test rig: a [`Core`] pumped against the in-memory datapath ([`LoopbackMedia`]) on
//! simulated time, in the manner of quinn's `tests/util.rs` `Pair`. Tests, benches and the
//! `sip_core` fuzz target drive the core through it; none has a pump loop of its own.
//!
//! Time moves only when the user says so ([`Pair::input`] adds 10 ms, [`Pair::advance`] any
//! amount); the rig reads the clock only to measure [`Pair::busy`], the time spent inside the
//! core (for the call bench).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use xtrunk_config::Config;
use xtrunk_ring::msg::Command;

use crate::b2bua::Core;
use crate::cdr::Cdr;
use crate::ids::Seed;
use crate::journal::{Journal, JournalOp};
use crate::media::{LoopbackMedia, MediaPort};
use crate::sip::msg::{parse, Message};
use crate::transport::{Dest, Transmit, Transport};

/// A core serving one UDP listener at `local`, for `cfg` (names resolved, not validated: test
/// configurations need not fit this host). `now`/`wall` anchor its CDR clock.
///
/// # Panics
/// If a name in `cfg` does not resolve (a route to a trunk that does not exist).
pub fn core(cfg: &Config, local: SocketAddr, now: Instant, wall: SystemTime, seed: impl Into<Seed>) -> Core {
    let snap = cfg.resolve_names().expect("test configuration resolves");
    Core::new(Arc::new(snap), vec![(Transport::Udp, local)], now, wall, seed)
}

/// What the rig keeps of the core's output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Record {
    /// Everything: transmissions, commands, journal operations, CDRs.
    All,
    /// Transmissions only (benches: the rest is drained and dropped).
    Transmissions,
}

/// The core, its datapath, simulated time and what came out.
pub struct Pair {
    /// The core under test.
    pub core: Core,
    /// The in-memory datapath.
    pub media: LoopbackMedia,
    /// When set, journal operations are applied to it (as the shell does, once per round).
    pub journal: Option<Journal>,
    /// `fdatasync` the journal after each write (the cost of host-crash safety; the shell does not).
    pub journal_sync: bool,
    /// Simulated now.
    pub now: Instant,
    /// The core's listener.
    pub local: SocketAddr,
    /// Transmissions not yet taken.
    pub out: Vec<Transmit>,
    /// Datapath commands sent.
    pub cmds: Vec<Command>,
    /// Journal operations produced.
    pub ops: Vec<JournalOp>,
    /// CDRs written.
    pub cdrs: Vec<Cdr>,
    /// What to keep.
    pub record: Record,
    /// Run `handle_timeout(now)` after every input (the shell does after every poll round).
    pub timers_after_input: bool,
    /// Wall time spent inside the core's `handle_*`/`poll_*` calls made by the rig.
    pub busy: Duration,
}

impl Pair {
    /// A rig around a fresh [`core`] at `now` (wall clock: now).
    pub fn new(cfg: &Config, local: SocketAddr, seed: impl Into<Seed>) -> Self {
        let now = Instant::now();
        Self::from_core(core(cfg, local, now, SystemTime::now(), seed), LoopbackMedia::default(), local, now)
    }

    /// A rig around an existing core and datapath (a restarted core keeps the old datapath).
    pub fn from_core(core: Core, media: LoopbackMedia, local: SocketAddr, now: Instant) -> Self {
        Self {
            core,
            media,
            journal: None,
            journal_sync: false,
            now,
            local,
            out: Vec::new(),
            cmds: Vec::new(),
            ops: Vec::new(),
            cdrs: Vec::new(),
            record: Record::All,
            timers_after_input: false,
            busy: Duration::ZERO,
        }
    }

    /// What the shell does after each input: journal first, then transmissions, datapath commands
    /// and their events, CDRs; repeated until nothing moves.
    pub fn pump(&mut self) {
        let t = Instant::now();
        for _ in 0..8 {
            let mut moved = false;
            let ops: Vec<JournalOp> = std::iter::from_fn(|| self.core.poll_journal()).collect();
            if let (Some(j), false) = (&mut self.journal, ops.is_empty()) {
                j.apply_all(&ops).expect("journal write");
                if self.journal_sync {
                    j.sync().expect("journal fdatasync");
                }
            }
            moved |= !ops.is_empty();
            while let Some(x) = self.core.poll_transmit() {
                self.out.push(x);
                moved = true;
            }
            while let Some(c) = self.core.poll_media() {
                self.media.send(&c).expect("loopback media takes every command");
                if self.record == Record::All {
                    self.cmds.push(c);
                }
                moved = true;
            }
            while let Some(ev) = self.media.poll_event() {
                self.core.handle_media_event(self.now, ev);
                moved = true;
            }
            while let Some(c) = self.core.poll_cdr() {
                if self.record == Record::All {
                    self.cdrs.push(c);
                }
                moved = true;
            }
            if self.record == Record::All {
                self.ops.extend(ops);
            }
            if !moved {
                break;
            }
        }
        self.busy += t.elapsed();
    }

    /// A UDP datagram from `from`, 10 ms after the previous input.
    pub fn input(&mut self, from: impl Into<SocketAddr>, data: &[u8]) {
        self.now += Duration::from_millis(10);
        self.input_now(Dest { transport: Transport::Udp, local: self.local, remote: from.into() }, data);
    }

    /// A datagram or frame on `from` at the current simulated time.
    pub fn input_now(&mut self, from: Dest, data: &[u8]) {
        let t = Instant::now();
        self.core.handle_input(self.now, from, data);
        if self.timers_after_input {
            self.core.handle_timeout(self.now);
        }
        self.busy += t.elapsed();
        self.pump();
    }

    /// Moves time on by `d` and runs the timers due.
    pub fn advance(&mut self, d: Duration) {
        self.now += d;
        let t = Instant::now();
        self.core.handle_timeout(self.now);
        self.busy += t.elapsed();
        self.pump();
    }

    /// Removes and returns the first transmission to `to` whose message matches `pred`.
    pub fn try_take(&mut self, to: SocketAddr, pred: impl Fn(&Message) -> bool) -> Option<Message> {
        let i = self.out.iter().position(|t| t.dest.remote == to && parse(&t.data).is_ok_and(|m| pred(&m)))?;
        parse(&self.out.remove(i).data).ok()
    }

    /// [`Pair::try_take`], panicking with everything sent when nothing matches.
    pub fn take(&mut self, to: SocketAddr, pred: impl Fn(&Message) -> bool) -> Message {
        self.try_take(to, pred).unwrap_or_else(|| panic!("nothing matching sent to {to}; sent: {:#?}", self.dump_out()))
    }

    /// The transmissions not yet taken, readable.
    pub fn dump_out(&self) -> Vec<String> {
        self.out.iter().map(|t| format!("{} <- {}", t.dest.remote, String::from_utf8_lossy(&t.data))).collect()
    }
}

/// A media port for a SIPp (`-mp`): even, with it and the next three free (SIPp binds the
/// audio and video RTP/RTCP ports `p..p+3` at start and exits when one is taken), below the
/// kernel's ephemeral ports (so no socket bound to port 0 takes them later), and never the same
/// twice in one process.
pub fn sipp_media_port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let pid = u16::try_from(std::process::id() % 512).unwrap_or(0);
    for _ in 0..690 {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let p = 30_000 + ((pid.wrapping_mul(37).wrapping_add(n)) % 690) * 4;
        if (p..p + 4).all(|q| std::net::UdpSocket::bind(("127.0.0.1", q)).is_ok()) {
            return p;
        }
    }
    panic!("no free SIPp media ports in 30000..32760");
}

/// Waits up to `limit` until some process has `port` bound, UDP or TCP (read from `/proc/net/udp`,
/// `udp6`, `tcp` and `tcp6`, so the probe never takes the port itself); false on timeout. Tests start a SIPp UAS
/// and wait on this before sending it anything: a fixed sleep is not enough on a loaded host, and
/// an INVITE to a port not yet bound fails over at once on the ICMP unreachable.
pub fn wait_port_bound(port: u16, limit: Duration) -> bool {
    let want = format!(":{port:04X} ");
    let t0 = Instant::now();
    loop {
        let bound = ["/proc/net/udp", "/proc/net/udp6", "/proc/net/tcp", "/proc/net/tcp6"].iter().any(|p| {
            std::fs::read_to_string(p)
                .unwrap_or_default()
                .lines()
                .skip(1)
                .any(|l| l.split_whitespace().nth(1).is_some_and(|local| format!("{local} ").contains(&want)))
        });
        if bound {
            return true;
        }
        if t0.elapsed() > limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::msg::HName;
    use crate::sip::status::response;

    const SDP: &str =
        "v=0\r\no=a 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 7000 RTP/AVP 8\r\n";

    #[test]
    fn a_call_through_the_rig() {
        let cfg = Config::embedded_default().unwrap();
        let carrier = cfg.trunks[1].targets[0].addr;
        let pbx: SocketAddr = "127.0.0.1:5062".parse().unwrap();
        let mut p = Pair::new(&cfg, "127.0.0.1:5060".parse().unwrap(), 3);
        let inv = format!("INVITE sip:4930@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP {pbx};branch=z9hG4bKr1;rport\r\nFrom: <sip:1@p>;tag=a\r\nTo: <sip:4930@x>\r\nCall-ID: rig1\r\nCSeq: 1 INVITE\r\nContact: <sip:1@{pbx}>\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{SDP}", SDP.len());
        p.input(pbx, inv.as_bytes());
        let b_inv = p.take(carrier, |m| m.method().is_some_and(|x| x.as_str() == "INVITE"));
        let mut ok = response(&b_inv, 200, "OK", Some("c1"));
        ok.push(HName::Contact, format!("<sip:c@{carrier}>"));
        ok.push(HName::ContentType, "application/sdp");
        ok.body = SDP.as_bytes().to_vec();
        p.input(carrier, &ok.to_bytes());
        assert!(p.try_take(pbx, |m| m.code() == Some(200)).is_some());
        assert!(matches!(p.cmds.as_slice(), [Command::Create(_), Command::Update(_)]), "{:?}", p.cmds);
        // Each leg's media may latch only to its SDP address's IP or the IP its SIP came from.
        for c in &p.cmds {
            let (Command::Create(s) | Command::Update(s)) = c else { continue };
            assert_eq!(s.legs.map(|l| l.signal_ip), [Some(pbx.ip()), Some(carrier.ip())], "{c:?}");
        }
        assert_eq!(p.core.active_calls(), 1);
        assert!(p.ops.iter().any(|o| matches!(o, JournalOp::Add(_))));
        // Nobody ACKs: after 64·T1 the call is ended on both legs and its CDR written.
        p.advance(Duration::from_secs(40));
        assert_eq!(p.core.active_calls(), 0);
        assert_eq!(p.cdrs.len(), 1);
        assert_eq!(p.cdrs[0].end_reason.as_str(), "ack_timeout");
    }
}
