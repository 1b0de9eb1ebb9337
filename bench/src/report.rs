//! Aggregation of `compare` rounds: per-backend medians, merged latency histograms, ratios to
//! the socket backend of the same round, the summary table and the JSON object.

use hdrhistogram::Histogram;

use crate::lab::{Backend, Measurement};

/// min / median / max of a set of values.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Spread {
    /// Smallest.
    pub(crate) min: f64,
    /// Median (mean of the two middle values for an even count).
    pub(crate) median: f64,
    /// Largest.
    pub(crate) max: f64,
}

impl Spread {
    /// `None` for an empty set; NaNs are ignored.
    pub(crate) fn of(values: &[f64]) -> Option<Self> {
        let mut v: Vec<f64> = values.iter().copied().filter(|x| !x.is_nan()).collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 };
        Some(Spread { min: v[0], median, max: v[n - 1] })
    }

    fn json(&self) -> serde_json::Value {
        serde_json::json!({ "min": self.min, "median": self.median, "max": self.max })
    }
}

/// Everything `compare` reports about one backend.
#[derive(Debug)]
pub(crate) struct BackendSummary {
    /// The backend.
    pub(crate) backend: Backend,
    /// Its measurements, one per completed round, in round order.
    pub(crate) rounds: Vec<Measurement>,
    /// All rounds' latencies merged (ns).
    pub(crate) hist: Histogram<u64>,
    /// Per-core figure / socket's per-core figure, per round (rounds where both ran).
    pub(crate) ratio_per_core: Option<Spread>,
    /// Delivered pps / socket's delivered pps, per round.
    pub(crate) ratio_delivered: Option<Spread>,
    /// Per-core figure / the flooded socket run's per-core figure (ignoring the paced one).
    pub(crate) ratio_to_flooded_socket: Option<Spread>,
}

impl BackendSummary {
    fn med(&self, f: impl Fn(&Measurement) -> f64) -> f64 {
        let v: Vec<f64> = self.rounds.iter().map(f).collect();
        Spread::of(&v).map_or(0.0, |s| s.median)
    }

    /// Median offered pps over rounds.
    pub(crate) fn offered_pps(&self) -> f64 {
        self.med(Measurement::offered_pps)
    }

    /// Median delivered pps over rounds.
    pub(crate) fn delivered_pps(&self) -> f64 {
        self.med(Measurement::delivered_pps)
    }

    /// Median delivered pps per relay core over rounds.
    pub(crate) fn per_core_pps(&self) -> f64 {
        self.med(Measurement::per_core_pps)
    }

    /// Loss over all rounds (packets lost / packets sent).
    pub(crate) fn loss_ratio(&self) -> f64 {
        let sent: u64 = self.rounds.iter().map(|m| m.sent).sum();
        let recv: u64 = self.rounds.iter().map(|m| m.received).sum();
        if sent == 0 {
            0.0
        } else {
            (1.0 - recv as f64 / sent as f64).max(0.0)
        }
    }

    /// Latency percentile of the merged histogram, µs.
    pub(crate) fn pct_us(&self, q: f64) -> f64 {
        if self.hist.is_empty() {
            0.0
        } else {
            self.hist.value_at_quantile(q) as f64 / 1000.0
        }
    }

    /// What "per core" means for this backend.
    pub(crate) fn per_core_basis(&self) -> &'static str {
        match self.backend {
            b if b.is_socket() && self.rounds.iter().all(|m| m.napi_threads == 0) => {
                "delivered / CPU time of the pinned relay worker thread (loopback: no NIC model)"
            }
            _ => "delivered / CPU time of the relay core: pinned worker thread + the relay veths' NAPI threads (NIC model)",
        }
    }
}

