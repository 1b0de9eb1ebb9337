//! The short-call report, per account and month (Plivo's rule): a month's calls from an account
//! are flagged when its *abandoned 0 s calls* or its *≤ 6 s calls* each exceed 20 % of the
//! month's calls, India destinations excluded.
//!
//! Precisely, for the calls whose `setup_ms` falls in the month (UTC) and whose `account_in` is
//! the account (the customer that placed them), leaving out India destinations (`to_norm`
//! starting `91` with 12 digits, i.e. `+91` and ten digits):
//! * `zero` = calls billed 0 s: never answered, or answered for under 1 s;
//! * `short` = answered calls of 1 s to 6 s inclusive (whole seconds, rounded down);
//! * a count is *over* when `count * 100 > total * 20`; `excess` is how many calls above 20 %
//!   of the total it is (`count - floor(total / 5)`).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::export::year_month;
use crate::row::Row;

/// Percent of a month's calls above which a kind of call is flagged.
pub const THRESHOLD_PCT: u64 = 20;

/// One account's month.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MonthReport {
    /// The account (`account_in`; empty: calls from trunks without one).
    pub account: String,
    /// `YYYY-MM`.
    pub month: String,
    /// Calls counted (India destinations excluded).
    pub total: u64,
    /// Calls billed 0 s.
    pub zero: u64,
    /// Calls over `zero`'s threshold (0 when not over).
    pub zero_excess: u64,
    /// Answered calls of 1–6 s.
    pub short: u64,
    /// Calls over `short`'s threshold (0 when not over).
    pub short_excess: u64,
    /// Either kind is over its threshold.
    pub flagged: bool,
}

/// Is `to_norm` an Indian number (`91` + ten digits)?
pub fn is_india(to_norm: &str) -> bool {
    to_norm.len() == 12 && to_norm.starts_with("91") && to_norm.bytes().all(|b| b.is_ascii_digit())
}

fn excess(count: u64, total: u64) -> u64 {
    if count * 100 > total * THRESHOLD_PCT {
        count - total * THRESHOLD_PCT / 100
    } else {
        0
    }
}

/// The report over `rows`, by account then month.
pub fn short_calls(rows: &[Row]) -> Vec<MonthReport> {
    let mut by: BTreeMap<(String, (i64, i64)), MonthReport> = BTreeMap::new();
    for r in rows.iter().filter(|r| !is_india(&r.to_norm)) {
        let ym = year_month(r.setup_ms);
        let m = by.entry((r.account_in.clone(), ym)).or_insert_with(|| MonthReport {
            account: r.account_in.clone(),
            month: format!("{:04}-{:02}", ym.0, ym.1),
            ..MonthReport::default()
        });
        m.total += 1;
        let secs = r.duration_ms / 1000;
        if r.answer_ms == 0 || secs == 0 {
            m.zero += 1;
        } else if secs <= 6 {
            m.short += 1;
        }
    }
    by.into_values()
        .map(|mut m| {
            m.zero_excess = excess(m.zero, m.total);
            m.short_excess = excess(m.short, m.total);
            m.flagged = m.zero_excess > 0 || m.short_excess > 0;
            m
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_are_strictly_over_twenty_percent() {
        assert_eq!(excess(20, 100), 0);
        assert_eq!(excess(21, 100), 1);
        assert_eq!(excess(3, 10), 1);
        assert!(is_india("919876543210") && !is_india("4930123") && !is_india("9198765"));
    }
}
