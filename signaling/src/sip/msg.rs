//! The SIP message model and its parser/serializer.
//!
//! The parser reads a whole message (a UDP datagram, or one frame cut from a TCP stream by
//! [`frame_len`]) into an owned [`Message`]. It accepts what RFC 3261 §7 asks parsers to accept:
//! header folding (LWS with CRLF), case-insensitive names, compact forms (`v f t i m l c k s e o r u
//! x`), several values per header line (split on commas outside quotes and angle brackets), LWS
//! around `:`. It rejects, with a reason phrase naming the fault, what RFC 4475 §3.1.2 calls invalid.
//! Input is never trusted: no index can panic, and every failure is a [`ParseError`].

use std::fmt;

mod header;
mod parse;

pub use header::{param, CSeq, NameAddr, NameAddrRef, Params, Uri, Via, ViaRef};
pub use parse::{frame_len, frame_total, parse, split_list, ParseError};

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

    /// List headers whose whole value may be empty (RFC 3261 §25.1: `Supported`, `Allow` and
    /// `Accept` are `[ element *(COMMA element) ]`; an empty `Accept` means "no body formats").
    /// The others need at least one element, and no list may have an empty element.
    fn may_be_empty(&self) -> bool {
        matches!(self, Self::Supported | Self::Allow | Self::Accept)
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

/// Token characters (RFC 3261 §25.1).
pub fn is_token_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&c)
}

fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_token_char)
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
        self.to_bytes_with(None)
    }

    /// [`Message::to_bytes`] with `extra` (`name`, `value`) as one more header, written without
    /// copying the message (our `Server`/`User-Agent`).
    pub fn to_bytes_with(&self, extra: Option<(&str, &str)>) -> Vec<u8> {
        // Plain appends (no `fmt` machinery): this runs for every message we send.
        let size = 96
            + self.body.len()
            + self.headers.iter().map(|h| h.name.as_str().len() + h.value.len() + 4).sum::<usize>();
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
        if let Some((n, v)) = extra {
            for part in [n.as_bytes(), b": ", v.as_bytes(), b"\r\n"] {
                out.extend_from_slice(part);
            }
        }
        out.extend_from_slice(b"Content-Length: ");
        push_decimal(&mut out, self.body.len() as u64);
        out.extend_from_slice(b"\r\n\r\n");
        out.extend_from_slice(&self.body);
        out
    }
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
