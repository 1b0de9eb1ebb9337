//! Rules over pools of numbers and addresses: account names, DID entries, and overlaps between
//! DID entries (anywhere) and between ACL networks of different trunks.
//!
//! Overlaps are found by one sort-and-sweep ([`overlaps`]), `O(n log n)` in the number of entries,
//! not by comparing every pair.

use std::cmp::Ordering;
use std::collections::HashSet;
use std::net::IpAddr;

use ipnet::IpNet;

use super::Validator;
use crate::{Config, DidRange};

/// Names, DID syntax, and DID overlaps (across accounts and within one).
pub(super) fn validate_accounts(cfg: &Config, v: &mut Validator) {
    let mut names = HashSet::new();
    let mut spans = Vec::new();
    for (i, a) in cfg.accounts.iter().enumerate() {
        let p = format!("account[{i}]");
        if a.name.trim().is_empty() {
            v.add(format!("{p}.name"), "must not be empty");
        } else if !names.insert(a.name.as_str()) {
            v.add(format!("{p}.name"), format!("account {:?} is defined twice", a.name));
        }
        super::admission::validate_limits(v, &p, &a.limits);
        super::admission::validate_destinations(v, &p, &a.destinations);
        super::admission::validate_fraud(v, &p, &a.fraud);
        for (j, d) in a.dids.iter().enumerate() {
            match DidRange::parse(d) {
                Ok(r) => spans.push(Span {
                    class: r.digits,
                    lo: r.start.into(),
                    hi: r.end.into(),
                    // Every entry is its own owner: two entries of one account must not overlap either.
                    owner: spans.len(),
                    at: (i, j),
                }),
                Err(reason) => v.add(format!("{p}.dids[{j}]"), reason),
            }
        }
    }
    for (a, b) in overlaps(spans) {
        let (later, earlier) = if a.at > b.at { (a, b) } else { (b, a) };
        let ((li, lj), (ei, ej)) = (later.at, earlier.at);
        let other = &cfg.accounts[ei];
        v.add(
            format!("account[{li}].dids[{lj}]"),
            format!(
                "{:?} overlaps account[{ei}].dids[{ej}] ({:?}, account {:?})",
                cfg.accounts[li].dids[lj], other.dids[ej], other.name
            ),
        );
    }
}

/// The same or nested networks listed by two trunks: the first trunk listed would take every
/// call from the shared addresses, silently misattributing the other trunk's calls.
pub(super) fn validate_acl_overlaps(cfg: &Config, v: &mut Validator) {
    // Every network a trunk's ACL holds, with the key that put it there.
    let mut entries: Vec<(usize, String, IpNet)> = Vec::new();
    for (i, t) in cfg.trunks.iter().enumerate() {
        entries.extend(t.acl.iter().enumerate().map(|(j, n)| (i, format!("trunk[{i}].acl[{j}]"), *n)));
        for (k, a) in t.acl_aliases.iter().enumerate() {
            let nets = cfg.acl_aliases.get(a).into_iter().flatten();
            entries.extend(nets.map(|n| (i, format!("trunk[{i}].acl_aliases[{k}]"), *n)));
        }
    }
    let spans = entries.iter().enumerate().map(|(e, (i, _, net))| {
        let (class, lo, hi) = net_span(net);
        Span { class, lo, hi, owner: *i, at: (e, 0) }
    });
    for (a, b) in overlaps(spans.collect()) {
        let (later, earlier) = if a.at > b.at { (a, b) } else { (b, a) };
        let ((_, ln, lnet), (ek, en, enet)) = (&entries[later.at.0], &entries[earlier.at.0]);
        v.add(
            ln.clone(),
            format!(
                "{lnet} overlaps {en} ({enet}, trunk {:?}); the first trunk listed would take every call \
                 from the shared addresses",
                cfg.trunks[*ek].name
            ),
        );
    }
}

/// `[acl_aliases]` entries and the trunks' references to them.
pub(super) fn validate_acl_aliases(cfg: &Config, v: &mut Validator) {
    for (name, nets) in &cfg.acl_aliases {
        if name.is_empty() || name.chars().any(|c| c.is_control() || c.is_whitespace()) {
            v.add(format!("acl_aliases.{name:?}"), "an alias name must be non-empty, without spaces");
        }
        if nets.is_empty() {
            v.add(format!("acl_aliases.{name}"), "must list at least one network");
        }
    }
    for (i, t) in cfg.trunks.iter().enumerate() {
        for (k, a) in t.acl_aliases.iter().enumerate() {
            if !cfg.acl_aliases.contains_key(a) {
                v.add(format!("trunk[{i}].acl_aliases[{k}]"), format!("no [acl_aliases] entry named {a:?}"));
            }
        }
        if t.verify_port && t.targets.is_empty() && t.registrations.is_empty() && t.domain.is_none() {
            v.add(
                format!("trunk[{i}].verify_port"),
                "needs targets, a domain or registrations (the addresses and ports to verify)",
            );
        }
    }
}

