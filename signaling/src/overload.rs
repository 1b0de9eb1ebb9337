//! Load shedding of new calls (#20), sans-IO: load observations and `now` in, a verdict per
//! new INVITE out. No clock, no socket: the shell measures, this module decides.
//!
//! Above capacity a SIP edge must refuse new work early and cheaply, or every call suffers: the
//! loop falls behind, the peers retransmit (T1 = 500 ms), retransmissions add load, the session
//! ring fills and the port pool runs dry (the "cliff" of #20). So the shell reports after each
//! poll round how long the loop has been behind its input ([`Load::behind`]: since the start of
//! the first round that did not drain every UDP socket, or at least as long as the round just
//! ended took) and how full the session ring is; [`Shedder`] turns that into the share of new
//! calls admitted. A TCP connection left with input after its turn is not "behind": that is its
//! per-connection budget (`crate::tcp`) at work, and TCP's own flow control pushes back on that
//! one peer — one pipelining connection must not make the edge refuse everyone's calls; many
//! connections that all need their turns make the rounds long, which is counted:
//!
//! - load = the larger of `behind / max_loop_lag_ms` and `ring fill / max_ring_fill_pct`;
//! - the share is stepped every [`STEP`]: when the load stayed over 1 for the whole interval
//!   (its lowest observation), it shrinks by a quarter (by half over 2); when it stayed at or
//!   below half (its highest), it grows by [`INCREASE`]; otherwise it stays. The dead band is the
//!   hysteresis, so the edge neither flaps between all and nothing nor drifts back into overload
//!   at once; and one long round (a descheduled thread, a reload) sheds nothing by itself — a
//!   backlog shows in every observation until it is drained. This is RFC 7339's loss-based
//!   algorithm (a percentage of new requests refused, decreased multiplicatively, increased
//!   additively) applied by the overloaded server itself;
//! - within the share, calls are admitted evenly (a credit accumulator, not a coin: repeatable);
//! - the load must be calls': an interval in which most of the input was refused (unparsable,
//!   from no trunk's address, from a banned source, over a limit: what the core counts as bad
//!   input, banned drops and unknown-source drops) does not shrink the share. Shedding the
//!   trunks' calls would not relieve a flood from elsewhere (bans, silence and the per-source
//!   limits do that); it would hand the flood the denial of service it is after.
//!
//! Only new calls are ever shed: [`crate::b2bua::Core`] asks only for an initial INVITE (no To
//! tag, not a retransmission: those are absorbed by their server transaction first). A shed
//! INVITE is answered `503` + `Retry-After` statelessly, like a `407` (RFC 3261 §8.2.7): no
//! server transaction, dialog, port or lease is kept, and its ACK matches nothing.
//!
//! OPTIONS keepalives are still answered `200`. RFC 3261 §11.2 asks OPTIONS to get what an
//! INVITE would, but the peers that probe us (Kamailio dispatcher, OpenSIPS, carriers' SBCs)
//! take any non-2xx as "destination down" and move *all* new calls elsewhere for a probe
//! interval, then all back: an on/off flap of whole edges at fleet scale. Answering 200 keeps
//! the edge in rotation while each shed INVITE's 503 lets the peer retry that one call
//! elsewhere (§16.7: a proxy tries its next target on 503), which is the gradual behaviour
//! RFC 7339 wants. An overloaded edge that should leave rotation is drained (`SIGTERM`), not
//! shed.

use std::time::{Duration, Instant};

use xtrunk_config::Overload;

use crate::b2bua::Core;
use crate::sip::msg::{HName, Message};
use crate::sip::transaction::TxKey;
use crate::transport::Dest;

/// How often the admitted share is stepped.
pub const STEP: Duration = Duration::from_millis(100);
/// Per-mille of new calls added to the admitted share per [`STEP`] while the load is low.
pub const INCREASE: u32 = 50;
/// The whole share, per mille.
const ALL: u32 = 1000;
/// Bad-input reasons that are the edge's own capacity running out, not refused input.
const OWN_LIMITS: [&str; 2] = ["No Media Ports", "Transaction Limit (total)"];

