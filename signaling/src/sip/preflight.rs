//! Application-level checks of a request before any processing (RFC 3261 §8.2).

use super::msg::{HName, Message, Method};

/// A refusal: status, reason phrase, and a header to add (Unsupported, Accept).
pub type Refusal = (u16, &'static str, Option<(HName, String)>);

/// Application-level checks of a request before any processing: the status to refuse it with.
/// Also used by the RFC 4475 tests.
pub fn preflight(req: &Message) -> Option<Refusal> {
    for n in [HName::From, HName::To, HName::CallId, HName::CSeq] {
        if req.header(&n).is_none() {
            return Some((
                400,
                match n {
                    HName::From => "Missing From",
                    HName::To => "Missing To",
                    HName::CallId => "Missing Call-ID",
                    _ => "Missing CSeq",
                },
                None,
            ));
        }
    }
    let hops_spent = req.header(&HName::MaxForwards).is_some_and(|v| v.trim_start_matches('0').is_empty());
    if hops_spent && req.method() != Some(&Method::Ack) {
        return Some((483, "Too Many Hops", None));
    }
    let uri = req.uri().unwrap_or("");
    let scheme = uri.split(':').next().unwrap_or("").to_ascii_lowercase();
    if !matches!(scheme.as_str(), "sip" | "sips" | "tel") {
        return Some((416, "Unsupported URI Scheme", None));
    }
    let m = req.method()?;
    if !matches!(m, Method::Ack | Method::Cancel) {
        let unknown: Vec<&str> = req
            .headers_of(&HName::Require)
            .chain(req.headers_of(&HName::ProxyRequire))
            .flat_map(|v| v.split(','))
            .map(str::trim)
            // Session timers (RFC 4028) are served: `call::session_timer`.
            .filter(|t| !t.is_empty() && !t.eq_ignore_ascii_case("timer"))
            .collect();
        if !unknown.is_empty() {
            return Some((420, "Bad Extension", Some((HName::Unsupported, unknown.join(", ")))));
        }
    }
    if matches!(m, Method::Invite | Method::Update) {
        if !req.body.is_empty() {
            let ct = req.header(&HName::ContentType).unwrap_or("");
            let ct = ct.split(';').next().unwrap_or("").trim();
            if !ct.eq_ignore_ascii_case("application/sdp") {
                return Some((415, "Unsupported Media Type", Some((HName::Accept, "application/sdp".into()))));
            }
        }
        let accepts: Vec<&str> = req.headers_of(&HName::Accept).collect();
        if !accepts.is_empty()
            && !accepts.iter().any(|a| {
                let a = a.split(';').next().unwrap_or("").trim();
                a.eq_ignore_ascii_case("application/sdp") || a == "*/*" || a.eq_ignore_ascii_case("application/*")
            })
        {
            return Some((406, "Not Acceptable", Some((HName::Accept, "application/sdp".into()))));
        }
    }
    None
}