/// A network as an address interval; `class` keeps IPv4 and IPv6 apart.
fn net_span(net: &IpNet) -> (u8, u128, u128) {
    match (net.network(), net.broadcast()) {
        (IpAddr::V4(lo), IpAddr::V4(hi)) => (4, u32::from(lo).into(), u32::from(hi).into()),
        (lo, hi) => (6, ip_bits(lo), ip_bits(hi)),
    }
}

fn ip_bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(a) => u32::from(a).into(),
        IpAddr::V6(a) => a.into(),
    }
}

/// An inclusive interval `lo..=hi` within a `class` (intervals of different classes never
/// overlap), belonging to `owner`, found at config position `at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    class: u8,
    lo: u128,
    hi: u128,
    owner: usize,
    at: (usize, usize),
}

/// Pairs of overlapping spans with different owners: for every span that overlaps some span of
/// another owner starting no later than it, one such pair. So every span involved in an overlap
/// appears in at least one pair, and the list is empty exactly when no two owners overlap.
///
/// Sort by (class, lo) and sweep, keeping the span reaching furthest (`best`) and the one reaching
/// furthest among owners other than `best`'s (`other`): a span of a different owner reaches the
/// current one iff one of those two does. `O(n log n)`.
fn overlaps(mut spans: Vec<Span>) -> Vec<(Span, Span)> {
    spans.sort_by_key(|s| (s.class, s.lo, s.at));
    let mut found = Vec::new();
    let mut best: Option<Span> = None;
    let mut other: Option<Span> = None;
    for s in spans {
        if best.is_some_and(|b| b.class != s.class) {
            (best, other) = (None, None);
        }
        let hit = [best, other].into_iter().flatten().find(|c| c.owner != s.owner && c.hi >= s.lo);
        if let Some(c) = hit {
            found.push((s, c));
        }
        match best {
            None => best = Some(s),
            Some(b) => match s.hi.cmp(&b.hi) {
                Ordering::Greater => {
                    if b.owner != s.owner {
                        other = Some(b);
                    }
                    best = Some(s);
                }
                _ if b.owner != s.owner && other.is_none_or(|o| s.hi > o.hi) => other = Some(s),
                _ => {}
            },
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span(class: u8, lo: u128, hi: u128, owner: usize) -> Span {
        Span { class, lo, hi, owner, at: (owner, lo as usize) }
    }

    /// The quadratic definition the sweep must agree with.
    fn brute(spans: &[Span]) -> HashSet<(usize, u128)> {
        let mut out = HashSet::new();
        for a in spans {
            for b in spans {
                if a != b && a.class == b.class && a.owner != b.owner && a.lo <= b.hi && b.lo <= a.hi {
                    out.insert((a.owner, a.lo));
                }
            }
        }
        out
    }

    #[test]
    fn sweep_agrees_with_pairwise_comparison() {
        // A small deterministic pseudo-random set of cases (LCG), each checked against `brute`.
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = |m: u64| {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (x >> 33) % m
        };
        for _ in 0..500 {
            let n = next(8) as usize;
            let spans: Vec<Span> = (0..n)
                .map(|i| {
                    let lo = u128::from(next(40));
                    span(next(2) as u8, lo, lo + u128::from(next(10)), i % 4 + usize::from(next(2) == 0) * 10)
                })
                .collect();
            let want = brute(&spans);
            let pairs = overlaps(spans.clone());
            let mut got = HashSet::new();
            for (a, b) in &pairs {
                assert!(a.owner != b.owner && a.class == b.class && a.lo <= b.hi && b.lo <= a.hi, "{a:?} {b:?}");
                got.insert((a.owner, a.lo));
                got.insert((b.owner, b.lo));
            }
            assert_eq!(pairs.is_empty(), want.is_empty(), "{spans:?}");
            assert!(got.is_subset(&want), "{spans:?}: {got:?} vs {want:?}");
        }
    }

    #[test]
    fn classes_and_owners_apart() {
        assert!(overlaps(vec![span(4, 0, 10, 0), span(6, 0, 10, 1)]).is_empty());
        assert!(overlaps(vec![span(4, 0, 10, 0), span(4, 5, 6, 0)]).is_empty());
        assert_eq!(overlaps(vec![span(4, 0, 10, 0), span(4, 10, 12, 1)]).len(), 1);
        assert!(overlaps(vec![span(4, 0, 10, 0), span(4, 11, 12, 1)]).is_empty());
    }
}
