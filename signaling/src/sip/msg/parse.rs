//! The parser: whole messages, stream framing, and the syntax checks that answer 400.

use std::borrow::Cow;

use super::{is_token, CSeq, HName, Header, Message, Method, NameAddrRef, StartLine, Uri, ViaRef};

/// Why a message was refused. `reason` is the phrase used in the 400 response.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct ParseError {
    /// E.g. `Bad Content-Length`. Also the metrics key.
    pub reason: &'static str,
    /// The first line looked like a request (a response to it may be possible).
    pub is_request: bool,
    /// The headers that could be read (to build a 400 from Via/From/To/Call-ID/CSeq).
    pub headers: Vec<Header>,
    /// The status code to answer with (400, or 505 for a bad version).
    pub code: u16,
}

impl ParseError {
    fn new(reason: &'static str) -> Self {
        Self { reason, is_request: false, headers: Vec::new(), code: 400 }
    }
}

/// Where a stream frame ends: `Ok(Some(n))` when `buf[..n]` is one whole message (headers plus
/// Content-Length body), `Ok(None)` when more bytes are needed. Leading CRLFs (keep-alives) must be
/// stripped by the caller. A stream message without Content-Length cannot be framed: error.
/// Each call searches `buf` from its start; a connection's reader resumes instead
/// (`tcp::Framer`), calling [`frame_total`] once per frame.
pub fn frame_len(buf: &[u8], max: usize) -> Result<Option<usize>, ParseError> {
    let Some(hend) = find(buf, b"\r\n\r\n") else {
        if buf.len() > max {
            return Err(ParseError::new("Message Too Large"));
        }
        return Ok(None);
    };
    let total = frame_total(&buf[..hend])?;
    if total > max {
        return Err(ParseError::new("Message Too Large"));
    }
    Ok(if buf.len() >= total { Some(total) } else { None })
}

