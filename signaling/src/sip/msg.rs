//! The SIP message model and its parser/serializer.
//!
//! The parser reads a whole message (a UDP datagram, or one frame cut from a TCP stream by
//! [`frame_len`]) into an owned [`Message`]. It accepts what RFC 3261 §7 asks parsers to accept:
//! header folding (LWS with CRLF), case-insensitive names, compact forms (`v f t i m l c k s e o r u
//! x`), several values per header line (split on commas outside quotes and angle brackets), LWS
//! around `:`. It rejects, with a reason phrase naming the fault, what RFC 4475 §3.1.2 calls invalid.
//! Input is never trusted: no index can panic, and every failure is a [`ParseError`].

use std::borrow::Cow;
use std::fmt;

/// A SIP method.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum Method {
    Invite,
    Ack,
    Bye,
    Cancel,
    Options,
    Register,
    Refer,
    Notify,
    Update,
    Info,
    Message,
    Prack,
    Publish,
    Subscribe,
    /// Any other token (methods are case-sensitive).
    Other(String),
}

impl Method {
    /// Parses a method token (case-sensitive, RFC 3261 §7.1).
    pub fn from_token(s: &str) -> Self {
        match s {
            "INVITE" => Self::Invite,
            "ACK" => Self::Ack,
            "BYE" => Self::Bye,
            "CANCEL" => Self::Cancel,
            "OPTIONS" => Self::Options,
            "REGISTER" => Self::Register,
            "REFER" => Self::Refer,
            "NOTIFY" => Self::Notify,
            "UPDATE" => Self::Update,
            "INFO" => Self::Info,
            "MESSAGE" => Self::Message,
            "PRACK" => Self::Prack,
            "PUBLISH" => Self::Publish,
            "SUBSCRIBE" => Self::Subscribe,
            other => Self::Other(other.to_string()),
        }
    }

    /// The token.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Invite => "INVITE",
            Self::Ack => "ACK",
            Self::Bye => "BYE",
            Self::Cancel => "CANCEL",
            Self::Options => "OPTIONS",
            Self::Register => "REGISTER",
            Self::Refer => "REFER",
            Self::Notify => "NOTIFY",
            Self::Update => "UPDATE",
            Self::Info => "INFO",
            Self::Message => "MESSAGE",
            Self::Prack => "PRACK",
            Self::Publish => "PUBLISH",
            Self::Subscribe => "SUBSCRIBE",
            Self::Other(s) => s,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Header names the B2BUA looks at; everything else is [`HName::Other`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum HName {
    Via,
    From,
    To,
    CallId,
    CSeq,
    MaxForwards,
    ContentLength,
    ContentType,
    Contact,
    RecordRoute,
    Route,
    Require,
    ProxyRequire,
    Supported,
    Unsupported,
    Accept,
    Allow,
    ReferTo,
    ReferredBy,
    Event,
    SubscriptionState,
    Date,
    Expires,
    Server,
    UserAgent,
    Subject,
    ContentEncoding,
    /// Any other name, as received.
    Other(String),
}

impl HName {
    /// Parses a header name: case-insensitive, compact forms expanded.
    pub fn parse(s: &str) -> Self {
        if s.len() == 1 {
            match s.as_bytes()[0].to_ascii_lowercase() {
                b'v' => return Self::Via,
                b'f' => return Self::From,
                b't' => return Self::To,
                b'i' => return Self::CallId,
                b'm' => return Self::Contact,
                b'l' => return Self::ContentLength,
                b'c' => return Self::ContentType,
                b'k' => return Self::Supported,
                b's' => return Self::Subject,
                b'e' => return Self::ContentEncoding,
                b'o' => return Self::Event,
                b'r' => return Self::ReferTo,
                b'b' => return Self::ReferredBy,
                _ => {}
            }
        }
        const TABLE: &[(&str, HName)] = &[
            ("via", HName::Via),
            ("from", HName::From),
            ("to", HName::To),
            ("call-id", HName::CallId),
            ("cseq", HName::CSeq),
            ("max-forwards", HName::MaxForwards),
            ("content-length", HName::ContentLength),
            ("content-type", HName::ContentType),
            ("contact", HName::Contact),
            ("record-route", HName::RecordRoute),
            ("route", HName::Route),
            ("require", HName::Require),
            ("proxy-require", HName::ProxyRequire),
            ("supported", HName::Supported),
            ("unsupported", HName::Unsupported),
            ("accept", HName::Accept),
            ("allow", HName::Allow),
            ("refer-to", HName::ReferTo),
            ("referred-by", HName::ReferredBy),
            ("event", HName::Event),
            ("subscription-state", HName::SubscriptionState),
            ("date", HName::Date),
            ("expires", HName::Expires),
            ("server", HName::Server),
            ("user-agent", HName::UserAgent),
            ("subject", HName::Subject),
            ("content-encoding", HName::ContentEncoding),
        ];
        for (n, h) in TABLE {
            if n.eq_ignore_ascii_case(s) {
                return h.clone();
            }
        }
        Self::Other(s.to_string())
    }

    /// The canonical (long) name.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Via => "Via",
            Self::From => "From",
            Self::To => "To",
            Self::CallId => "Call-ID",
            Self::CSeq => "CSeq",
            Self::MaxForwards => "Max-Forwards",
            Self::ContentLength => "Content-Length",
            Self::ContentType => "Content-Type",
            Self::Contact => "Contact",
            Self::RecordRoute => "Record-Route",
            Self::Route => "Route",
            Self::Require => "Require",
            Self::ProxyRequire => "Proxy-Require",
            Self::Supported => "Supported",
            Self::Unsupported => "Unsupported",
            Self::Accept => "Accept",
            Self::Allow => "Allow",
            Self::ReferTo => "Refer-To",
            Self::ReferredBy => "Referred-By",
            Self::Event => "Event",
            Self::SubscriptionState => "Subscription-State",
            Self::Date => "Date",
            Self::Expires => "Expires",
            Self::Server => "Server",
            Self::UserAgent => "User-Agent",
            Self::Subject => "Subject",
            Self::ContentEncoding => "Content-Encoding",
            Self::Other(s) => s,
        }
    }

