//! What the sidecar hands its control thread (the `/metrics` endpoint): a snapshot of its
//! counters, taken by the SIP loop at most every [`PUBLISH_EVERY`] and handed over with
//! `try_lock`, so the loop never waits for a scrape.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::cdr::Cdr;
use crate::metrics::Metrics;

/// How often the SIP loop publishes.
pub const PUBLISH_EVERY: Duration = Duration::from_millis(250);

/// Calls that ended, for one (inbound trunk, its account, outbound trunk).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ended {
    /// Calls ended (one per CDR).
    pub calls: u64,
    /// Of which answered.
    pub answered: u64,
    /// Not answered, by the final status sent to the caller.
    pub failed: BTreeMap<u16, u64>,
    /// Media received on the caller leg / the callee leg: packets.
    pub packets: [u64; 2],
    /// ... and packets lost.
    pub lost: [u64; 2],
    /// ... the E-model MOS × 100 of each leg the datapath rated, summed (#18).
    pub mos_x100: [u64; 2],
    /// ... and how many legs were rated (the mean MOS is `mos_x100 / rated / 100`).
    pub rated: [u64; 2],
}

/// (inbound trunk, inbound account, outbound trunk).
pub type EndedKey = (String, String, String);

/// Counts CDRs as the shell writes them.
#[derive(Debug, Default)]
pub struct EndedCounter {
    by: HashMap<EndedKey, Ended>,
}

impl EndedCounter {
    /// Counts one call.
    pub fn count(&mut self, c: &Cdr) {
        let key = (c.trunk_in.clone(), c.account_in.clone(), c.trunk_out.clone());
        let e = self.by.entry(key).or_default();
        e.calls += 1;
        if c.answer_ms != 0 {
            e.answered += 1;
        } else {
            *e.failed.entry(c.disposition).or_insert(0) += 1;
        }
        for i in 0..2 {
            e.packets[i] += c.legs[i].packets;
            e.lost[i] += c.legs[i].lost;
            if c.legs[i].mos_x100 != 0 {
                e.mos_x100[i] += u64::from(c.legs[i].mos_x100);
                e.rated[i] += 1;
            }
        }
    }

    /// Everything counted, sorted.
    pub fn snapshot(&self) -> BTreeMap<EndedKey, Ended> {
        self.by.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}

/// One published view of the sidecar.
#[derive(Debug, Clone, Default)]
pub struct OpsSnapshot {
    /// The core's counters.
    pub metrics: Metrics,
    /// Calls up now, by inbound trunk.
    pub active: BTreeMap<String, u64>,
    /// Calls ended, by trunks and account.
    pub ended: BTreeMap<EndedKey, Ended>,
    /// Configuration reloads applied.
    pub reloads: u64,
    /// Configuration reloads refused (invalid file).
    pub reloads_refused: u64,
    /// The calls up now (their CDRs so far), when the admin API is on; at most [`MAX_LISTED`].
    pub calls: Vec<Cdr>,
    /// OPTIONS-probed targets: (trunk, target `ip:port`, online).
    pub targets: Vec<(String, String, bool)>,
    /// Upstream registrations: (trunk, registrar `ip:port`, up, last error).
    pub registrations: Vec<(String, String, bool, Option<String>)>,
    /// The `[shared]` counter store's state (None: counters in memory).
    pub shared: Option<crate::policy::SharedStatus>,
}

/// Calls listed in a snapshot at most.
pub const MAX_LISTED: usize = 10_000;

/// What the control thread asks of the SIP loop (taken with `try_lock` once per publish).
#[derive(Debug, Clone, Default)]
pub struct Requests {
    /// Call-IDs of calls to end (admin API).
    pub end_calls: Vec<String>,
    /// Publish the call list too.
    pub list_calls: bool,
}

/// Where the control thread leaves its requests.
pub type RequestQueue = Arc<Mutex<Requests>>;

/// Where the SIP loop publishes and the control thread reads.
pub type Published = Arc<Mutex<OpsSnapshot>>;
