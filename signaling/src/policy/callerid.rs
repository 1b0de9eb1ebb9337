//! The numbers step: destinations of the caller's account, caller-ID rules (CLI prefix blocks,
//! ownership, P-Asserted-Identity by trust, `Privacy`) and how the numbers are written toward
//! the outbound trunk (RFC 3323, RFC 3325).

use xtrunk_config::{Snapshot, TrunkId};

use super::numbers::{self, E164};
use super::{IncomingCall, RejectReason};

/// The numbers as they go to the outbound trunk.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NumberPlan {
    /// Request-URI and To user (None: as dialled).
    pub callee: Option<String>,
    /// From user (None: as received).
    pub caller: Option<String>,
    /// P-Asserted-Identity user to send (only toward a trusted trunk).
    pub pai: Option<String>,
    /// The caller asked for privacy (`Privacy: id`/`user`/`header`): From is anonymised and
    /// `Privacy: id` sent along with the PAI.
    pub privacy: bool,
    /// The called number in E.164 digits, when it is one (for fraud tables).
    pub e164: Option<String>,
}

/// The user of a P-Asserted-Identity value (`<sip:+44…@host>`, `tel:+44…`).
pub fn pai_user(v: &str) -> Option<&str> {
    let v = v.split(',').next()?.trim();
    let i = v
        .find("sip:")
        .map(|i| i + 4)
        .or_else(|| v.find("sips:").map(|i| i + 5))
        .or_else(|| v.find("tel:").map(|i| i + 4))?;
    let rest = &v[i..];
    let end = rest.find(['@', ';', '>']).unwrap_or(rest.len());
    Some(&rest[..end]).filter(|u| !u.is_empty())
}

/// Whether a `Privacy` header value asks to hide the caller (RFC 3323 §4.2, RFC 3325 §9.3).
pub fn wants_privacy(v: &str) -> bool {
    v.split([';', ',']).map(str::trim).any(|t| ["id", "user", "header"].iter().any(|p| t.eq_ignore_ascii_case(p)))
}

/// Whether any numbers rule applies to a call from `tin` to `tout`.
fn applies(cfg: &Snapshot, call: &IncomingCall<'_>, tin: TrunkId, tout: TrunkId) -> bool {
    let (i, o) = (cfg.trunk(tin), cfg.trunk(tout));
    i.account.is_some() || i.numbers != Default::default() || o.numbers != Default::default() || call.privacy.is_some()
}

/// Decides the numbers of a call; see the module docs.
pub fn plan(cfg: &Snapshot, call: &IncomingCall<'_>, tin: TrunkId, tout: TrunkId) -> Result<NumberPlan, RejectReason> {
    if !applies(cfg, call, tin, tout) {
        return Ok(NumberPlan::default());
    }
    let (ti, to) = (cfg.trunk(tin), cfg.trunk(tout));
    let country = ti.numbers.country;
    let account = ti.account.map(|a| cfg.account(a));
    let callee = numbers::normalise(call.user, country);
    if let Some(a) = account {
        let n = callee.as_ref().ok_or(RejectReason::InvalidNumber)?;
        numbers::destination(&a.destinations, n)?;
    }
    let from = call.from_user.and_then(|u| numbers::normalise(u, country));
    let trusted_pai = call.pai.filter(|_| ti.numbers.trusted).and_then(pai_user);
    let cli: Option<E164> = trusted_pai.and_then(|u| numbers::normalise(u, country)).or_else(|| from.clone());
    if let Some(n) = &cli {
        if numbers::cli_blocked(ti, n) || numbers::cli_blocked(to, n) {
            return Err(RejectReason::BlockedCli);
        }
    }
    let mut verified = None;
    if let Some(a) = account.filter(|a| a.destinations.owned_caller_id) {
        match &cli {
            Some(n) if numbers::owned(cfg, a, n) => verified = Some(n.clone()),
            _ => return Err(RejectReason::UnknownCallerId),
        }
    }
    // The asserted identity: a trusted trunk's own assertion, else the number we verified.
    let asserted = if ti.numbers.trusted { cli.clone() } else { verified };
    let privacy = call.privacy.is_some_and(wants_privacy);
    Ok(NumberPlan {
        callee: callee.as_ref().map(|n| numbers::format_for(to, n, call.user)),
        caller: from.as_ref().zip(call.from_user).map(|(n, raw)| numbers::format_for(to, n, raw)),
        pai: asserted.filter(|_| to.numbers.trusted).map(|n| numbers::format_for(to, &n, &format!("+{}", n.digits))),
        privacy,
        e164: callee.map(|n| n.digits),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pai_and_privacy_values() {
        assert_eq!(pai_user("<sip:+442071234567@10.0.0.1;user=phone>"), Some("+442071234567"));
        assert_eq!(pai_user("\"Alice\" <tel:+15551234567>"), Some("+15551234567"));
        assert_eq!(pai_user("<sip:@x>"), None);
        assert!(wants_privacy("id") && wants_privacy("header; id") && wants_privacy("user"));
        assert!(!wants_privacy("none") && !wants_privacy("critical"));
    }
}