    /// Headers whose values are comma-separated lists (RFC 3261 §7.3.1) and are split into one
    /// [`Header`] per value.
    fn is_list(&self) -> bool {
        matches!(
            self,
            Self::Via
                | Self::Contact
                | Self::RecordRoute
                | Self::Route
                | Self::Require
                | Self::ProxyRequire
                | Self::Supported
                | Self::Unsupported
                | Self::Allow
                | Self::Accept
        )
    }

    /// Headers that may appear at most once: their index in a per-message counter table.
    fn single_index(&self) -> Option<usize> {
        Some(match self {
            Self::From => 0,
            Self::To => 1,
            Self::CallId => 2,
            Self::CSeq => 3,
            Self::MaxForwards => 4,
            Self::ContentLength => 5,
            Self::ContentType => 6,
            _ => return None,
        })
    }
}

/// One header value (list headers are split, one entry per value).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// The name.
    pub name: HName,
    /// The value, unfolded, trimmed.
    pub value: String,
}

/// The first line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StartLine {
    /// A request.
    Request {
        /// Method.
        method: Method,
        /// Request-URI, as received.
        uri: String,
        /// Version text (`SIP/2.0` expected; others answered 505).
        version: String,
    },
    /// A response.
    Response {
        /// Status code, 100..=699.
        code: u16,
        /// Reason phrase.
        reason: String,
    },
}

/// A SIP message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// Request- or Status-Line.
    pub start: StartLine,
    /// Headers in order (list values split).
    pub headers: Vec<Header>,
    /// The body.
    pub body: Vec<u8>,
}

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

/// Token characters (RFC 3261 §25.1).
pub fn is_token_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&c)
}

fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token_char)
}

