//! Typed views of header values: Via, CSeq, name-addr, SIP URI, and `;name=value` parameters.

// The `parse` functions return `Result<_, ()>`: that is their public signature, and every caller
// maps the unit error to its own reason phrase (`Bad Via`, `Bad From`, ...).
#![allow(clippy::result_unit_err)]

use super::{is_token, Method};

/// Generic `;name=value` parameters.
pub type Params = Vec<(String, Option<String>)>;

/// Looks a parameter up (names are case-insensitive).
pub fn param<'a>(p: &'a Params, name: &str) -> Option<Option<&'a str>> {
    p.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_deref())
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
    if host.is_empty() || !host.bytes().all(|c| c.is_ascii_alphanumeric() || b"-._:".contains(&c)) {
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
            if uri.is_empty() || !uri.contains(':') || uri.bytes().any(|c| c <= b' ' || b"?,<>\"".contains(&c)) {
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