/// One load observation, made by the shell after each poll round.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Load {
    /// How long the loop has been behind its input: since the start of the first poll round
    /// that left a UDP socket undrained, else as long as the last round took.
    pub behind: Duration,
    /// The fuller session ring (commands or events), percent; 0 when the datapath port cannot
    /// tell.
    pub ring_fill_pct: u8,
}

impl Load {
    /// The load against `cfg`'s thresholds, per mille (1000 = at a threshold).
    pub fn ratio(&self, cfg: &Overload) -> u32 {
        let lag = self.behind.as_micros() / u128::from(cfg.max_loop_lag_ms.max(1));
        let ring = u32::from(self.ring_fill_pct) * ALL / u32::from(cfg.max_ring_fill_pct.max(1));
        u32::try_from(lag).unwrap_or(u32::MAX).max(ring)
    }
}

/// The shell's side of [`Load::behind`]: since when the loop has been behind its input. It is
/// told when each poll round begins, whenever UDP input is left for later (a batch that did not
/// drain its socket: mid-round too, so a long round is seen while it lasts) and when the round
/// ends.
#[derive(Clone, Copy, Debug, Default)]
pub struct LoadMeter {
    round: Option<Instant>,
    since: Option<Instant>,
}

impl LoadMeter {
    /// A poll round begins (`now`: when its poll returned).
    pub fn round_begins(&mut self, now: Instant) {
        self.round = Some(now);
    }

    /// Input was left for later at `now`: how long the loop has been behind (since the start of
    /// the first round that left some).
    pub fn left_input(&mut self, now: Instant) -> Duration {
        let since = *self.since.get_or_insert(self.round.unwrap_or(now));
        now.saturating_duration_since(since)
    }

    /// The round ended at `now`; `behind`: it left UDP input for the next one. Not behind, the
    /// round's own length (what a datagram that came in at its start waited at most).
    pub fn round_ends(&mut self, now: Instant, behind: bool) -> Duration {
        if behind {
            return self.left_input(now);
        }
        self.since = None;
        self.round.map_or(Duration::ZERO, |r| now.saturating_duration_since(r))
    }
}

/// What a new INVITE gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Go on to authentication and policy.
    Admit,
    /// `503` with this `Retry-After` (seconds), nothing kept.
    Shed {
        /// Seconds.
        retry_after: u32,
    },
}

/// The shedding decision: the admitted share and what it was stepped on.
#[derive(Clone, Debug)]
pub struct Shedder {
    /// Share of new calls admitted, per mille ([`ALL`]: nothing is shed).
    admit: u32,
    /// Accumulated share; a call is admitted each time it reaches [`ALL`].
    credit: u32,
    /// Lowest and highest load ratio since the last step.
    low: u32,
    peak: u32,
    /// When the share is stepped next (None: at the next observation).
    next_step: Option<Instant>,
    /// The latest observation (for the gauges).
    last: Load,
    /// Datagrams handed to the core since the last step.
    inputs: u64,
    /// The core's count of refused input (cumulative) at the last step and now.
    refused_mark: u64,
    refused: u64,
}

impl Default for Shedder {
    fn default() -> Self {
        let last = Load::default();
        let (inputs, refused_mark, refused) = (0, 0, 0);
        Self { admit: ALL, credit: 0, low: u32::MAX, peak: 0, next_step: None, last, inputs, refused_mark, refused }
    }
}

impl Shedder {
    /// Takes one observation; steps the share when due.
    pub fn observe(&mut self, cfg: &Overload, now: Instant, load: Load) {
        self.last = load;
        let r = load.ratio(cfg);
        self.low = self.low.min(r);
        self.peak = self.peak.max(r);
        if self.step_due(now) {
            self.step(cfg);
            self.next_step = Some(now + STEP);
        }
    }

