//! Numbers: E.164 normalisation (the `phonenumber` crate), destination rules (country,
//! prefix, premium-rate and shared-cost) and caller-ID rules (ownership, CLI prefix blocks,
//! how numbers are written toward a trunk).

use phonenumber::metadata::DATABASE;
use phonenumber::{Mode, PhoneNumber, Type};
use xtrunk_config::{AccountView, Country, DestinationsView, NumberFormat, Snapshot, TrunkView};

use super::RejectReason;

/// A number in E.164 form: its digits (country code first, no `+`) and what the library made
/// of it (None when it could not parse it: the digits are still used for prefix rules).
#[derive(Clone, Debug)]
pub struct E164 {
    /// Digits, country code first.
    pub digits: String,
    parsed: Option<PhoneNumber>,
}

impl E164 {
    /// The country of the number, when the library knows it.
    pub fn country(&self) -> Option<Country> {
        self.parsed.as_ref().and_then(|p| p.country().id())
    }

    /// The number's type (premium-rate, shared-cost...).
    pub fn kind(&self) -> Type {
        self.parsed.as_ref().map_or(Type::Unknown, |p| p.number_type(&DATABASE))
    }
}

/// The user part `raw` as received from a trunk whose national numbers are of `country`:
/// `+4420…`, `004420…`, `4420…` (E.164 digits) or, with a country, `020…` (national). Visual
/// separators (`-`, `.`, space, parentheses) are ignored. None: not a telephone number.
pub fn normalise(raw: &str, country: Option<Country>) -> Option<E164> {
    let raw = raw.split(';').next().unwrap_or(raw);
    let (plus, rest) = match raw.strip_prefix('+') {
        Some(r) => (true, r),
        None => (false, raw),
    };
    let mut digits = String::with_capacity(rest.len());
    for b in rest.bytes() {
        match b {
            b'0'..=b'9' => digits.push(char::from(b)),
            b'-' | b'.' | b' ' | b'(' | b')' => {}
            _ => return None,
        }
    }
    if digits.is_empty() || digits.len() > 17 {
        return None;
    }
    if !plus {
        if let Some(d) = digits.strip_prefix("00") {
            digits = d.to_string();
        } else if digits.starts_with('0') {
            let c = country?;
            let p = phonenumber::parse(Some(c), &digits).ok()?;
            let e = p.format().mode(Mode::E164).to_string();
            return Some(E164 { digits: e.trim_start_matches('+').to_string(), parsed: Some(p) });
        }
    }
    if digits.len() > 15 || digits.starts_with('0') {
        return None;
    }
    let parsed = phonenumber::parse(None, format!("+{digits}")).ok();
    Some(E164 { digits, parsed })
}

/// The destination rules of an account for a called number.
pub fn destination(d: &DestinationsView, n: &E164) -> Result<(), RejectReason> {
    let longest = |list: &[String]| list.iter().filter(|p| n.digits.starts_with(p.as_str())).map(String::len).max();
    let allowed_prefix = longest(&d.allow_prefixes);
    if let Some(deny) = longest(&d.deny_prefixes) {
        if allowed_prefix.is_none_or(|a| a < deny) {
            return Err(RejectReason::DeniedPrefix);
        }
    }
    if allowed_prefix.is_some() {
        return Ok(());
    }
    let country = n.country();
    if !d.allow_countries.is_empty() && !country.is_some_and(|c| d.allow_countries.contains(&c)) {
        return Err(RejectReason::DeniedCountry);
    }
    if country.is_some_and(|c| d.deny_countries.contains(&c)) {
        return Err(RejectReason::DeniedCountry);
    }
    if !d.allow_premium || !d.allow_shared_cost {
        match n.kind() {
            Type::PremiumRate if !d.allow_premium => return Err(RejectReason::PremiumRate),
            Type::SharedCost if !d.allow_shared_cost => return Err(RejectReason::SharedCost),
            _ => {}
        }
    }
    Ok(())
}