/// Where a stream frame ends: `Ok(Some(n))` when `buf[..n]` is one whole message (headers plus
/// Content-Length body), `Ok(None)` when more bytes are needed. Leading CRLFs (keep-alives) must be
/// stripped by the caller. A stream message without Content-Length cannot be framed: error.
pub fn frame_len(buf: &[u8], max: usize) -> Result<Option<usize>, ParseError> {
    let Some(hend) = find(buf, b"\r\n\r\n") else {
        if buf.len() > max {
            return Err(ParseError::new("Message Too Large"));
        }
        return Ok(None);
    };
    let head = std::str::from_utf8(&buf[..hend]).map_err(|_| ParseError::new("Bad Header"))?;
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
    let total = hend + 4 + cl;
    if total > max {
        return Err(ParseError::new("Message Too Large"));
    }
    Ok(if buf.len() >= total { Some(total) } else { None })
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
    // Leading CRLFs are tolerated (RFC 3261 §7.5).
    let mut buf = buf;
    while buf.starts_with(b"\r\n") {
        buf = &buf[2..];
    }
    // A message without the empty line is malformed, but its headers are still read so that
    // a request can be answered 400.
    let (head, rest, unterminated) = match find(buf, b"\r\n\r\n") {
        Some(i) => (&buf[..i], &buf[i + 4..], false),
        None => {
            let mut h = buf;
            while h.ends_with(b"\r\n") {
                h = &h[..h.len() - 2];
            }
            (h, &buf[buf.len()..], true)
        }
    };
    let head = std::str::from_utf8(head).map_err(|_| ParseError::new("Bad Header Encoding"))?;
    let (first, hdrs) = head.split_once("\r\n").unwrap_or((head, ""));
    let is_request = !first.starts_with("SIP/");

    // Headers first: a 400 needs them even when the start line is bad.
    let mut headers = Vec::with_capacity(16);
    let mut err: Option<&'static str> = None;
    // The header being read: its name and value, borrowed from the datagram until a folded
    // continuation line forces a copy (one allocation per header value otherwise).
    let mut cur: Option<(&str, Cow<'_, str>)> = None;
    let flush = |cur: &mut Option<(&str, Cow<'_, str>)>, headers: &mut Vec<Header>, err: &mut Option<&'static str>| {
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
                if name.is_list() && v.is_empty() && err.is_none() {
                    *err = Some(empty_list_reason(&name));
                }
                headers.push(Header { name, value: v.to_string() });
            }
        }
    };
    if !hdrs.is_empty() {
        for line in hdrs.split("\r\n") {
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
            flush(&mut cur, &mut headers, &mut err);
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
        flush(&mut cur, &mut headers, &mut err);
    }
    let fail = |reason: &'static str, headers: Vec<Header>| ParseError {
        reason,
        is_request,
        headers,
        code: 400,
    };

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

    // Single-valued headers: count each, then report the first (in header order) seen twice.
    let mut counts = [0u8; 7];
    for h in &headers {
        if let Some(i) = h.name.single_index() {
            counts[i] = counts[i].saturating_add(1);
        }
    }
    if counts.iter().any(|c| *c > 1) {
        if let Some(h) = headers.iter().find(|h| h.name.single_index().is_some_and(|i| counts[i] > 1)) {
            let r = multiple_reason(&h.name);
            return Err(fail(r, headers));
        }
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
    Ok(StartLine::Request {
        method: Method::from_token(m),
        uri: uri.to_string(),
        version: ver.to_string(),
    })
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
            HName::Contact => {
                if h.value != "*" {
                    NameAddrRef::parse(&h.value).map_err(|_| "Bad Contact")?;
                }
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
            HName::CallId => {
                if h.value.is_empty() || h.value.bytes().any(|c| c <= b' ') {
                    return Err("Bad Call-ID");
                }
            }
            HName::Date => {
                if !h.value.ends_with(" GMT") {
                    return Err("Bad Date");
                }
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

impl Message {
    /// A request with no headers yet.
    pub fn request(method: Method, uri: impl Into<String>) -> Self {
        Self {
            start: StartLine::Request { method, uri: uri.into(), version: "SIP/2.0".into() },
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// The method (requests) or `None`.
    pub fn method(&self) -> Option<&Method> {
        match &self.start {
            StartLine::Request { method, .. } => Some(method),
            StartLine::Response { .. } => None,
        }
    }

    /// The status code (responses) or `None`.
    pub fn code(&self) -> Option<u16> {
        match &self.start {
            StartLine::Response { code, .. } => Some(*code),
            StartLine::Request { .. } => None,
        }
    }

    /// Request-URI.
    pub fn uri(&self) -> Option<&str> {
        match &self.start {
            StartLine::Request { uri, .. } => Some(uri),
            StartLine::Response { .. } => None,
        }
    }

    /// First value of a header.
    pub fn header(&self, n: &HName) -> Option<&str> {
        self.headers.iter().find(|h| &h.name == n).map(|h| h.value.as_str())
    }

    /// Every value of a header, in order.
    pub fn headers_of<'a>(&'a self, n: &'a HName) -> impl Iterator<Item = &'a str> + 'a {
        self.headers.iter().filter(move |h| &h.name == n).map(|h| h.value.as_str())
    }

    /// Appends a header.
    pub fn push(&mut self, n: HName, v: impl Into<String>) -> &mut Self {
        self.headers.push(Header { name: n, value: v.into() });
        self
    }

    /// Removes every value of a header.
    pub fn remove(&mut self, n: &HName) {
        self.headers.retain(|h| &h.name != n);
    }

    /// Replaces every value of a header with one.
    pub fn set(&mut self, n: HName, v: impl Into<String>) {
        let v = v.into();
        match self.headers.iter().position(|h| h.name == n) {
            Some(i) => {
                self.headers[i].value = v;
                let mut j = 0;
                self.headers.retain(|h| {
                    j += 1;
                    j - 1 == i || h.name != n
                });
            }
            None => self.headers.push(Header { name: n, value: v }),
        }
    }

    /// Top Via, parsed.
    pub fn top_via(&self) -> Option<Via> {
        self.header(&HName::Via).and_then(|v| Via::parse(v).ok())
    }

    /// Top Via, parsed into borrowed parts (no allocation).
    pub fn top_via_ref(&self) -> Option<ViaRef<'_>> {
        self.header(&HName::Via).and_then(|v| ViaRef::parse(v).ok())
    }

    /// The From tag (no allocation).
    pub fn from_tag(&self) -> Option<&str> {
        self.header(&HName::From).and_then(|v| NameAddrRef::parse(v).ok()).and_then(|n| n.tag())
    }

    /// The To tag (no allocation).
    pub fn to_tag(&self) -> Option<&str> {
        self.header(&HName::To).and_then(|v| NameAddrRef::parse(v).ok()).and_then(|n| n.tag())
    }

    /// CSeq, parsed.
    pub fn cseq(&self) -> Option<CSeq> {
        self.header(&HName::CSeq).and_then(|v| CSeq::parse(v).ok())
    }

    /// Call-ID.
    pub fn call_id(&self) -> Option<&str> {
        self.header(&HName::CallId)
    }

    /// From, parsed.
    pub fn from(&self) -> Option<NameAddr> {
        self.header(&HName::From).and_then(|v| NameAddr::parse(v).ok())
    }

    /// To, parsed.
    pub fn to(&self) -> Option<NameAddr> {
        self.header(&HName::To).and_then(|v| NameAddr::parse(v).ok())
    }

    /// Serializes; `Content-Length` is written from the body (any stored one is ignored).
    pub fn to_bytes(&self) -> Vec<u8> {
        // Plain appends (no `fmt` machinery): this runs for every message we send.
        let size = 64 + self.body.len() + self.headers.iter().map(|h| h.name.as_str().len() + h.value.len() + 4).sum::<usize>();
        let mut out = Vec::with_capacity(size);
        match &self.start {
            StartLine::Request { method, uri, version } => {
                for part in [method.as_str().as_bytes(), b" ", uri.as_bytes(), b" ", version.as_bytes(), b"\r\n"] {
                    out.extend_from_slice(part);
                }
            }
            StartLine::Response { code, reason } => {
                out.extend_from_slice(b"SIP/2.0 ");
                push_decimal(&mut out, u64::from(*code));
                out.push(b' ');
                out.extend_from_slice(reason.as_bytes());
                out.extend_from_slice(b"\r\n");
            }
        }
        for h in &self.headers {
            if h.name == HName::ContentLength {
                continue;
            }
            out.extend_from_slice(h.name.as_str().as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(h.value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"Content-Length: ");
        push_decimal(&mut out, self.body.len() as u64);
        out.extend_from_slice(b"\r\n\r\n");
        out.extend_from_slice(&self.body);
        out
    }
}

/// Generic `;name=value` parameters.
pub type Params = Vec<(String, Option<String>)>;

/// Looks a parameter up (names are case-insensitive).
pub fn param<'a>(p: &'a Params, name: &str) -> Option<Option<&'a str>> {
    p.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_deref())
}

/// Appends the decimal digits of `n`.
pub fn push_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut d = [0u8; 20];
    let mut i = d.len();
    loop {
        i -= 1;
        d[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&d[i..]);
}

/// The `;name[=value]` items of a parameter string, trimmed, without validation.
fn param_items(s: &str) -> impl Iterator<Item = (&str, Option<&str>)> {
    let body = if s.trim().is_empty() { None } else { s.trim_start().strip_prefix(';') };
    body.into_iter().flat_map(|b| b.split(';')).map(|p| match p.split_once('=') {
        Some((n, v)) => (n.trim(), Some(v.trim())),
        None => (p.trim(), None),
    })
}

/// Validates a parameter string the way [`parse_params`] does, without allocating.
fn check_params(s: &str) -> Result<(), ()> {
    if !s.trim().is_empty() && !s.trim_start().starts_with(';') {
        return Err(());
    }
    for (n, v) in param_items(s) {
        if !is_token(n) {
            return Err(());
        }
        if let Some(v) = v {
            let quoted = v.len() >= 2 && v.starts_with('"') && v.ends_with('"');
            if v.is_empty() || (!quoted && v.bytes().any(|c| c <= b' ' || c == b'"')) {
                return Err(());
            }
        }
    }
    Ok(())
}

/// Looks a parameter up in an (already validated) parameter string; names case-insensitive.
fn param_in<'a>(s: &'a str, name: &str) -> Option<Option<&'a str>> {
    param_items(s).find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v)
}