    /// Whether the observation at `now` steps the share (the refused count is only read then).
    pub fn step_due(&self, now: Instant) -> bool {
        self.next_step.is_none_or(|t| now >= t)
    }

    /// One datagram was handed to the core.
    pub fn note_input(&mut self) {
        self.inputs += 1;
    }

    /// The core's cumulative count of refused input (bad input, banned and unknown-source
    /// drops), given with each observation.
    pub fn refused_so_far(&mut self, n: u64) {
        self.refused = n;
    }

    /// Whether most of the input since the last step was refused.
    pub fn refused_dominate(&self) -> bool {
        let refused = self.refused.saturating_sub(self.refused_mark);
        refused > 0 && refused * 2 > self.inputs
    }

    fn step(&mut self, cfg: &Overload) {
        let outsiders = self.refused_dominate();
        (self.inputs, self.refused_mark) = (0, self.refused);
        if !cfg.enabled {
            self.admit = ALL;
        } else if outsiders && self.low >= ALL {
            // Loaded by outsiders: holding the share (see the module notes).
        } else if self.low >= 2 * ALL {
            // Far behind (twice a threshold): the backlog must drain before it reaches T1.
            self.admit /= 2;
        } else if self.low >= ALL {
            self.admit = self.admit * 3 / 4;
        } else if self.peak <= ALL / 2 {
            self.admit = (self.admit + INCREASE).min(ALL);
        }
        (self.low, self.peak) = (u32::MAX, 0);
    }

    /// The verdict for one new INVITE.
    pub fn admit(&mut self, cfg: &Overload) -> Verdict {
        if !cfg.enabled || self.admit >= ALL {
            return Verdict::Admit;
        }
        self.credit += self.admit;
        if self.credit >= ALL {
            self.credit -= ALL;
            return Verdict::Admit;
        }
        Verdict::Shed { retry_after: cfg.retry_after_secs }
    }

    /// Some new calls are being shed.
    pub fn shedding(&self) -> bool {
        self.admit < ALL
    }

    /// Percent of new calls admitted.
    pub fn admit_pct(&self) -> u8 {
        (self.admit / 10) as u8
    }

    /// The latest observation.
    pub fn last(&self) -> Load {
        self.last
    }
}

/// Shedding's counters and gauges (`/metrics`, [`crate::Summary`]).
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OverloadMetrics {
    /// New INVITEs shed (`503`, or dropped for a source no trunk knows under
    /// `sip.unknown_source = "drop"`).
    pub shed: u64,
    /// Times shedding began.
    pub episodes: u64,
    /// Gauge: how long the loop was behind at the latest observation, milliseconds.
    pub loop_lag_ms: u64,
    /// Gauge: the fuller session ring at the latest observation, percent.
    pub ring_fill_pct: u8,
    /// Gauge: percent of new calls admitted (100: nothing is shed).
    pub admit_pct: u8,
}

impl Core {
    /// The shell's load observation after a poll round (see [`Load`]). A command waiting for
    /// room in the ring counts as a full ring.
    pub fn handle_load(&mut self, now: Instant, mut load: Load) {
        if !self.media_out.is_empty() {
            load.ring_fill_pct = 100;
        }
        let cfg = &self.cfg.sip.overload;
        let was = self.overload.shedding();
        if self.overload.step_due(now) {
            let a = &self.metrics.auth;
            // What the edge itself ran out of (ports, the whole transaction table) is load, not
            // a refusal of someone else's input.
            let own = |reason: &str| OWN_LIMITS.contains(&reason);
            let bad: u64 = self.metrics.bad_input.iter().filter(|(r, _)| !own(r)).map(|(_, n)| n).sum();
            self.overload.refused_so_far(bad + a.banned_drops + a.unknown_dropped);
        }
        self.overload.observe(cfg, now, load);
        let m = &mut self.metrics.overload;
        m.loop_lag_ms = load.behind.as_millis() as u64;
        m.ring_fill_pct = load.ring_fill_pct;
        m.admit_pct = self.overload.admit_pct();
        match (was, self.overload.shedding()) {
            (false, true) => {
                m.episodes += 1;
                log::warn!(
                    "overload: shedding new calls (503, Retry-After {} s): loop behind {} ms, ring {} % full",
                    cfg.retry_after_secs,
                    m.loop_lag_ms,
                    m.ring_fill_pct
                );
            }
            (true, false) => log::info!("overload over: admitting every new call ({} shed so far)", m.shed),
            _ => {}
        }
    }