/// The length of a whole stream frame whose header block (start line and headers, without the
/// blank line) is `head`: `head`, CRLFCRLF, then Content-Length bytes of body. Errors: the
/// header block is not UTF-8, Content-Length is missing or not a number.
pub fn frame_total(head: &[u8]) -> Result<usize, ParseError> {
    let head = std::str::from_utf8(head).map_err(|_| ParseError::new("Bad Header"))?;
    let mut cl: Option<usize> = None;
    for line in head.split("\r\n").skip(1) {
        if line.starts_with([' ', '\t']) {
            continue;
        }
        let Some((n, v)) = line.split_once(':') else { continue };
        if HName::parse(n.trim_end()) == HName::ContentLength {
            let v = v.trim();
            cl = Some(parse_digits(v).ok_or(ParseError::new("Bad Content-Length"))?);
        }
    }
    let cl = cl.ok_or(ParseError::new("Missing Content-Length"))?;
    head.len().checked_add(4 + cl).ok_or(ParseError::new("Bad Content-Length"))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn parse_digits(s: &str) -> Option<usize> {
    if s.is_empty() || s.len() > 9 || !s.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Splits a header value on commas outside quoted strings and angle brackets.
pub fn split_list(v: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut in_q, mut in_a, mut esc) = (false, false, false);
    let mut start = 0;
    for (i, c) in v.char_indices() {
        if esc {
            esc = false;
            continue;
        }
        match c {
            '\\' if in_q => esc = true,
            '"' => in_q = !in_q,
            '<' if !in_q => in_a = true,
            '>' if !in_q => in_a = false,
            ',' if !in_q && !in_a => {
                out.push(v[start..i].trim());
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(v[start..].trim());
    out
}

/// Parses one message from a datagram (or a frame). Octets after `Content-Length` are ignored
/// (RFC 3261 §18.3); a Content-Length larger than what is present is an error. A datagram
/// without Content-Length takes the rest as its body.
pub fn parse(buf: &[u8]) -> Result<Message, ParseError> {
    let (head, rest, unterminated) = split_head(buf);
    let head = std::str::from_utf8(head).map_err(|_| ParseError::new("Bad Header Encoding"))?;
    let (first, hdrs) = head.split_once("\r\n").unwrap_or((head, ""));
    let is_request = !first.starts_with("SIP/");

    // Headers first: a 400 needs them even when the start line is bad.
    let (headers, err) = read_headers(hdrs);
    let fail = |reason: &'static str, headers: Vec<Header>| ParseError { reason, is_request, headers, code: 400 };

    let start = match parse_start(first) {
        Ok(s) => s,
        Err(r) => return Err(fail(r, headers)),
    };
    if let StartLine::Request { version, .. } = &start {
        if version != "SIP/2.0" {
            return Err(ParseError { reason: "Version Not Supported", is_request, headers, code: 505 });
        }
    }
    if let Some(r) = err {
        return Err(fail(r, headers));
    }
    if let Some(r) = repeated_single(&headers) {
        return Err(fail(r, headers));
    }

    // Body framing.
    let body = match headers.iter().find(|h| h.name == HName::ContentLength) {
        Some(h) => match parse_digits(&h.value) {
            Some(n) if n <= rest.len() => rest[..n].to_vec(),
            _ => return Err(fail("Bad Content-Length", headers)),
        },
        None => rest.to_vec(),
    };

    let msg = Message { start, headers, body };
    if let Err(r) = check_headers(&msg) {
        let Message { headers, .. } = msg;
        return Err(fail(r, headers));
    }
    if unterminated {
        let Message { headers, .. } = msg;
        return Err(fail("Bad Message Framing", headers));
    }
    Ok(msg)
}

/// Splits a datagram into the head (start line and headers), the rest after the empty line, and
/// whether the empty line was missing.
fn split_head(buf: &[u8]) -> (&[u8], &[u8], bool) {
    // Leading CRLFs are tolerated (RFC 3261 §7.5).
    let mut buf = buf;
    while buf.starts_with(b"\r\n") {
        buf = &buf[2..];
    }
    // A message without the empty line is malformed, but its headers are still read so that
    // a request can be answered 400.
    match find(buf, b"\r\n\r\n") {
        Some(i) => (&buf[..i], &buf[i + 4..], false),
        None => {
            let mut h = buf;
            while h.ends_with(b"\r\n") {
                h = &h[..h.len() - 2];
            }
            (h, &buf[buf.len()..], true)
        }
    }
}

/// Reads the header lines (after the start line): unfolds, splits list values, and returns the
/// headers with the first fault found in them.
fn read_headers(hdrs: &str) -> (Vec<Header>, Option<&'static str>) {
    let mut headers = Vec::with_capacity(16);
    let mut err: Option<&'static str> = None;
    // The header being read: its name and value, borrowed from the datagram until a folded
    // continuation line forces a copy (one allocation per header value otherwise).
    let mut cur: Option<(&str, Cow<'_, str>)> = None;
    if !hdrs.is_empty() {
        for line in hdrs.split("\r\n") {
            // A bare CR or LF, or another control character that is not a quoted-pair: never
            // valid in a header (RFC 3261 §25.1: TEXT-UTF8, LWS = CRLF-folded SP/HTAB;
            // quoted-pair = "\" followed by anything but CR and LF). The header is dropped, not
            // kept, so that neither an answer (a 400 echoes From/To) nor the other leg can carry it.
            if has_bad_control(line.as_bytes()) {
                err.get_or_insert("Bad Header Value");
                if line.starts_with([' ', '\t']) {
                    cur = None;
                }
                continue;
            }
            if line.starts_with([' ', '\t']) {
                match cur.as_mut() {
                    Some((_, v)) => {
                        let v = v.to_mut();
                        v.push(' ');
                        v.push_str(line.trim());
                    }
                    None => {
                        err.get_or_insert("Bad Header Folding");
                    }
                }
                continue;
            }
            flush_header(&mut cur, &mut headers, &mut err);
            match line.split_once(':') {
                Some((n, v)) => {
                    let n = n.trim_end_matches([' ', '\t']);
                    if !is_token(n) {
                        err.get_or_insert("Bad Header Name");
                        continue;
                    }
                    cur = Some((n, Cow::Borrowed(v)));
                }
                None => {
                    err.get_or_insert("Bad Header Line");
                }
            }
        }
        flush_header(&mut cur, &mut headers, &mut err);
    }
    (headers, err)
}

/// CR or LF anywhere, or a control character (other than HTAB) not escaped by a backslash.
fn has_bad_control(line: &[u8]) -> bool {
    // Fast path (every normal line): no control character at all. No early exit, so the
    // compiler vectorizes the loop.
    let any = line.iter().fold(0u8, |acc, &b| acc | (u8::from(b < 0x20) & u8::from(b != b'\t')) | u8::from(b == 0x7f));
    if any == 0 {
        return false;
    }
    line.iter().enumerate().any(|(i, &b)| {
        b == b'\r' || b == b'\n' || (((b < 0x20 && b != b'\t') || b == 0x7f) && (i == 0 || line[i - 1] != b'\\'))
    })
}

/// Ends the header being read (if any): pushes its value, or one entry per list value.
fn flush_header(cur: &mut Option<(&str, Cow<'_, str>)>, headers: &mut Vec<Header>, err: &mut Option<&'static str>) {
    if let Some((n, v)) = cur.take() {
        let name = HName::parse(n);
        let v = v.trim();
        if name.is_list() && v.contains(',') {
            for part in split_list(v) {
                if part.is_empty() && err.is_none() {
                    *err = Some(empty_list_reason(&name));
                }
                headers.push(Header { name: name.clone(), value: part.to_string() });
            }
        } else {
            // A list value without a comma is one (trimmed) element, as `split_list` gives.
            if name.is_list() && v.is_empty() && !name.may_be_empty() && err.is_none() {
                *err = Some(empty_list_reason(&name));
            }
            headers.push(Header { name, value: v.to_string() });
        }
    }
}

/// Single-valued headers: counts each, then reports the first (in header order) seen twice.
fn repeated_single(headers: &[Header]) -> Option<&'static str> {
    let mut counts = [0u8; 7];
    for h in headers {
        if let Some(i) = h.name.single_index() {
            counts[i] = counts[i].saturating_add(1);
        }
    }
    if counts.iter().any(|c| *c > 1) {
        if let Some(h) = headers.iter().find(|h| h.name.single_index().is_some_and(|i| counts[i] > 1)) {
            return Some(multiple_reason(&h.name));
        }
    }
    None
}

fn empty_list_reason(n: &HName) -> &'static str {
    match n {
        HName::Via => "Bad Via",
        HName::Contact => "Bad Contact",
        HName::Route | HName::RecordRoute => "Bad Route",
        _ => "Bad Header",
    }
}

fn multiple_reason(n: &HName) -> &'static str {
    match n {
        HName::From => "Multiple From",
        HName::To => "Multiple To",
        HName::CallId => "Multiple Call-ID",
        HName::CSeq => "Multiple CSeq",
        HName::MaxForwards => "Multiple Max-Forwards",
        HName::ContentLength => "Multiple Content-Length",
        _ => "Multiple Content-Type",
    }
}

fn parse_start(line: &str) -> Result<StartLine, &'static str> {
    if let Some(rest) = line.strip_prefix("SIP/") {
        // Status-Line = SIP-Version SP Status-Code SP Reason-Phrase
        let mut it = rest.splitn(3, ' ');
        let ver = it.next().unwrap_or("");
        let code = it.next().unwrap_or("");
        let reason = it.next().unwrap_or("");
        if ver != "2.0" {
            return Err("Bad Status-Line");
        }
        if code.len() != 3 || !code.bytes().all(|c| c.is_ascii_digit()) {
            return Err("Bad Status-Code");
        }
        let code: u16 = code.parse().map_err(|_| "Bad Status-Code")?;
        if !(100..=699).contains(&code) {
            return Err("Bad Status-Code");
        }
        return Ok(StartLine::Response { code, reason: reason.to_string() });
    }
    // Request-Line = Method SP Request-URI SP SIP-Version (exactly single spaces)
    let parts: Vec<&str> = line.split(' ').collect();
    if parts.len() != 3 {
        return Err("Bad Request-Line");
    }
    let (m, uri, ver) = (parts[0], parts[1], parts[2]);
    if !is_token(m) {
        return Err("Bad Method");
    }
    if !ver.starts_with("SIP/") || ver.len() < 7 {
        return Err("Bad Request-Line");
    }
    // absoluteURI: scheme ":" ...; no LWS, no brackets.
    let Some((scheme, opaque)) = uri.split_once(':') else { return Err("Bad Request-URI") };
    if scheme.is_empty()
        || !scheme.as_bytes()[0].is_ascii_alphabetic()
        || !scheme.bytes().all(|c| c.is_ascii_alphanumeric() || b"+-.".contains(&c))
        || opaque.is_empty()
        || uri.bytes().any(|c| c <= b' ' || c == b'<' || c == b'>' || c == b'"')
    {
        return Err("Bad Request-URI");
    }
    if scheme.eq_ignore_ascii_case("sip") || scheme.eq_ignore_ascii_case("sips") {
        let u = Uri::parse(uri).map_err(|_| "Bad Request-URI")?;
        if u.headers.is_some() {
            return Err("Bad Request-URI");
        }
    }
    Ok(StartLine::Request { method: Method::from_token(m), uri: uri.to_string(), version: ver.to_string() })
}

/// Syntax checks of the headers the B2BUA relies on.
fn check_headers(msg: &Message) -> Result<(), &'static str> {
    for h in &msg.headers {
        match h.name {
            HName::Via => {
                ViaRef::parse(&h.value).map_err(|_| "Bad Via")?;
            }
            HName::From => {
                NameAddrRef::parse(&h.value).map_err(|_| "Bad From")?;
            }
            HName::To => {
                NameAddrRef::parse(&h.value).map_err(|_| "Bad To")?;
            }
            HName::Contact if h.value != "*" => {
                NameAddrRef::parse(&h.value).map_err(|_| "Bad Contact")?;
            }
            HName::Route | HName::RecordRoute => {
                NameAddrRef::parse(&h.value).map_err(|_| "Bad Route")?;
            }
            HName::CSeq => {
                let c = CSeq::parse(&h.value).map_err(|_| "Bad CSeq")?;
                if let StartLine::Request { method, .. } = &msg.start {
                    let ok = &c.method == method;
                    if !ok {
                        return Err("CSeq Method Mismatch");
                    }
                }
            }
            HName::MaxForwards => {
                let v = h.value.as_str();
                if v.is_empty() || v.len() > 6 || !v.bytes().all(|c| c.is_ascii_digit()) {
                    return Err("Bad Max-Forwards");
                }
                let n: u32 = v.parse().map_err(|_| "Bad Max-Forwards")?;
                if n > 255 {
                    return Err("Bad Max-Forwards");
                }
            }
            HName::CallId if h.value.is_empty() || h.value.bytes().any(|c| c <= b' ') => {
                return Err("Bad Call-ID");
            }
            HName::Date if !h.value.ends_with(" GMT") => {
                return Err("Bad Date");
            }
            HName::Expires => {
                let v = h.value.as_str();
                if v.is_empty() || v.len() > 10 || !v.bytes().all(|c| c.is_ascii_digit()) {
                    return Err("Bad Expires");
                }
                if v.parse::<u64>().map_or(true, |n| n > u64::from(u32::MAX)) {
                    return Err("Bad Expires");
                }
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_folding_and_lists() {
        let m = b"INVITE sip:123@h SIP/2.0\r\nv: SIP/2.0/UDP 1.2.3.4:5060;branch=z9hG4bK1, SIP / 2.0 / TCP h2\r\nf: <sip:a@b>;tag=1\r\nt: sip:c@d\r\ni: abc\r\nCSeq: 1\r\n  INVITE\r\nm: <sip:a@1.2.3.4>\r\nl: 0\r\nrequire: x,y\r\n\r\n";
        let p = parse(m).unwrap();
        assert_eq!(p.headers_of(&HName::Via).count(), 2);
        assert_eq!(p.cseq().unwrap().seq, 1);
        assert_eq!(p.from().unwrap().tag(), Some("1"));
        assert_eq!(p.headers_of(&HName::Require).collect::<Vec<_>>(), vec!["x", "y"]);
        let v = p.top_via().unwrap();
        assert_eq!((v.host.as_str(), v.port, v.branch()), ("1.2.3.4", Some(5060), Some("z9hG4bK1")));
    }

    #[test]
    fn content_length_and_framing() {
        let m = b"OPTIONS sip:h SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bKx\r\nContent-Length: 4\r\n\r\nabcdEXTRA";
        assert_eq!(parse(m).unwrap().body, b"abcd");
        assert_eq!(frame_len(m, 1000).unwrap(), Some(m.len() - 5));
        assert_eq!(frame_len(&m[..20], 1000).unwrap(), None);
        let bad = b"OPTIONS sip:h SIP/2.0\r\nContent-Length: 99\r\n\r\nab";
        assert_eq!(parse(bad).unwrap_err().reason, "Bad Content-Length");
    }

    #[test]
    fn round_trip() {
        let m = b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKx\r\nTo: <sip:a@b>;tag=x\r\nContent-Length: 2\r\n\r\nhi";
        let p = parse(m).unwrap();
        assert_eq!(parse(&p.to_bytes()).unwrap(), p);
    }

    #[test]
    fn control_characters_in_a_header_are_refused_and_not_kept() {
        for bad in [
            "\"a\rb\" <sip:a@b>;tag=1",
            "\"a\nInjected: x\" <sip:a@b>;tag=1",
            "\"a\0\" <sip:a@b>;tag=1",
            "\"a\x7f\" <sip:a@b>",
            "\"a\\\r\" <sip:a@b>",
        ] {
            let m = format!("INVITE sip:1@h SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKx\r\nFrom: {bad}\r\nTo: <sip:1@h>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n\r\n");
            let e = parse(m.as_bytes()).unwrap_err();
            assert_eq!((e.reason, e.code), ("Bad Header Value", 400), "{bad:?}");
            assert!(e.headers.iter().all(|h| h.name != HName::From), "{bad:?}: the header is not kept for the 400");
            assert!(e.headers.iter().any(|h| h.name == HName::Via), "the rest is");
        }
        // A folded continuation with a control character drops the whole header.
        let m = b"OPTIONS sip:h SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKx\r\nFrom: <sip:a@b>\r\n ;tag=\x01\r\n\r\n";
        let e = parse(m).unwrap_err();
        assert!(e.headers.iter().all(|h| h.name != HName::From));
        // A quoted-pair may escape a control character other than CR/LF (RFC 4475 `intmeth`).
        assert!(parse(b"OPTIONS sip:h SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKx\r\nFrom: \"a\\\x00\" <sip:a@b>;tag=1\r\nTo: <sip:h>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n\r\n").is_ok());
        // HTAB is whitespace, not a control character.
        assert!(parse(b"OPTIONS sip:h SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKx\r\nFrom:\t<sip:a@b>;tag=1\r\nTo: <sip:h>\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n\r\n").is_ok());
    }

    #[test]
    fn list_headers_that_may_be_empty() {
        let base = "INVITE sip:1@h SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKx\r\nFrom: <sip:a@b>;tag=1\r\nTo: <sip:1@h>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n";
        for h in ["Supported:", "Supported: ", "k:", "Allow:", "Accept:"] {
            let m = parse(format!("{base}{h}\r\n\r\n").as_bytes()).unwrap_or_else(|e| panic!("{h}: {}", e.reason));
            assert!(m.headers.iter().any(|x| x.value.is_empty()), "{h}: kept, empty");
        }
        for h in
            ["Require:", "Proxy-Require:", "Unsupported:", "Contact:", "Route:", "Record-Route:", "Supported: a,,b"]
        {
            assert!(parse(format!("{base}{h}\r\n\r\n").as_bytes()).is_err(), "{h} must not be empty");
        }
    }
}
