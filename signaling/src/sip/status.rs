//! Status codes: reason phrases, the caller-facing mapping of a callee's final, and the
//! response builder of RFC 3261 §8.2.6.

use super::msg::{self, HName, Message, Method, NameAddr, StartLine};

/// Methods we answer (the `Allow` header).
pub const ALLOW: &str = "INVITE, ACK, BYE, CANCEL, OPTIONS, UPDATE, REFER";

/// The caller-facing code for a callee's final response.
pub fn map_final(code: u16) -> u16 {
    match code {
        300..=399 => 480,
        401 | 407 => 403,
        400..=699 => {
            const KNOWN: &[u16] = &[
                400, 403, 404, 405, 406, 408, 410, 413, 414, 415, 416, 420, 421, 423, 480, 481, 482, 483, 484, 485,
                486, 487, 488, 491, 493, 500, 501, 502, 503, 504, 505, 513, 600, 603, 604, 606,
            ];
            if KNOWN.contains(&code) {
                code
            } else {
                code / 100 * 100
            }
        }
        _ => 500,
    }
}

/// The standard reason phrase.
pub fn reason(code: u16) -> &'static str {
    match code {
        100 => "Trying",
        180 => "Ringing",
        183 => "Session Progress",
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        415 => "Unsupported Media Type",
        416 => "Unsupported URI Scheme",
        420 => "Bad Extension",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        483 => "Too Many Hops",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        491 => "Request Pending",
        500 => "Server Internal Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        505 => "Version Not Supported",
        513 => "Message Too Large",
        600 => "Busy Everywhere",
        603 => "Decline",
        _ => "Status",
    }
}

/// Builds a response to `req` (RFC 3261 §8.2.6): Via, From, Call-ID, CSeq copied; To copied with
/// `to_tag` added when it has none.
pub fn response(req: &Message, code: u16, phrase: &str, to_tag: Option<&str>) -> Message {
    let mut r = Message {
        start: StartLine::Response { code, reason: phrase.to_string() },
        headers: Vec::new(),
        body: Vec::new(),
    };
    let invite = req.method() == Some(&Method::Invite);
    for h in &req.headers {
        match h.name {
            HName::Via | HName::From | HName::CallId | HName::CSeq => r.headers.push(h.clone()),
            // The proxies' route set comes back in the dialog-creating answers (RFC 3261 §12.1.1).
            HName::RecordRoute if invite && (101..300).contains(&code) => r.headers.push(h.clone()),
            HName::To => {
                let mut v = h.value.clone();
                if let Some(t) = to_tag {
                    if code > 100 && NameAddr::parse(&v).is_ok_and(|n| n.tag().is_none()) {
                        v.push_str(";tag=");
                        v.push_str(t);
                    }
                }
                r.headers.push(msg::Header { name: HName::To, value: v });
            }
            _ => {}
        }
    }
    if code == 405 || (code == 200 && req.method() == Some(&Method::Options)) {
        r.push(HName::Allow, ALLOW);
    }
    r
}
