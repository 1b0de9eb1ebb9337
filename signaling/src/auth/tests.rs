//! The gate on plain values: a snapshot with a digest trunk, requests built from text.

use super::*;
use crate::sip::msg::parse;

fn snapshot(tweak: impl FnOnce(&mut xtrunk_config::Config)) -> Snapshot {
    let mut cfg = xtrunk_config::Config::embedded_default().unwrap();
    tweak(&mut cfg);
    cfg.snapshot(xtrunk_config::Host::default()).unwrap()
}