/// Whether the caller `n` is blocked by a trunk's CLI prefixes.
pub fn cli_blocked(t: &TrunkView, n: &E164) -> bool {
    t.numbers.cli_block.iter().any(|p| n.digits.starts_with(p.as_str()))
}

/// Whether `n` is one of the account's DIDs.
pub fn owned(cfg: &Snapshot, a: &AccountView, n: &E164) -> bool {
    cfg.did_owner(&n.digits) == Some(a.id)
}

/// `n` written as the trunk `t` wants it; `raw` when its format is `as-is`.
pub fn format_for(t: &TrunkView, n: &E164, raw: &str) -> String {
    match t.numbers.format {
        NumberFormat::AsIs => raw.to_string(),
        NumberFormat::PlusE164 => format!("+{}", n.digits),
        NumberFormat::E164 => n.digits.clone(),
        NumberFormat::International00 => format!("00{}", n.digits),
        NumberFormat::National => match (&n.parsed, t.numbers.country) {
            (Some(p), Some(c)) if p.country().id() == Some(c) => {
                format!("0{}", p.national().value())
            }
            _ => format!("00{}", n.digits),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use phonenumber::country::Id;

    fn dest() -> DestinationsView {
        DestinationsView { owned_caller_id: false, ..Default::default() }
    }

    #[test]
    fn normalises_the_usual_forms() {
        for (raw, c, want) in [
            ("+442071234567", None, "442071234567"),
            ("00442071234567", None, "442071234567"),
            ("442071234567", None, "442071234567"),
            ("020 7123-4567", Some(Id::GB), "442071234567"),
            ("+1 (555) 123-4567", None, "15551234567"),
        ] {
            assert_eq!(normalise(raw, c).map(|n| n.digits), Some(want.to_string()), "{raw}");
        }
        assert!(normalise("02071234567", None).is_none(), "national without a country");
        assert!(normalise("alice", None).is_none());
        assert!(normalise("", None).is_none());
        assert!(normalise("+1234567890123456", None).is_none(), "over 15 digits");
    }

    #[test]
    fn country_and_type() {
        let n = normalise("+442071234567", None).unwrap();
        assert_eq!(n.country(), Some(Id::GB));
        assert_eq!(normalise("+449001234567", None).unwrap().kind(), Type::PremiumRate);
        assert_eq!(normalise("+33891234567", None).unwrap().kind(), Type::PremiumRate);
    }

    #[test]
    fn premium_and_shared_cost_are_blocked_by_default() {
        let d = dest();
        let prem = normalise("+449001234567", None).unwrap();
        assert_eq!(destination(&d, &prem), Err(RejectReason::PremiumRate));
        assert_eq!(destination(&DestinationsView { allow_premium: true, ..dest() }, &prem), Ok(()));
        assert_eq!(destination(&d, &normalise("+442071234567", None).unwrap()), Ok(()));
    }

    #[test]
    fn countries_and_prefixes() {
        let gb = normalise("+442071234567", None).unwrap();
        let fr = normalise("+33142685300", None).unwrap();
        let d = DestinationsView { allow_countries: vec![Id::GB], ..dest() };
        assert_eq!((destination(&d, &gb), destination(&d, &fr)), (Ok(()), Err(RejectReason::DeniedCountry)));
        let d = DestinationsView { deny_countries: vec![Id::FR], ..dest() };
        assert_eq!(destination(&d, &fr), Err(RejectReason::DeniedCountry));
        let d = DestinationsView { deny_countries: vec![Id::FR], allow_prefixes: vec!["331".into()], ..dest() };
        assert_eq!(destination(&d, &fr), Ok(()), "an allowed prefix beats the country");
        let d = DestinationsView { deny_prefixes: vec!["4420".into()], ..dest() };
        assert_eq!(destination(&d, &gb), Err(RejectReason::DeniedPrefix));
        let d = DestinationsView { deny_prefixes: vec!["44".into()], allow_prefixes: vec!["4420".into()], ..dest() };
        assert_eq!(destination(&d, &gb), Ok(()), "the longer prefix wins");
    }
}