fn parse_params(s: &str) -> Result<Params, ()> {
    check_params(s)?;
    Ok(param_items(s).map(|(n, v)| (n.to_string(), v.map(str::to_string))).collect())
}

/// A parsed Via value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Via {
    /// Transport token, upper case (`UDP`, `TCP`, `TLS`, `SCTP`, ...).
    pub transport: String,
    /// sent-by host (IPv6 without brackets).
    pub host: String,
    /// sent-by port.
    pub port: Option<u16>,
    /// Parameters (`branch`, `rport`, `received`, ...).
    pub params: Params,
}

/// A Via value validated and split into borrowed parts (the hot-path form of [`Via`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ViaRef<'a> {
    /// Transport token as received (compare case-insensitively).
    pub transport: &'a str,
    /// sent-by host (IPv6 without brackets).
    pub host: &'a str,
    /// sent-by port.
    pub port: Option<u16>,
    /// The parameter string (`;branch=...;rport`), validated.
    pub params: &'a str,
}

impl<'a> ViaRef<'a> {
    /// Parses one Via value; accepts exactly what [`Via::parse`] accepts.
    pub fn parse(v: &'a str) -> Result<Self, ()> {
        let mut parts = v.splitn(3, '/');
        let name = parts.next().ok_or(())?.trim();
        let ver = parts.next().ok_or(())?.trim();
        let rest = parts.next().ok_or(())?.trim_start();
        if !name.eq_ignore_ascii_case("SIP") || ver != "2.0" {
            return Err(());
        }
        let tend = rest.find([' ', '\t']).ok_or(())?;
        let transport = &rest[..tend];
        if !is_token(transport) {
            return Err(());
        }
        let rest = rest[tend..].trim_start();
        let pstart = rest.find(';').unwrap_or(rest.len());
        let sent_by = rest[..pstart].trim();
        let (host, port) = hostport(sent_by)?;
        let params = &rest[pstart..];
        check_params(params)?;
        Ok(Self { transport, host, port, params })
    }

