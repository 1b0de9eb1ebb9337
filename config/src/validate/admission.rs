//! Admission tables: `limits`, `destinations`, `fraud` (accounts) and `numbers` (trunks).

use std::str::FromStr;

use super::Validator;
use crate::{Destinations, Fraud, Limits, Numbers, Threshold};

/// Longest a call may wait in an account's CPS queue (the caller's INVITE is kept alive by
/// `100 Trying`; its patience is what bounds this).
const MAX_QUEUE_MS: u32 = 30_000;
/// Most calls one account's CPS queue may hold.
const MAX_QUEUE_LEN: u32 = 10_000;

pub(super) fn validate_limits(v: &mut Validator, p: &str, l: &Limits) {
    let p = format!("{p}.limits");
    for (k, n) in [
        ("channels", l.channels),
        ("channels_inbound", l.channels_inbound),
        ("channels_outbound", l.channels_outbound),
        ("calls_per_hour", l.calls_per_hour),
        ("calls_per_day", l.calls_per_day),
        ("calls_per_week", l.calls_per_week),
    ] {
        if n == Some(0) {
            v.add(format!("{p}.{k}"), "must be at least 1 (leave it out for no limit)");
        }
    }
    for (k, n) in [("channels_inbound", l.channels_inbound), ("channels_outbound", l.channels_outbound)] {
        if let (Some(n), Some(c)) = (n, l.channels) {
            if n > c {
                v.add(format!("{p}.{k}"), format!("{n} is above channels ({c})"));
            }
        }
    }
    if !(400..=699).contains(&l.channels_full_code) {
        v.add(
            format!("{p}.channels_full_code"),
            format!("must be a final error status 400-699, got {}", l.channels_full_code),
        );
    }
    if let Some(c) = l.cps {
        if !(c.is_finite() && c > 0.0 && c <= 100_000.0) {
            v.add(format!("{p}.cps"), format!("must be above 0 and at most 100000, got {c}"));
        }
    }
    if l.cps_burst == 0 {
        v.add(format!("{p}.cps_burst"), "must be at least 1");
    }
    if l.cps_queue_ms > MAX_QUEUE_MS {
        v.add(format!("{p}.cps_queue_ms"), format!("at most {MAX_QUEUE_MS}, got {}", l.cps_queue_ms));
    }
    if l.cps_queue_len > MAX_QUEUE_LEN {
        v.add(format!("{p}.cps_queue_len"), format!("at most {MAX_QUEUE_LEN}, got {}", l.cps_queue_len));
    }
    if let (Some(h), Some(d)) = (l.calls_per_hour, l.calls_per_day) {
        if h > d {
            v.add(format!("{p}.calls_per_hour"), format!("{h} is above calls_per_day ({d})"));
        }
    }
    if let (Some(d), Some(w)) = (l.calls_per_day, l.calls_per_week) {
        if d > w {
            v.add(format!("{p}.calls_per_day"), format!("{d} is above calls_per_week ({w})"));
        }
    }
}

pub(super) fn validate_destinations(v: &mut Validator, p: &str, d: &Destinations) {
    let p = format!("{p}.destinations");
    for (k, list) in [("allow_countries", &d.allow_countries), ("deny_countries", &d.deny_countries)] {
        for (j, c) in list.iter().enumerate() {
            check_country(v, &format!("{p}.{k}[{j}]"), c);
        }
    }
    for (k, list) in [("allow_prefixes", &d.allow_prefixes), ("deny_prefixes", &d.deny_prefixes)] {
        for (j, x) in list.iter().enumerate() {
            check_prefix(v, &format!("{p}.{k}[{j}]"), x);
        }
    }
}

pub(super) fn validate_fraud(v: &mut Validator, p: &str, f: &Fraud) {
    let p = format!("{p}.fraud");
    if !(1..=15).contains(&f.prefix_digits) {
        v.add(format!("{p}.prefix_digits"), format!("must be 1-15, got {}", f.prefix_digits));
    }
    if f.cooldown_secs == 0 {
        v.add(format!("{p}.cooldown_secs"), "must be at least 1");
    }
    if !(1..=10_000_000).contains(&f.max_entries) {
        v.add(format!("{p}.max_entries"), format!("must be 1-10000000, got {}", f.max_entries));
    }
    for (k, t) in [
        ("calls_per_minute", f.calls_per_minute),
        ("concurrent", f.concurrent),
        ("same_number", f.same_number),
        ("calls_per_day", f.calls_per_day),
    ] {
        check_threshold(v, &format!("{p}.{k}"), t, false);
    }
    check_threshold(v, &format!("{p}.min_avg_duration_secs"), f.min_avg_duration_secs, true);
}

pub(super) fn validate_numbers(v: &mut Validator, p: &str, n: &Numbers) {
    let p = format!("{p}.numbers");
    if let Some(c) = &n.country {
        check_country(v, &format!("{p}.country"), c);
    }
    for (j, x) in n.cli_block_prefixes.iter().enumerate() {
        check_prefix(v, &format!("{p}.cli_block_prefixes[{j}]"), x.strip_prefix('+').unwrap_or(x));
    }
}

/// A threshold's levels: warning before critical (for a minimum, warning above critical).
fn check_threshold(v: &mut Validator, p: &str, t: Threshold, minimum: bool) {
    if let (Some(w), Some(c)) = (t.warning, t.critical) {
        if (!minimum && w > c) || (minimum && w < c) {
            let (rel, word) = if minimum { ("below", "a minimum") } else { ("above", "a maximum") };
            v.add(format!("{p}.warning"), format!("{w} is {rel} critical ({c}); this is {word}"));
        }
    }
}

fn check_country(v: &mut Validator, p: &str, c: &str) {
    if phonenumber::country::Id::from_str(c).is_err() {
        v.add(p, format!("not an ISO 3166 alpha-2 country the number library knows, got {c:?}"));
    }
}

fn check_prefix(v: &mut Validator, p: &str, x: &str) {
    if x.is_empty() || x.len() > 15 || !x.bytes().all(|b| b.is_ascii_digit()) || x.starts_with('0') {
        v.add(p, format!("must be 1-15 E.164 digits (country code first, no + or 0), got {x:?}"));
    }
}
