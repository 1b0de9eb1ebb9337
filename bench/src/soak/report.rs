//! The soak's summary, JSON and pass criteria.

use xtrunk_datapath::relay::DropReason;

use super::load::Sent;
use super::{DpCounters, SoakArgs};
use crate::relay::Deleted;

/// `VmRSS` of the datapath process at the points that matter, KiB.
#[derive(Default)]
pub(super) struct RssSamples {
    /// Child started, ring attached, no session yet.
    pub(super) before_create: u64,
    /// Every session created, before traffic.
    pub(super) after_create: u64,
    /// (seconds into the traffic, KiB), every `--sample-secs`, and once when it stopped.
    pub(super) samples: Vec<(f64, u64)>,
    /// The first sample at or after `--warmup-secs`.
    pub(super) warm: Option<(f64, u64)>,
    /// After the traffic, sessions still held.
    pub(super) end: u64,
    /// After every session was deleted.
    pub(super) after_delete: u64,
}

impl RssSamples {
    /// Change from the warm-up sample to the end, percent (None without a warm-up sample).
    pub(super) fn change_pct(&self) -> Option<f64> {
        let (_, w) = self.warm?;
        (w > 0).then(|| (self.end as f64 - w as f64) / w as f64 * 100.0)
    }

    fn max(&self) -> u64 {
        self.samples.iter().map(|s| s.1).max().unwrap_or(0).max(self.end)
    }
}

/// Everything the run measured.
pub(super) struct Report {
    pub(super) pid: i32,
    pub(super) setup_s: f64,
    pub(super) created: usize,
    pub(super) sent: Sent,
    pub(super) received: u64,
    pub(super) leaked: u64,
    pub(super) unexpected: u64,
    /// Sessions of which nothing reached the far leg.
    pub(super) silent_sessions: usize,
    /// MediaTimeout events while the senders ran.
    pub(super) timeouts_fed: u64,
    /// The datapath's counters after the traffic.
    pub(super) counters: DpCounters,
    /// `Udp: RcvbufErrors` during the traffic (the whole network namespace).
    pub(super) rcvbuf_errors: u64,
    pub(super) deleted: Deleted,
    pub(super) rss: RssSamples,
}

impl Report {
    /// Sessions created that did not come back Deleted with stats.
    pub(super) fn lost(&self) -> usize {
        self.created.saturating_sub(self.deleted.count)
    }

    fn sessions_ok(&self) -> bool {
        self.lost() == 0 && self.timeouts_fed == 0 && self.deleted.media_timeouts == 0
    }

    fn rss_ok(&self, a: &SoakArgs) -> bool {
        self.rss.change_pct().is_some_and(|c| c.abs() <= a.rss_tolerance_pct)
    }

    pub(super) fn passed(&self, a: &SoakArgs) -> bool {
        self.sessions_ok() && self.rss_ok(a)
    }

    fn malformed_seen(&self) -> u64 {
        let c = &self.counters;
        c.drop(DropReason::MalformedRtp) + c.drop(DropReason::Foreign) + c.drop(DropReason::BadLength)
    }

    fn rate(&self, n: u64, a: &SoakArgs) -> f64 {
        n as f64 / a.seconds as f64
    }