    /// A parameter (`Some(None)` for a flag).
    pub fn param(&self, name: &str) -> Option<Option<&'a str>> {
        param_in(self.params, name)
    }

    /// The branch parameter.
    pub fn branch(&self) -> Option<&'a str> {
        self.param("branch").flatten()
    }

    /// The parameters in order, names and values trimmed.
    pub fn param_iter(&self) -> impl Iterator<Item = (&'a str, Option<&'a str>)> {
        param_items(self.params)
    }
}

impl Via {
    /// Parses one Via value, tolerating LWS around `/` (RFC 4475 wsinv).
    pub fn parse(v: &str) -> Result<Self, ()> {
        let r = ViaRef::parse(v)?;
        Ok(Self {
            transport: r.transport.to_ascii_uppercase(),
            host: r.host.to_string(),
            port: r.port,
            params: parse_params(r.params)?,
        })
    }

    /// The branch parameter.
    pub fn branch(&self) -> Option<&str> {
        param(&self.params, "branch").flatten()
    }
}

fn parse_hostport(s: &str) -> Result<(String, Option<u16>), ()> {
    hostport(s).map(|(h, p)| (h.to_string(), p))
}

fn hostport(s: &str) -> Result<(&str, Option<u16>), ()> {
    let (host, port) = if let Some(r) = s.strip_prefix('[') {
        let (h, rest) = r.split_once(']').ok_or(())?;
        let port = match rest.strip_prefix(':') {
            Some(p) => Some(p),
            None if rest.is_empty() => None,
            None => return Err(()),
        };
        (h, port)
    } else {
        match s.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    if host.is_empty()
        || !host.bytes().all(|c| c.is_ascii_alphanumeric() || b"-._:".contains(&c))
    {
        return Err(());
    }
    let port = match port {
        Some(p) => {
            if p.is_empty() || p.len() > 5 || !p.bytes().all(|c| c.is_ascii_digit()) {
                return Err(());
            }
            Some(p.parse::<u16>().map_err(|_| ())?)
        }
        None => None,
    };
    Ok((host, port))
}

/// A parsed CSeq.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CSeq {
    /// Sequence number (< 2^31).
    pub seq: u32,
    /// Method.
    pub method: Method,
}