    /// Sheds a new INVITE when the load says so: `503` + `Retry-After` without state (or
    /// silence for a source no trunk knows under `sip.unknown_source = "drop"`). True when shed.
    pub(crate) fn shed_invite(&mut self, k: &TxKey, req: &Message, src: Dest) -> bool {
        let Verdict::Shed { retry_after } = self.overload.admit(&self.cfg.sip.overload) else { return false };
        self.metrics.overload.shed += 1;
        let unknown = crate::policy::identify::by_source(&self.cfg, src.remote.ip()).is_none();
        if unknown && self.cfg.sip.unknown_source == xtrunk_config::UnknownSource::Drop {
            self.txs.forget_server(k);
            return true;
        }
        let tag = self.token();
        let mut r = crate::sip::status::response(req, 503, crate::sip::status::reason(503), Some(&tag));
        r.push(HName::Other("Retry-After".into()), retry_after.to_string());
        self.txs.respond_stateless(k, &r);
        *self.metrics.finals_to_caller.entry(503).or_insert(0) += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> Overload {
        Overload::default()
    }

    fn lag(ms: u64) -> Load {
        Load { behind: Duration::from_millis(ms), ring_fill_pct: 0 }
    }

    /// Observations every 10 ms for `d`, each `load`.
    fn feed(s: &mut Shedder, c: &Overload, t: &mut Instant, d: Duration, load: Load) {
        let end = *t + d;
        while *t < end {
            *t += Duration::from_millis(10);
            s.observe(c, *t, load);
        }
    }

    fn admitted_of(s: &mut Shedder, c: &Overload, n: usize) -> usize {
        (0..n).filter(|_| s.admit(c) == Verdict::Admit).count()
    }

    #[test]
    fn ratio_is_the_larger_of_lag_and_ring() {
        let c = cfg();
        assert_eq!(lag(100).ratio(&c), 1000);
        assert_eq!(lag(50).ratio(&c), 500);
        assert_eq!(Load { behind: Duration::ZERO, ring_fill_pct: 75 }.ratio(&c), 1500);
        assert_eq!(Load { behind: Duration::from_millis(20), ring_fill_pct: 5 }.ratio(&c), 200);
    }

    #[test]
    fn below_the_thresholds_everything_is_admitted() {
        let (c, mut s, mut t) = (cfg(), Shedder::default(), Instant::now());
        feed(&mut s, &c, &mut t, Duration::from_secs(5), lag(99));
        assert!(!s.shedding());
        assert_eq!(admitted_of(&mut s, &c, 1000), 1000);
    }

    #[test]
    fn an_interval_over_a_threshold_sheds_a_quarter_evenly() {
        let (c, mut s, mut t) = (cfg(), Shedder::default(), Instant::now());
        feed(&mut s, &c, &mut t, Duration::from_millis(100), lag(0));
        // A step is due every 100 ms: the first whole interval over is 120..=210 ms.
        feed(&mut s, &c, &mut t, Duration::from_millis(110), lag(150));
        assert!(s.shedding());
        assert_eq!(s.admit_pct(), 75);
        // Evenly: 3 of every 4.
        assert_eq!(admitted_of(&mut s, &c, 400), 300);
        let verdicts: Vec<_> = (0..4).map(|_| s.admit(&c)).collect();
        assert!(verdicts.contains(&Verdict::Shed { retry_after: 5 }), "{verdicts:?}");
    }

    #[test]
    fn sustained_overload_sheds_more_and_recovery_is_gradual() {
        let (c, mut s, mut t) = (cfg(), Shedder::default(), Instant::now());
        feed(&mut s, &c, &mut t, Duration::from_millis(500), lag(300));
        let low = s.admit_pct();
        assert!(low < 30, "{low}");
        // In the dead band (between half and the threshold): no change either way.
        feed(&mut s, &c, &mut t, Duration::from_secs(2), lag(70));
        assert_eq!(s.admit_pct(), low);
        // Below half: +5 % per 100 ms, not all at once.
        feed(&mut s, &c, &mut t, Duration::from_millis(300), lag(0));
        assert!(s.shedding());
        assert!(s.admit_pct() > low && s.admit_pct() <= low + 20, "{}", s.admit_pct());
        feed(&mut s, &c, &mut t, Duration::from_secs(3), lag(0));
        assert!(!s.shedding());
    }

    #[test]
    fn a_flood_of_refused_input_sheds_no_call() {
        let (c, mut s, mut t) = (cfg(), Shedder::default(), Instant::now());
        // Far behind for a second, but 9 of every 10 datagrams were refused (an outsiders'
        // flood): the trunks' calls are not what loads the loop, so nothing is shed.
        let mut refused = 0;
        for _ in 0..100 {
            for i in 0..10 {
                s.note_input();
                refused += u64::from(i != 0);
            }
            s.refused_so_far(refused);
            t += Duration::from_millis(10);
            s.observe(&c, t, lag(500));
        }
        assert!(!s.shedding(), "{}", s.admit_pct());
        // The same lag with the input the trunks' own: shed.
        for _ in 0..30 {
            s.note_input();
            t += Duration::from_millis(10);
            s.observe(&c, t, lag(500));
        }
        assert!(s.shedding());
    }

    #[test]
    fn one_long_round_alone_sheds_nothing_a_backlog_does() {
        let (c, mut s, mut t) = (cfg(), Shedder::default(), Instant::now());
        feed(&mut s, &c, &mut t, Duration::from_millis(200), lag(0));
        t += Duration::from_millis(10);
        s.observe(&c, t, lag(500));
        feed(&mut s, &c, &mut t, Duration::from_millis(300), lag(0));
        assert!(!s.shedding());
        // Behind in every observation, far over: halved per interval.
        feed(&mut s, &c, &mut t, Duration::from_millis(200), lag(250));
        assert_eq!(s.admit_pct(), 25);
    }

    #[test]
    fn the_meter_counts_from_the_first_round_that_left_input() {
        let mut m = LoadMeter::default();
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        m.round_begins(t0);
        assert_eq!(m.round_ends(ms(5), false), Duration::from_millis(5), "a drained round: its length");
        m.round_begins(ms(10));
        // Mid-round: a batch left its socket undrained; the round is still going.
        assert_eq!(m.left_input(ms(40)), Duration::from_millis(30));
        assert_eq!(m.round_ends(ms(60), true), Duration::from_millis(50));
        m.round_begins(ms(60));
        assert_eq!(m.round_ends(ms(90), true), Duration::from_millis(80));
        m.round_begins(ms(90));
        assert_eq!(m.round_ends(ms(90), false), Duration::ZERO);
    }

    #[test]
    fn a_full_ring_sheds_and_disabled_never_does() {
        let (c, mut s, mut t) = (cfg(), Shedder::default(), Instant::now());
        feed(&mut s, &c, &mut t, Duration::from_millis(300), Load { behind: Duration::ZERO, ring_fill_pct: 90 });
        assert!(s.shedding());
        let off = Overload { enabled: false, ..cfg() };
        let mut s = Shedder::default();
        feed(&mut s, &off, &mut t, Duration::from_millis(300), lag(5000));
        assert!(!s.shedding());
        assert_eq!(admitted_of(&mut s, &off, 100), 100);
    }
}