/// Groups measurements by backend (in `order`) and computes ratios against the socket backend
/// of the same round (`rounds[i]` holds round i's measurements).
pub(crate) fn summarize(order: &[Backend], rounds: &[Vec<Measurement>]) -> Vec<BackendSummary> {
    order
        .iter()
        .map(|&b| {
            let mut hist = crate::lab::new_hist();
            let mut mine = Vec::new();
            let (mut rc, mut rd, mut rf) = (Vec::new(), Vec::new(), Vec::new());
            for round in rounds {
                let Some(m) = round.iter().find(|m| m.backend == b) else {
                    continue;
                };
                let _ = hist.add(&m.hist);
                // The baseline: the better of the round's socket runs (flooded, paced).
                let best = |f: fn(&Measurement) -> f64| {
                    round.iter().filter(|m| m.backend.is_socket()).map(f).fold(0.0_f64, f64::max)
                };
                let (bc, bd) = (best(Measurement::per_core_pps), best(Measurement::delivered_pps));
                if bc > 0.0 {
                    rc.push(m.per_core_pps() / bc);
                }
                if bd > 0.0 {
                    rd.push(m.delivered_pps() / bd);
                }
                if let Some(s) = round.iter().find(|m| m.backend == Backend::Socket) {
                    if s.per_core_pps() > 0.0 {
                        rf.push(m.per_core_pps() / s.per_core_pps());
                    }
                }
                mine.push(m.clone());
            }
            BackendSummary {
                backend: b,
                rounds: mine,
                hist,
                ratio_per_core: Spread::of(&rc),
                ratio_delivered: Spread::of(&rd),
                ratio_to_flooded_socket: Spread::of(&rf),
            }
        })
        .filter(|s| !s.rounds.is_empty())
        .collect()
}

fn ratio_cell(s: Option<Spread>) -> String {
    s.map_or_else(|| "-".to_owned(), |s| format!("{:.2}× ({:.2}–{:.2})", s.median, s.min, s.max))
}

/// The summary table (several lines, no trailing newline).
pub(crate) fn table(sums: &[BackendSummary]) -> String {
    let mut out = format!(
        "{:<8} {:>6} {:>12} {:>12} {:>7} {:>14} {:>6} {:>22} {:>22} {:>9} {:>9} {:>9}\n",
        "backend",
        "rounds",
        "offered_pps",
        "deliv_pps",
        "loss%",
        "pps/relay_core",
        "util%",
        "per-core ratio",
        "delivered ratio",
        "p50_us",
        "p99_us",
        "p99.9_us"
    );
    for s in sums {
        let util =
            Spread::of(&s.rounds.iter().map(Measurement::relay_util).collect::<Vec<_>>()).map_or(0.0, |x| x.median);
        out.push_str(&format!(
            "{:<8} {:>6} {:>12.0} {:>12.0} {:>7.2} {:>14.0} {:>6.0} {:>22} {:>22} {:>9.0} {:>9.0} {:>9.0}\n",
            s.backend.name(),
            s.rounds.len(),
            s.offered_pps(),
            s.delivered_pps(),
            s.loss_ratio() * 100.0,
            s.per_core_pps(),
            util * 100.0,
            ratio_cell(s.ratio_per_core),
            ratio_cell(s.ratio_delivered),
            s.pct_us(0.5),
            s.pct_us(0.99),
            s.pct_us(0.999),
        ));
    }
    out.push_str(
        "pps/relay_core = delivered / CPU time on the relay core: the pinned worker thread plus, on the lab, the\n\
         relay veths' NAPI threads pinned beside it (the NIC model: receive work runs on the relay core, the far\n\
         hosts' on the load core), alike for every backend. util% = that CPU time / wall time. Ratios: per round\n\
         against the better socket run of the same round (socket~ = socket paced at 90 % of what it delivered\n\
         under the flood, i.e. without receive livelock), median (min–max).",
    );
    out
}