impl CSeq {
    /// Parses `1*DIGIT LWS Method`, the number below 2^31.
    pub fn parse(v: &str) -> Result<Self, ()> {
        let v = v.trim();
        let i = v.find([' ', '\t']).ok_or(())?;
        let (n, m) = (&v[..i], v[i..].trim());
        if n.is_empty() || n.len() > 10 || !n.bytes().all(|c| c.is_ascii_digit()) || !is_token(m) {
            return Err(());
        }
        let seq: u64 = n.parse().map_err(|_| ())?;
        if seq >= 1 << 31 {
            return Err(());
        }
        Ok(Self { seq: seq as u32, method: Method::from_token(m) })
    }
}

/// A name-addr or addr-spec with header parameters (From, To, Contact, Route, Refer-To).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NameAddr {
    /// Display name, quotes kept as received.
    pub display: Option<String>,
    /// The URI text.
    pub uri: String,
    /// Header parameters (`tag`, `expires`, ...).
    pub params: Params,
}

/// A name-addr validated and split into borrowed parts (the hot-path form of [`NameAddr`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NameAddrRef<'a> {
    /// Display name, quotes kept as received.
    pub display: Option<&'a str>,
    /// The URI text.
    pub uri: &'a str,
    /// The header parameter string, validated.
    pub params: &'a str,
}

