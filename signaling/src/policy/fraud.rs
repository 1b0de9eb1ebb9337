//! Fraud detection per account and dialled prefix: calls per minute, concurrent calls, calls
//! per day, average answered duration, and consecutive calls of the account to one number.
//! Each measure has a warning level (logged and counted) and a critical level (the account's
//! calls to the prefix are blocked for the cool-down).
//!
//! Bounded (OpenSIPS `fraud_detection` leaks here): each account's table is two generations of
//! at most `max_entries / 2` entries; when the current one fills, or a day passes, it becomes the
//! previous one and the previous one is dropped. An entry not touched for a generation ages out.
//! Counters saturate at zero: a call that ends after its entry aged out changes nothing.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use xtrunk_config::{AccountId, Fraud, Threshold};

/// A measure that crossed a level.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Measure {
    /// Calls to the prefix in the last minute.
    CallsPerMinute,
    /// Concurrent calls to the prefix.
    Concurrent,
    /// Consecutive calls to one number.
    SameNumber,
    /// Calls to the prefix in the last day.
    CallsPerDay,
    /// Average answered duration (too short).
    AvgDuration,
}

impl Measure {
    /// The label used in logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CallsPerMinute => "calls_per_minute",
            Self::Concurrent => "concurrent",
            Self::SameNumber => "same_number",
            Self::CallsPerDay => "calls_per_day",
            Self::AvgDuration => "min_avg_duration",
        }
    }
}

/// What a call did to the fraud tables.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Verdict {
    /// Measures at or over their warning level.
    pub warnings: Vec<Measure>,
    /// Blocked: the measure that went critical (now or during the cool-down).
    pub blocked: Option<Measure>,
}

/// A call's entry in the tables, for [`FraudTables::ended`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FraudKey {
    /// The account (renamed by [`FraudTables::remap`] only for tables; a stale key of a
    /// renumbered account finds no entry, or another account's, and only saturates).
    pub(crate) account: AccountId,
    pub(crate) prefix: u64,
    /// Non-zero: the call's entry is in the shared store (`super::shared`), this its number.
    pub(crate) shared: u64,
}

/// The entry key of a call of an account with `f` to E.164 `digits`: its first
/// `prefix_digits` digits and their count.
pub(crate) fn prefix_of(f: &Fraud, digits: &str) -> u64 {
    let n = usize::from(f.prefix_digits).min(digits.len());
    digits[..n].parse::<u64>().unwrap_or(0) * 100 + n as u64
}

#[derive(Clone, Debug, Default)]
struct Entry {
    /// Calls per 10 s bucket over the last minute, and the newest bucket number.
    minute: [u16; 7],
    minute_head: u64,
    /// Calls per hour bucket over the last day.
    day: [u32; 25],
    day_head: u64,
    concurrent: u32,
    answered: u32,
    talk_secs: u64,
    blocked: Option<(Instant, Measure)>,
}

fn roll<T: Copy + Default>(b: &mut [T], head: &mut u64, now_b: u64) {
    let n = b.len() as u64;
    if now_b > *head {
        for i in (*head + 1)..=now_b.min(*head + n) {
            b[(i % n) as usize] = T::default();
        }
        *head = now_b;
    }
}

#[derive(Debug, Default)]
struct Table {
    current: HashMap<u64, Entry>,
    previous: HashMap<u64, Entry>,
    rotated: Option<Instant>,
    /// The last number called and how many calls in a row went to it.
    last: (String, u32),
}

impl Table {
    fn entry(&mut self, prefix: u64, cap: usize, now: Instant) -> &mut Entry {
        let old = self.rotated.is_some_and(|t| now.saturating_duration_since(t) >= Duration::from_secs(86_400));
        if !self.current.contains_key(&prefix) && (self.current.len() >= cap.div_ceil(2) || old) {
            self.previous = std::mem::take(&mut self.current);
            self.rotated = Some(now);
        }
        self.rotated.get_or_insert(now);
        if !self.current.contains_key(&prefix) {
            let e = self.previous.remove(&prefix).unwrap_or_default();
            self.current.insert(prefix, e);
        }
        self.current.get_mut(&prefix).expect("inserted")
    }

