//! `[[account]]`: the tenants this edge serves and the DID pools they own.
//!
//! Calls from an account's trunks are held to its limits, destinations and fraud thresholds.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A tenant: a name trunks refer to, and the numbers (DIDs) it owns. TOML: `[[account]]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Account {
    /// Unique, non-empty name; `trunk.account` refers to it.
    pub name: String,
    /// Numbers owned: national-significant E.164 digits without `+` or `0`/`00`, each a single
    /// number (`"442071234567"`) or an inclusive range of equal length (`"15551230000-15551239999"`).
    /// No number may belong to two entries, in one account or across accounts.
    #[serde(default)]
    pub dids: Vec<String>,
    /// `[account.limits]`: channels, CPS (queued) and rolling caps across its trunks.
    #[serde(default)]
    pub limits: crate::Limits,
    /// `[account.destinations]`: countries, prefixes, premium/shared-cost, caller-ID ownership.
    #[serde(default)]
    pub destinations: crate::Destinations,
    /// `[account.fraud]`: fraud-detection thresholds per dialled prefix.
    #[serde(default)]
    pub fraud: crate::Fraud,
}

/// One DID pool entry, parsed: the numbers of exactly `digits` digits from `start` to `end`
/// inclusive. A single number has `start == end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DidRange {
    /// First number of the range.
    pub start: u64,
    /// Last number of the range (inclusive).
    pub end: u64,
    /// Length of every number in the range (no number starts with 0, so this is also the length
    /// of `start` and `end` written out).
    pub digits: u8,
}

impl DidRange {
    /// Most digits an E.164 number has.
    pub const MAX_DIGITS: u8 = 15;

    /// Parses a pool entry: `"442071234567"` or `"15551230000-15551239999"`. The error is the
    /// reason, for a problem at the entry's key path.
    pub fn parse(entry: &str) -> Result<Self, String> {
        let (a, b) = entry.split_once('-').unwrap_or((entry, entry));
        let start = parse_number(a, entry)?;
        let end = parse_number(b, entry)?;
        if a.len() != b.len() {
            return Err(format!(
                "range {entry:?}: both ends must have the same number of digits, got {} and {}",
                a.len(),
                b.len()
            ));
        }
        if start > end {
            return Err(format!("range {entry:?}: start {a} is above end {b}"));
        }
        // `parse_number` bounded the length by MAX_DIGITS, so it fits in a u8.
        Ok(Self { start, end, digits: a.len() as u8 })
    }

    /// Whether `number` (digits only, no `+`, exactly as written in the pool) is in the range.
    pub fn contains(&self, number: &str) -> bool {
        number.len() == usize::from(self.digits)
            && number.bytes().all(|b| b.is_ascii_digit())
            && number.parse::<u64>().is_ok_and(|n| (self.start..=self.end).contains(&n))
    }

    /// Whether two entries share a number (only entries of equal length can).
    pub fn overlaps(&self, other: &DidRange) -> bool {
        self.digits == other.digits && self.start <= other.end && other.start <= self.end
    }
}

impl fmt::Display for DidRange {
    /// The pool syntax: `442071234567` or `15551230000-15551239999`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.start == self.end {
            write!(f, "{}", self.start)
        } else {
            write!(f, "{}-{}", self.start, self.end)
        }
    }
}

/// One number (or range end) of `entry`: digits only, no `+`/`0` prefix, at most 15 digits.
fn parse_number(s: &str, entry: &str) -> Result<u64, String> {
    const PREFIXES: &str = "DID pools hold national-significant E.164 digits without + or 0/00 prefixes";
    if s.is_empty() {
        return Err(format!("must be a number or a range like \"15551230000-15551239999\", got {entry:?}"));
    }
    for prefix in ["+", "00", "0"] {
        if s.starts_with(prefix) {
            return Err(format!("{entry:?} starts with {prefix:?}: {PREFIXES}"));
        }
    }
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("must be digits only, or two equal-length numbers joined by '-', got {entry:?}"));
    }
    if s.len() > usize::from(DidRange::MAX_DIGITS) {
        return Err(format!("{entry:?}: {s} has {} digits; E.164 numbers have at most 15", s.len()));
    }
    s.parse().map_err(|_| format!("{entry:?}: {s} is not a number"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_and_range() {
        assert_eq!(
            DidRange::parse("442071234567"),
            Ok(DidRange { start: 442071234567, end: 442071234567, digits: 12 })
        );
        let r = DidRange::parse("15551230000-15551239999").unwrap();
        assert_eq!(r, DidRange { start: 15551230000, end: 15551239999, digits: 11 });
        assert!(r.contains("15551234567"));
        assert!(!r.contains("15551240000"));
        assert!(!r.contains("1555123456"), "shorter number");
        assert!(!r.contains("+15551234567"));
        assert_eq!(r.to_string(), "15551230000-15551239999");
    }

    #[test]
    fn refused() {
        for (entry, needle) in [
            ("+442071234567", "starts with \"+\""),
            ("00442071234567", "starts with \"00\""),
            ("02071234567", "starts with \"0\""),
            ("1555-01555", "starts with \"0\""),
            ("44207x", "digits only"),
            ("", "must be a number"),
            ("1555-", "must be a number"),
            ("1555-15551", "same number of digits"),
            ("1559-1551", "above end"),
            ("1234567890123456", "at most 15"),
        ] {
            let err = DidRange::parse(entry).unwrap_err();
            assert!(err.contains(needle), "{entry:?}: {err}");
        }
    }

    #[test]
    fn overlap_needs_equal_length() {
        let a = DidRange::parse("1555120-1555129").unwrap();
        assert!(a.overlaps(&DidRange::parse("1555123").unwrap()));
        assert!(!a.overlaps(&DidRange::parse("15551230").unwrap()));
        assert!(!a.overlaps(&DidRange::parse("1555130-1555139").unwrap()));
    }
}