impl<'a> NameAddrRef<'a> {
    /// Parses `[display] <uri> *(;param)` or `addr-spec *(;param)`; accepts exactly what
    /// [`NameAddr::parse`] accepts.
    pub fn parse(v: &'a str) -> Result<Self, ()> {
        let v = v.trim();
        let (display, rest) = if let Some(q) = v.strip_prefix('"') {
            let mut end = None;
            let mut esc = false;
            for (i, c) in q.char_indices() {
                if esc {
                    esc = false;
                } else if c == '\\' {
                    esc = true;
                } else if c == '"' {
                    end = Some(i);
                    break;
                }
            }
            let end = end.ok_or(())?;
            let rest = q[end + 1..].trim_start();
            if !rest.starts_with('<') {
                return Err(());
            }
            // The quoted string, quotes included: `v` starts with `"` and `q[end]` is `"`.
            (Some(&v[..end + 2]), rest)
        } else if let Some(lt) = v.find('<') {
            let d = v[..lt].trim();
            if !d.is_empty() && !d.split([' ', '\t']).filter(|w| !w.is_empty()).all(is_token) {
                return Err(());
            }
            ((!d.is_empty()).then_some(d), &v[lt..])
        } else {
            (None, v)
        };
        if let Some(r) = rest.strip_prefix('<') {
            let (uri, params) = r.split_once('>').ok_or(())?;
            if uri.is_empty() || uri.bytes().any(|c| c <= b' ' || c == b'<' || c == b'"') {
                return Err(());
            }
            check_params(params)?;
            Ok(Self { display, uri, params })
        } else {
            // addr-spec: no display name, and the URI can carry neither `?`, `,` nor `;`
            // parameters (they belong to the header).
            let end = rest.find(';').unwrap_or(rest.len());
            let uri = rest[..end].trim();
            if uri.is_empty()
                || !uri.contains(':')
                || uri.bytes().any(|c| c <= b' ' || b"?,<>\"".contains(&c))
            {
                return Err(());
            }
            let params = &rest[end..];
            check_params(params)?;
            Ok(Self { display: None, uri, params })
        }
    }

    /// The tag parameter.
    pub fn tag(&self) -> Option<&'a str> {
        param_in(self.params, "tag").flatten()
    }
}

impl NameAddr {
    /// Parses `[display] <uri> *(;param)` or `addr-spec *(;param)`.
    pub fn parse(v: &str) -> Result<Self, ()> {
        let r = NameAddrRef::parse(v)?;
        Ok(Self { display: r.display.map(str::to_string), uri: r.uri.to_string(), params: parse_params(r.params)? })
    }

    /// The tag parameter.
    pub fn tag(&self) -> Option<&str> {
        param(&self.params, "tag").flatten()
    }

    /// Serializes as name-addr (always bracketed).
    pub fn render(&self) -> String {
        let mut s = String::new();
        if let Some(d) = &self.display {
            s.push_str(d);
            s.push(' ');
        }
        s.push('<');
        s.push_str(&self.uri);
        s.push('>');
        for (n, v) in &self.params {
            s.push(';');
            s.push_str(n);
            if let Some(v) = v {
                s.push('=');
                s.push_str(v);
            }
        }
        s
    }
}

/// A sip:/sips: URI, split into the parts the B2BUA uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Uri {
    /// `sip` or `sips` (lower case).
    pub scheme: String,
    /// userinfo without password.
    pub user: Option<String>,
    /// Host (IPv6 without brackets).
    pub host: String,
    /// Port.
    pub port: Option<u16>,
    /// URI parameters.
    pub params: Params,
    /// The `?headers` part.
    pub headers: Option<String>,
}

impl Uri {
    /// Parses a sip:/sips: URI.
    pub fn parse(s: &str) -> Result<Self, ()> {
        let (scheme, rest) = s.split_once(':').ok_or(())?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "sip" && scheme != "sips" {
            return Err(());
        }
        let (user, hostpart) = match rest.find('@') {
            Some(i) => {
                let u = &rest[..i];
                let u = u.split_once(':').map_or(u, |(u, _pw)| u);
                (Some(u.to_string()), &rest[i + 1..])
            }
            None => (None, rest),
        };
        let (hostpart, headers) = match hostpart.split_once('?') {
            Some((h, q)) => (h, Some(q.to_string())),
            None => (hostpart, None),
        };
        let pstart = hostpart.find(';').unwrap_or(hostpart.len());
        let (host, port) = parse_hostport(&hostpart[..pstart])?;
        let params = parse_params(&hostpart[pstart..])?;
        Ok(Self { scheme, user, host, port, params, headers })
    }

    /// The `transport` parameter, lower case.
    pub fn transport(&self) -> Option<String> {
        param(&self.params, "transport").flatten().map(str::to_ascii_lowercase)
    }
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
}