    fn get_mut(&mut self, prefix: u64) -> Option<&mut Entry> {
        match self.current.get_mut(&prefix) {
            Some(e) => Some(e),
            None => self.previous.get_mut(&prefix),
        }
    }
}

/// The fraud tables of every account.
#[derive(Debug, Default)]
pub struct FraudTables {
    accounts: HashMap<AccountId, Table>,
    origin: Option<Instant>,
}

fn over(t: Threshold, v: u32, warnings: &mut Vec<Measure>, m: Measure) -> Option<Measure> {
    if t.critical.is_some_and(|c| v >= c) {
        return Some(m);
    }
    if t.warning.is_some_and(|w| v >= w) {
        warnings.push(m);
    }
    None
}

impl FraudTables {
    /// Renames accounts after a reload renumbered them (None: removed, its table dropped).
    pub fn remap(&mut self, f: &dyn Fn(AccountId) -> Option<AccountId>) {
        self.accounts =
            std::mem::take(&mut self.accounts).into_iter().filter_map(|(a, t)| f(a).map(|a| (a, t))).collect();
    }

    /// Entries held, over every account.
    pub fn len(&self) -> usize {
        self.accounts.values().map(|t| t.current.len() + t.previous.len()).sum()
    }

    /// Whether no entry is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A new call of `account` to E.164 `digits`: counted, then judged. A blocked call is not
    /// counted as concurrent (it never starts); the key is for [`FraudTables::ended`].
    pub fn call(&mut self, account: AccountId, f: &Fraud, digits: &str, now: Instant) -> (Verdict, FraudKey) {
        let o = *self.origin.get_or_insert(now);
        let secs = now.saturating_duration_since(o).as_secs();
        let prefix = prefix_of(f, digits);
        let key = FraudKey { account, prefix, shared: 0 };
        let mut v = Verdict::default();
        let t = self.accounts.entry(account).or_default();
        if t.last.0 == digits {
            t.last.1 = t.last.1.saturating_add(1);
        } else {
            t.last = (digits.to_string(), 1);
        }
        let same = t.last.1;
        let e = t.entry(prefix, f.max_entries as usize, now);
        if let Some((until, m)) = e.blocked {
            if now < until {
                v.blocked = Some(m);
                return (v, key);
            }
            e.blocked = None;
        }
        roll(&mut e.minute, &mut e.minute_head, secs / 10);
        roll(&mut e.day, &mut e.day_head, secs / 3600);
        let mi = (e.minute_head % 7) as usize;
        e.minute[mi] = e.minute[mi].saturating_add(1);
        let di = (e.day_head % 25) as usize;
        e.day[di] = e.day[di].saturating_add(1);
        let cpm: u32 = e.minute.iter().map(|c| u32::from(*c)).sum();
        let cpd: u32 = e.day.iter().fold(0u32, |a, c| a.saturating_add(*c));
        let avg = (e.answered >= 10).then(|| (e.talk_secs / u64::from(e.answered)) as u32);
        let w = &mut v.warnings;
        let crit = over(f.calls_per_minute, cpm, w, Measure::CallsPerMinute)
            .or_else(|| over(f.concurrent, e.concurrent + 1, w, Measure::Concurrent))
            .or_else(|| over(f.same_number, same, w, Measure::SameNumber))
            .or_else(|| over(f.calls_per_day, cpd, w, Measure::CallsPerDay))
            .or_else(|| avg.and_then(|a| below(f.min_avg_duration_secs, a, w)));
        if let Some(m) = crit {
            e.blocked = Some((now + Duration::from_secs(u64::from(f.cooldown_secs)), m));
            v.blocked = Some(m);
        } else {
            e.concurrent += 1;
        }
        (v, key)
    }

    /// A call admitted by [`FraudTables::call`] ended after `talk_secs` answered (None: never
    /// answered).
    pub fn ended(&mut self, key: FraudKey, talk_secs: Option<u64>) {
        let Some(e) = self.accounts.get_mut(&key.account).and_then(|t| t.get_mut(key.prefix)) else { return };
        e.concurrent = e.concurrent.saturating_sub(1);
        if let Some(s) = talk_secs {
            e.answered = e.answered.saturating_add(1);
            e.talk_secs = e.talk_secs.saturating_add(s);
        }
    }
}