/// The JSON object of `compare`.
pub(crate) fn json(sums: &[BackendSummary], meta: serde_json::Value) -> serde_json::Value {
    let mut backends = serde_json::Map::new();
    for s in sums {
        let xdp_ns: Vec<f64> =
            s.rounds.iter().filter(|m| m.xdp_runs > 0).map(|m| m.xdp_run_ns as f64 / m.xdp_runs as f64).collect();
        let rounds: Vec<serde_json::Value> = s
            .rounds
            .iter()
            .map(|m| {
                serde_json::json!({
                    "seconds": m.secs,
                    "sent": m.sent,
                    "received": m.received,
                    "offered_pps": m.offered_pps(),
                    "delivered_pps": m.delivered_pps(),
                    "delivered_pps_per_core": m.per_core_pps(),
                    "relay_core_util": m.relay_util(),
                    "loss_ratio": m.loss_ratio(),
                    "reordered": m.reordered,
                    "foreign": m.foreign,
                    "max_sender_lag_ms": m.max_lag_ns as f64 / 1e6,
                    "send_failed": m.send_failed,
                    "rcvbuf_errors_relay_ns": m.rcvbuf_errors.0,
                    "rcvbuf_errors_peer_ns": m.rcvbuf_errors.1,
                    "veth_tx_dropped": m.veth_tx_dropped,
                    "p50_us": m.pct_us(0.5),
                    "p99_us": m.pct_us(0.99),
                    "p999_us": m.pct_us(0.999),
                    "fast_ports": m.fast_ports.0,
                    "fast_forwarded": m.fast_forwarded,
                    "warnings": m.warnings,
                })
            })
            .collect();
        backends.insert(
            s.backend.name().to_owned(),
            serde_json::json!({
                "offered_pps": s.offered_pps(),
                "delivered_pps": s.delivered_pps(),
                "delivered_pps_per_core": s.per_core_pps(),
                "per_core_basis": s.per_core_basis(),
                "loss_ratio": s.loss_ratio(),
                "p50_us": s.pct_us(0.5),
                "p99_us": s.pct_us(0.99),
                "p999_us": s.pct_us(0.999),
                "reordered": s.rounds.iter().map(|m| m.reordered).sum::<u64>(),
                "xdp_ns_per_packet": Spread::of(&xdp_ns).map(|x| x.median),
                "ratio_to_socket": s.ratio_per_core.map(|r| r.json()),
                "delivered_ratio_to_socket": s.ratio_delivered.map(|r| r.json()),
                "ratio_to_flooded_socket": s.ratio_to_flooded_socket.map(|r| r.json()),
                "rounds": rounds,
            }),
        );
    }
    let mut obj = match meta {
        serde_json::Value::Object(m) => m,
        _ => serde_json::Map::new(),
    };
    obj.insert(
        "ratio_to_socket_basis".into(),
        "delivered_pps_per_core against the round's better socket run (flooded `socket` or paced `socket~`); ratio_to_flooded_socket: against the flooded run only".into(),
    );
    obj.insert("backends".into(), serde_json::Value::Object(backends));
    serde_json::Value::Object(obj)
}

#[cfg(test)]
mod tests {
    use super::{summarize, Spread};
    use crate::lab::{Backend, Measurement};

    /// One second's measurement: `received` packets for `cpu_ms` of relay-core time.
    fn m(backend: Backend, received: u64, cpu_ms: u64) -> Measurement {
        Measurement {
            backend,
            secs: 1.0,
            asked_pps: None,
            sent: received,
            send_failed: 0,
            received,
            reordered: 0,
            foreign: 0,
            hist: hdrhistogram::Histogram::new(3).unwrap(),
            relay_cpu_ns: cpu_ms * 1_000_000,
            napi_threads: 2,
            xdp_run_ns: 0,
            xdp_runs: 0,
            fast_forwarded: 0,
            fast_ports: (0, 0),
            rcvbuf_errors: (0, 0),
            veth_tx_dropped: 0,
            max_lag_ns: 0,
            warnings: Vec::new(),
        }
    }

    #[test]
    fn ratios_are_against_the_better_socket_run_of_each_round() {
        let order = [Backend::Socket, Backend::SocketPaced, Backend::AfXdp];
        let rounds = vec![
            // Round 1: the paced socket run is better per core (100 k vs 80 k).
            vec![
                m(Backend::Socket, 80_000, 1000),
                m(Backend::SocketPaced, 50_000, 500),
                m(Backend::AfXdp, 200_000, 1000),
            ],
            // Round 2: the flooded one is (90 k vs 60 k).
            vec![
                m(Backend::Socket, 90_000, 1000),
                m(Backend::SocketPaced, 30_000, 500),
                m(Backend::AfXdp, 270_000, 1000),
            ],
        ];
        let sums = summarize(&order, &rounds);
        let af = sums.iter().find(|s| s.backend == Backend::AfXdp).unwrap();
        let r = af.ratio_per_core.unwrap();
        assert!((r.min - 2.0).abs() < 1e-9 && (r.max - 3.0).abs() < 1e-9, "{r:?}");
        let f = af.ratio_to_flooded_socket.unwrap();
        assert!((f.min - 2.5).abs() < 1e-9 && (f.max - 3.0).abs() < 1e-9, "{f:?}");
        let flooded = sums.iter().find(|s| s.backend == Backend::Socket).unwrap();
        assert!((flooded.ratio_per_core.unwrap().min - 0.8).abs() < 1e-9);
    }

    #[test]
    fn spread_median_odd_even_and_nan() {
        assert_eq!(Spread::of(&[]), None);
        assert_eq!(Spread::of(&[3.0, 1.0, 2.0]), Some(Spread { min: 1.0, median: 2.0, max: 3.0 }));
        assert_eq!(Spread::of(&[4.0, 1.0, 2.0, 3.0]).map(|s| s.median), Some(2.5));
        assert_eq!(Spread::of(&[f64::NAN, 5.0]).map(|s| s.median), Some(5.0));
    }
}