    pub(super) fn summary(&self, a: &SoakArgs) -> String {
        let (s, c, r) = (&self.sent, &self.counters, &self.rss);
        let requested = a.sessions as f64 * f64::from(a.pps_per_session);
        let verdict = |ok: bool| if ok { "PASS" } else { "FAIL" };
        let warm =
            r.warm.map_or("none (run shorter than --warmup-secs)".into(), |(t, k)| format!("{k} KiB at {t:.0} s"));
        let lines = [
            format!(
                "xtrunk-bench soak  datapath: socket backend in child process {} (worker on core {}), driven through its session ring",
                self.pid, a.relay_core
            ),
            format!(
                "  sessions        {} created in {:.2} s, {} deleted with stats, {} lost; MediaTimeouts while fed {} (+{} during the deletes)",
                self.created, self.setup_s, self.deleted.count, self.lost(), self.timeouts_fed, self.deleted.media_timeouts
            ),
            format!(
                "  requested       {requested:.0} pps ({} sessions x {} pps, caller leg only) for {} s; malformed {} %, outsiders +{} %",
                a.sessions, a.pps_per_session, a.seconds, a.malformed_pct, a.outsider_pct
            ),
            format!(
                "  offered         {:.0} pps: {} RTP, {} malformed, {} outsider packets; {} skipped (sender > 100 ms behind), {} send errors",
                self.rate(s.offered(), a), s.rtp, s.malformed, s.outsider, s.skipped, s.send_failed
            ),
            format!(
                "  delivered       {:.0} pps at the far legs: {} packets = {:.2} % of the RTP offered; {} sessions delivered nothing; {} outsider packets forwarded; {} unexpected",
                self.rate(self.received, a), self.received, pct(self.received, s.rtp), self.silent_sessions, self.leaked, self.unexpected
            ),
            format!("  datapath        rx {} tx {} tx errors {}; drops: {}", c.rx, c.tx, c.tx_errors, c.drops_text()),
            format!(
                "  accounting      malformed sent {} / dropped as malformed {}; outsiders sent {} / source_mismatch {} / per-leg rejected_sources {}; per-leg dropped {}; kernel UDP RcvbufErrors {} (namespace-wide)",
                s.malformed, self.malformed_seen(), s.outsider, c.drop(DropReason::SourceMismatch), self.deleted.rejected_sources, self.deleted.dropped, self.rcvbuf_errors
            ),
            format!(
                "  RSS (VmRSS of the datapath process)  before sessions {} KiB, sessions created {} KiB, after warm-up {warm}, end {} KiB, max {} KiB, after deleting all {} KiB",
                r.before_create, r.after_create, r.end, r.max(), r.after_delete
            ),
            format!(
                "  {}  RSS flat: end vs after warm-up {} (limit ±{} %)",
                verdict(self.rss_ok(a)),
                r.change_pct().map_or("unknown".into(), |p| format!("{p:+.2} %")),
                a.rss_tolerance_pct
            ),
            format!(
                "  {}  no session lost: {} created, {} deleted with stats, {} MediaTimeouts while fed",
                verdict(self.sessions_ok()), self.created, self.deleted.count, self.timeouts_fed + self.deleted.media_timeouts
            ),
        ];
        lines.join("\n")
    }

    pub(super) fn json(&self, a: &SoakArgs) -> serde_json::Value {
        let (s, c, r) = (&self.sent, &self.counters, &self.rss);
        let drops: serde_json::Map<String, serde_json::Value> =
            DropReason::ALL.iter().map(|d| (d.name().to_owned(), c.drop(*d).into())).collect();
        let rss = serde_json::json!({
            "before_create": r.before_create,
            "after_create": r.after_create,
            "warm": r.warm.map(|w| w.1),
            "warm_at_s": r.warm.map(|w| w.0),
            "end": r.end,
            "max": r.max(),
            "after_delete": r.after_delete,
            "change_pct": r.change_pct(),
            "samples": r.samples.iter().map(|(t, k)| serde_json::json!([t, k])).collect::<Vec<_>>(),
        });
        let mut v = serde_json::json!({
            "mode": "soak",
            "backend": "socket",
            "datapath_pid": self.pid,
            "sessions": a.sessions,
            "seconds": a.seconds,
            "pps_per_session": a.pps_per_session,
            "malformed_pct": a.malformed_pct,
            "outsider_pct": a.outsider_pct,
            "setup_s": self.setup_s,
            "sessions_created": self.created,
            "sessions_deleted": self.deleted.count,
            "sessions_lost": self.lost(),
            "media_timeouts_fed": self.timeouts_fed + self.deleted.media_timeouts,
            "silent_sessions": self.silent_sessions,
            "requested_pps": a.sessions as f64 * f64::from(a.pps_per_session),
            "offered_pps": self.rate(s.offered(), a),
            "delivered_pps": self.rate(self.received, a),
            "sent_rtp": s.rtp,
            "sent_malformed": s.malformed,
            "sent_outsider": s.outsider,
            "skipped": s.skipped,
        });
        let more = serde_json::json!({
            "send_failed": s.send_failed,
            "received": self.received,
            "outsiders_forwarded": self.leaked,
            "unexpected": self.unexpected,
            "datapath_rx": c.rx,
            "datapath_tx": c.tx,
            "datapath_tx_errors": c.tx_errors,
            "datapath_drops": drops,
            "deleted_dropped": self.deleted.dropped,
            "deleted_rejected_sources": self.deleted.rejected_sources,
            "deleted_packets": self.deleted.packets,
            "udp_rcvbuf_errors": self.rcvbuf_errors,
            "rss_kib": rss,
            "pass_rss": self.rss_ok(a),
            "pass_sessions": self.sessions_ok(),
            "pass": self.passed(a),
        });
        if let (Some(v), serde_json::Value::Object(m)) = (v.as_object_mut(), more) {
            v.extend(m);
        }
        v
    }
}

fn pct(n: u64, of: u64) -> f64 {
    if of == 0 {
        0.0
    } else {
        n as f64 / of as f64 * 100.0
    }
}