fn below(t: Threshold, avg: u32, warnings: &mut Vec<Measure>) -> Option<Measure> {
    if t.critical.is_some_and(|c| avg < c) {
        return Some(Measure::AvgDuration);
    }
    if t.warning.is_some_and(|w| avg < w) {
        warnings.push(Measure::AvgDuration);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: AccountId = AccountId(0);

    fn cpm(w: u32, c: u32) -> Fraud {
        Fraud {
            calls_per_minute: Threshold { warning: Some(w), critical: Some(c) },
            cooldown_secs: 60,
            ..Fraud::default()
        }
    }

    #[test]
    fn a_burst_warns_then_blocks_until_the_cooldown_ends() {
        let mut f = FraudTables::default();
        let cfg = cpm(3, 5);
        let t0 = Instant::now();
        let mut verdicts = Vec::new();
        for i in 0..8u32 {
            let (v, k) = f.call(A, &cfg, &format!("88212345{i:03}"), t0 + Duration::from_millis(u64::from(i)));
            verdicts.push(v.clone());
            f.ended(k, None);
        }
        assert!(verdicts[..2].iter().all(|v| v.warnings.is_empty() && v.blocked.is_none()));
        assert_eq!(verdicts[2].warnings, vec![Measure::CallsPerMinute]);
        assert_eq!(verdicts[4].blocked, Some(Measure::CallsPerMinute), "the 5th call is critical");
        assert!(verdicts[5..].iter().all(|v| v.blocked.is_some()), "blocked for the cool-down");
        // Another prefix of the same account is not blocked.
        assert_eq!(f.call(A, &cfg, "442071234567", t0).0.blocked, None);
        // After the cool-down (and the minute, counted in 10 s buckets), calls pass again.
        assert_eq!(f.call(A, &cfg, "882123450001", t0 + Duration::from_secs(71)).0.blocked, None);
    }

    #[test]
    fn concurrent_and_same_number_and_short_calls() {
        let mut f = FraudTables::default();
        let t0 = Instant::now();
        let cfg = Fraud { concurrent: Threshold { warning: None, critical: Some(2) }, ..Fraud::default() };
        let (_, k) = f.call(A, &cfg, "441234567890", t0);
        assert_eq!(f.call(A, &cfg, "441234567891", t0).0.blocked, Some(Measure::Concurrent));
        f.ended(k, None);
        f.ended(k, None);
        f.ended(k, None); // never below zero
        let cfg = Fraud { same_number: Threshold { warning: Some(2), critical: Some(3) }, ..Fraud::default() };
        let mut f = FraudTables::default();
        assert_eq!(f.call(A, &cfg, "15551234567", t0).0, Verdict::default());
        assert_eq!(f.call(A, &cfg, "15551234567", t0).0.warnings, vec![Measure::SameNumber]);
        assert_eq!(f.call(A, &cfg, "15551234567", t0).0.blocked, Some(Measure::SameNumber));
        let cfg = Fraud { min_avg_duration_secs: Threshold { warning: None, critical: Some(5) }, ..Fraud::default() };
        let mut f = FraudTables::default();
        for i in 0..10 {
            let (v, k) = f.call(A, &cfg, &format!("3312345678{i}"), t0);
            assert_eq!(v.blocked, None);
            f.ended(k, Some(1));
        }
        assert_eq!(f.call(A, &cfg, "33123456789", t0).0.blocked, Some(Measure::AvgDuration));
    }

    #[test]
    fn tables_stay_bounded() {
        let mut f = FraudTables::default();
        let cfg = Fraud { prefix_digits: 15, max_entries: 1000, ..cpm(1000, 2000) };
        let t0 = Instant::now();
        for i in 0..100_000u64 {
            let (_, k) = f.call(A, &cfg, &(440_000_000_000 + i).to_string(), t0);
            f.ended(k, Some(30));
        }
        assert!(f.len() <= 1000, "{}", f.len());
    }
}
