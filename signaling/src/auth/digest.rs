//! Digest credentials (RFC 3261 §22.4, RFC 7616, RFC 8760): the typed, bounded parser of
//! `Authorization` / `Proxy-Authorization` values, and the hashes both sides compute.
//!
//! The parser takes any bytes an outsider sends and never panics: parameters in any order,
//! quoted strings with `\` escapes, a duplicate parameter refused, every length bounded
//! ([`MAX_HEADER`], [`MAX_VALUE`], [`MAX_PARAMS`]). Values without escapes borrow from the
//! header; an escaped one is copied once.

use std::borrow::Cow;
use std::fmt::Write as _;

use md5::Md5;
use sha2::{Sha256, Sha512_256};

/// Longest header value parsed; longer is [`DigestError::TooLong`].
pub const MAX_HEADER: usize = 4096;
/// Longest parameter value (after unescaping).
pub const MAX_VALUE: usize = 1024;
/// Most parameters in one header (known and unknown).
pub const MAX_PARAMS: usize = 24;

/// A digest algorithm (RFC 8760 §2.1). The `-sess` variants are not offered and refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// MD5 (RFC 3261): for peers that know nothing else.
    Md5,
    /// SHA-256 (RFC 8760): offered first.
    Sha256,
    /// SHA-512/256 (RFC 8760).
    Sha512_256,
}

impl Algorithm {
    /// Every algorithm, in the order challenges offer them by default.
    pub const ALL: [Algorithm; 3] = [Algorithm::Sha256, Algorithm::Md5, Algorithm::Sha512_256];

    /// The wire token, case-insensitive.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Md5, Self::Sha256, Self::Sha512_256].into_iter().find(|a| a.as_str().eq_ignore_ascii_case(s))
    }

    /// The wire token.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Md5 => "MD5",
            Self::Sha256 => "SHA-256",
            Self::Sha512_256 => "SHA-512-256",
        }
    }

    /// Hex digits of a hash.
    pub fn hex_len(self) -> usize {
        match self {
            Self::Md5 => 32,
            Self::Sha256 | Self::Sha512_256 => 64,
        }
    }

    /// Index into per-algorithm tables.
    pub(crate) fn index(self) -> usize {
        match self {
            Self::Md5 => 0,
            Self::Sha256 => 1,
            Self::Sha512_256 => 2,
        }
    }

    /// `H(p0:p1:...)` in lowercase hex.
    pub fn hash_hex(self, parts: &[&[u8]]) -> String {
        fn run<D: sha2::Digest>(parts: &[&[u8]]) -> String {
            let mut d = D::new();
            for (i, p) in parts.iter().enumerate() {
                if i > 0 {
                    d.update(b":");
                }
                d.update(p);
            }
            hex(&d.finalize())
        }
        match self {
            Self::Md5 => run::<Md5>(parts),
            Self::Sha256 => run::<Sha256>(parts),
            Self::Sha512_256 => run::<Sha512_256>(parts),
        }
    }

    /// HA1 = `H(username:realm:password)`.
    pub fn ha1(self, username: &str, realm: &str, password: &str) -> String {
        self.hash_hex(&[username.as_bytes(), realm.as_bytes(), password.as_bytes()])
    }
}

/// Lowercase hex of `b`.
pub fn hex(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        let _ = write!(s, "{x:02x}");
    }
    s
}

/// Why a credentials header was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    /// The scheme is not `Digest`.
    #[error("not a Digest credential")]
    NotDigest,
    /// Longer than [`MAX_HEADER`], a value longer than [`MAX_VALUE`] or more than [`MAX_PARAMS`].
    #[error("credentials too long")]
    TooLong,
    /// Not `name=value` pairs separated by commas, or an unterminated quoted string.
    #[error("malformed credentials")]
    Malformed,
    /// A parameter given twice.
    #[error("duplicate parameter {0}")]
    Duplicate(&'static str),
    /// A required parameter missing.
    #[error("missing parameter {0}")]
    Missing(&'static str),
    /// An algorithm we do not serve (`-sess`, unknown).
    #[error("unsupported algorithm")]
    Algorithm,
    /// A qop other than `auth`, or `userhash=true`.
    #[error("unsupported qop or userhash")]
    Unsupported,
    /// `nc` not 8 hex digits, or `response` not hex of the algorithm's length.
    #[error("bad nc or response")]
    BadValue,
}

/// Parsed digest credentials. Strings are unescaped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credentials<'a> {
    /// `username`.
    pub username: Cow<'a, str>,
    /// `realm`.
    pub realm: Cow<'a, str>,
    /// `nonce`.
    pub nonce: Cow<'a, str>,
    /// `uri` (digest-uri).
    pub uri: Cow<'a, str>,
    /// `response`, hex.
    pub response: Cow<'a, str>,
    /// `algorithm`; MD5 when absent (RFC 3261).
    pub algorithm: Algorithm,
    /// `cnonce` (with qop).
    pub cnonce: Option<Cow<'a, str>>,
    /// `nc` as sent (8 hex digits) and its value; with qop.
    pub nc: Option<(Cow<'a, str>, u32)>,
    /// True with `qop=auth`; false for RFC 2069 peers (no qop).
    pub qop: bool,
    /// `opaque`, echoed back when we sent one.
    pub opaque: Option<Cow<'a, str>>,
}

const KNOWN: [&str; 10] =
    ["username", "realm", "nonce", "uri", "response", "algorithm", "cnonce", "nc", "qop", "opaque"];

impl<'a> Credentials<'a> {
    /// Parses a header value (`Digest username="..", ...`).
    pub fn parse(v: &'a str) -> Result<Self, DigestError> {
        if v.len() > MAX_HEADER {
            return Err(DigestError::TooLong);
        }
        let v = v.trim_start_matches([' ', '\t']);
        let (scheme, rest) = v.split_at(v.find([' ', '\t']).unwrap_or(v.len()));
        if !scheme.eq_ignore_ascii_case("digest") {
            return Err(DigestError::NotDigest);
        }
        let mut vals: [Option<Cow<'a, str>>; 10] = Default::default();
        let mut p = Params { s: rest, i: 0, n: 0 };
        while let Some((name, value)) = p.next()? {
            if name.eq_ignore_ascii_case("userhash") {
                if value.eq_ignore_ascii_case("true") {
                    return Err(DigestError::Unsupported);
                }
                continue;
            }
            let Some(k) = KNOWN.iter().position(|k| k.eq_ignore_ascii_case(name)) else { continue };
            if vals[k].is_some() {
                return Err(DigestError::Duplicate(KNOWN[k]));
            }
            vals[k] = Some(value);
        }
        let [username, realm, nonce, uri, response, algorithm, cnonce, nc, qop, opaque] = vals;
        let need = |v: Option<Cow<'a, str>>, k: &'static str| v.ok_or(DigestError::Missing(k));
        let algorithm = match algorithm {
            None => Algorithm::Md5,
            Some(a) => Algorithm::parse(&a).ok_or(DigestError::Algorithm)?,
        };
        let qop = match qop {
            None => false,
            Some(q) if q.eq_ignore_ascii_case("auth") => true,
            Some(_) => return Err(DigestError::Unsupported),
        };
        let response = need(response, "response")?;
        if response.len() != algorithm.hex_len() || !response.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(DigestError::BadValue);
        }
        let nc = match nc {
            None => None,
            Some(n) if n.len() == 8 && n.bytes().all(|b| b.is_ascii_hexdigit()) => {
                let x = u32::from_str_radix(&n, 16).map_err(|_| DigestError::BadValue)?;
                Some((n, x))
            }
            Some(_) => return Err(DigestError::BadValue),
        };
        if qop && nc.is_none() {
            return Err(DigestError::Missing("nc"));
        }
        if qop && cnonce.is_none() {
            return Err(DigestError::Missing("cnonce"));
        }
        Ok(Self {
            username: need(username, "username")?,
            realm: need(realm, "realm")?,
            nonce: need(nonce, "nonce")?,
            uri: need(uri, "uri")?,
            response,
            algorithm,
            cnonce,
            nc,
            qop,
            opaque,
        })
    }

    /// The response these credentials should carry for `method`, given the user's HA1 (hex).
    pub fn expected(&self, ha1: &str, method: &str) -> String {
        response(self.algorithm, ha1, &self.nonce, self.qop_parts(), method, &self.uri)
    }

    fn qop_parts(&self) -> Option<(&str, &str)> {
        match (self.qop, &self.nc, &self.cnonce) {
            (true, Some((nc, _)), Some(c)) => Some((nc, c)),
            _ => None,
        }
    }
}

/// The request-digest: with qop=auth, `H(HA1:nonce:nc:cnonce:auth:HA2)`; without (RFC 2069),
/// `H(HA1:nonce:HA2)`; `HA2 = H(method:uri)`. `qop`: (nc, cnonce).
pub fn response(alg: Algorithm, ha1: &str, nonce: &str, qop: Option<(&str, &str)>, method: &str, uri: &str) -> String {
    let ha2 = alg.hash_hex(&[method.as_bytes(), uri.as_bytes()]);
    match qop {
        Some((nc, cnonce)) => {
            alg.hash_hex(&[ha1.as_bytes(), nonce.as_bytes(), nc.as_bytes(), cnonce.as_bytes(), b"auth", ha2.as_bytes()])
        }
        None => alg.hash_hex(&[ha1.as_bytes(), nonce.as_bytes(), ha2.as_bytes()]),
    }
}

/// What a challenge offers (one `WWW-Authenticate` / `Proxy-Authenticate` value).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Challenge<'a> {
    /// `realm`.
    pub realm: &'a str,
    /// `nonce`.
    pub nonce: &'a str,
    /// `algorithm`.
    pub algorithm: Algorithm,
    /// `stale=true`.
    pub stale: bool,
}

impl Challenge<'_> {
    /// The header value: `Digest realm="..", nonce="..", algorithm=.., qop="auth"[, stale=true]`.
    pub fn to_value(&self) -> String {
        let mut s = String::with_capacity(96 + self.realm.len() + self.nonce.len());
        s.push_str("Digest realm=\"");
        push_quoted(&mut s, self.realm);
        s.push_str("\", nonce=\"");
        push_quoted(&mut s, self.nonce);
        s.push_str("\", algorithm=");
        s.push_str(self.algorithm.as_str());
        s.push_str(", qop=\"auth\"");
        if self.stale {
            s.push_str(", stale=true");
        }
        s
    }

    /// Parses a challenge value (client side: tests, the bench). Only realm, nonce, algorithm
    /// and stale are read.
    pub fn parse(v: &str) -> Result<(String, String, Algorithm, bool), DigestError> {
        let v = v.trim_start();
        let (scheme, rest) = v.split_at(v.find([' ', '\t']).unwrap_or(v.len()));
        if !scheme.eq_ignore_ascii_case("digest") {
            return Err(DigestError::NotDigest);
        }
        let (mut realm, mut nonce, mut alg, mut stale) = (None, None, Algorithm::Md5, false);
        let mut p = Params { s: rest, i: 0, n: 0 };
        while let Some((k, v)) = p.next()? {
            match k.to_ascii_lowercase().as_str() {
                "realm" => realm = Some(v.into_owned()),
                "nonce" => nonce = Some(v.into_owned()),
                "algorithm" => alg = Algorithm::parse(&v).ok_or(DigestError::Algorithm)?,
                "stale" => stale = v.eq_ignore_ascii_case("true"),
                _ => {}
            }
        }
        Ok((realm.ok_or(DigestError::Missing("realm"))?, nonce.ok_or(DigestError::Missing("nonce"))?, alg, stale))
    }
}

/// A client's `Authorization` value answering a challenge (tests, the bench).
#[allow(clippy::too_many_arguments)]
pub fn authorization(
    alg: Algorithm,
    username: &str,
    realm: &str,
    password: &str,
    nonce: &str,
    method: &str,
    uri: &str,
    nc_cnonce: (u32, &str),
) -> String {
    let ha1 = alg.ha1(username, realm, password);
    let nc = format!("{:08x}", nc_cnonce.0);
    let r = response(alg, &ha1, nonce, Some((&nc, nc_cnonce.1)), method, uri);
    let mut s = String::from("Digest username=\"");
    push_quoted(&mut s, username);
    let _ = write!(s, "\", realm=\"");
    push_quoted(&mut s, realm);
    let _ = write!(
        s,
        "\", nonce=\"{nonce}\", uri=\"{uri}\", response=\"{r}\", algorithm={}, cnonce=\"{}\", qop=auth, nc={nc}",
        alg.as_str(),
        nc_cnonce.1
    );
    s
}

pub(super) fn push_quoted(out: &mut String, v: &str) {
    for c in v.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
}

/// The `name=value` list after the scheme.
pub(super) struct Params<'a> {
    s: &'a str,
    i: usize,
    n: usize,
}

impl<'a> Params<'a> {
    /// The parameters of `s` (the text after the scheme).
    pub(super) fn of(s: &'a str) -> Self {
        Self { s, i: 0, n: 0 }
    }

    fn skip_ws(&mut self) {
        let b = self.s.as_bytes();
        while self.i < b.len() && matches!(b[self.i], b' ' | b'\t' | b'\r' | b'\n') {
            self.i += 1;
        }
    }

    /// The next parameter, or None at the end.
    pub(super) fn next(&mut self) -> Result<Option<(&'a str, Cow<'a, str>)>, DigestError> {
        let b = self.s.as_bytes();
        self.skip_ws();
        if self.n > 0 {
            if self.i >= b.len() {
                return Ok(None);
            }
            if b[self.i] != b',' {
                return Err(DigestError::Malformed);
            }
            self.i += 1;
            self.skip_ws();
        } else if self.i >= b.len() {
            return Ok(None);
        }
        self.n += 1;
        if self.n > MAX_PARAMS {
            return Err(DigestError::TooLong);
        }
        let start = self.i;
        while self.i < b.len() && is_token(b[self.i]) {
            self.i += 1;
        }
        let name = &self.s[start..self.i];
        self.skip_ws();
        if name.is_empty() || self.i >= b.len() || b[self.i] != b'=' {
            return Err(DigestError::Malformed);
        }
        self.i += 1;
        self.skip_ws();
        let value = if self.i < b.len() && b[self.i] == b'"' { self.quoted()? } else { self.token()? };
        if value.len() > MAX_VALUE {
            return Err(DigestError::TooLong);
        }
        Ok(Some((name, value)))
    }

    fn token(&mut self) -> Result<Cow<'a, str>, DigestError> {
        let b = self.s.as_bytes();
        let start = self.i;
        while self.i < b.len() && is_token(b[self.i]) {
            self.i += 1;
        }
        if self.i == start {
            return Err(DigestError::Malformed);
        }
        Ok(Cow::Borrowed(&self.s[start..self.i]))
    }

    /// A quoted string from the opening quote; `\x` stands for `x` (RFC 3261 quoted-pair).
    fn quoted(&mut self) -> Result<Cow<'a, str>, DigestError> {
        let b = self.s.as_bytes();
        self.i += 1;
        let start = self.i;
        let mut owned: Option<String> = None;
        let mut from = start;
        while self.i < b.len() {
            match b[self.i] {
                b'"' => {
                    let v = match owned {
                        None => Cow::Borrowed(&self.s[start..self.i]),
                        Some(mut o) => {
                            o.push_str(&self.s[from..self.i]);
                            Cow::Owned(o)
                        }
                    };
                    self.i += 1;
                    return Ok(v);
                }
                b'\\' => {
                    let o = owned.get_or_insert_with(String::new);
                    o.push_str(&self.s[from..self.i]);
                    let next = *b.get(self.i + 1).ok_or(DigestError::Malformed)?;
                    if !next.is_ascii() || next == b'\r' || next == b'\n' {
                        return Err(DigestError::Malformed);
                    }
                    o.push(char::from(next));
                    self.i += 2;
                    from = self.i;
                    if o.len() > MAX_VALUE {
                        return Err(DigestError::TooLong);
                    }
                }
                b'\r' | b'\n' => return Err(DigestError::Malformed),
                _ => self.i += 1,
            }
        }
        Err(DigestError::Malformed)
    }
}

fn is_token(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"-.!%*_+`'~/:@?&[]".contains(&c)
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 7616 §3.9.1.
    const USER: &str = "Mufasa";
    const PASS: &str = "Circle of Life";
    const REALM: &str = "http-auth@example.org";
    const NONCE: &str = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v";
    const CNONCE: &str = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";

    fn rfc7616(alg: &str, resp: &str) -> String {
        format!(
            "Digest username=\"Mufasa\",\n realm=\"http-auth@example.org\",\n uri=\"/dir/index.html\",\n \
             algorithm={alg},\n nonce=\"{NONCE}\",\n nc=00000001,\n cnonce=\"{CNONCE}\",\n qop=auth,\n \
             response=\"{resp}\",\n opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\""
        )
    }

    #[test]
    fn rfc7616_md5_vector() {
        let h = rfc7616("MD5", "8ca523f5e9506fed4657c9700eebdbec");
        let c = Credentials::parse(&h).unwrap();
        assert_eq!(c.algorithm, Algorithm::Md5);
        assert_eq!(c.nc.as_ref().map(|n| n.1), Some(1));
        let ha1 = Algorithm::Md5.ha1(USER, REALM, PASS);
        assert_eq!(c.expected(&ha1, "GET"), "8ca523f5e9506fed4657c9700eebdbec");
    }

    #[test]
    fn rfc7616_sha256_vector() {
        let r = "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1";
        let h = rfc7616("SHA-256", r);
        let c = Credentials::parse(&h).unwrap();
        assert_eq!(c.algorithm, Algorithm::Sha256);
        let ha1 = Algorithm::Sha256.ha1(USER, REALM, PASS);
        assert_eq!(c.expected(&ha1, "GET"), r);
    }

    #[test]
    fn client_side_round_trip_every_algorithm() {
        for alg in Algorithm::ALL {
            let h = authorization(alg, "alice", "xtrunk", "pw", "n0nce", "INVITE", "sip:1@h", (7, "cn"));
            let c = Credentials::parse(&h).unwrap();
            assert_eq!(c.algorithm, alg);
            assert_eq!(c.expected(&alg.ha1("alice", "xtrunk", "pw"), "INVITE"), c.response);
        }
    }

    #[test]
    fn rfc2069_no_qop() {
        let ha1 = Algorithm::Md5.ha1("u", "r", "p");
        let resp = response(Algorithm::Md5, &ha1, "n", None, "INVITE", "sip:x");
        let h = format!("Digest username=\"u\", realm=\"r\", nonce=\"n\", uri=\"sip:x\", response=\"{resp}\"");
        let c = Credentials::parse(&h).unwrap();
        assert!(!c.qop && c.nc.is_none());
        assert_eq!(c.expected(&ha1, "INVITE"), resp);
    }

    #[test]
    fn escapes_any_order_and_unknown_params() {
        let h = "digest response=\"0123456789abcdef0123456789abcdef\" , foo=bar,uri=\"sip:a\",\
                 username=\"a\\\"b\\\\c\",realm=r,nonce=\"x\"";
        let c = Credentials::parse(h).unwrap();
        assert_eq!(c.username, "a\"b\\c");
        assert_eq!(c.realm, "r");
    }

    #[test]
    fn refusals() {
        let ok =
            "Digest username=\"a\", realm=\"r\", nonce=\"n\", uri=\"u\", response=\"0123456789abcdef0123456789abcdef\"";
        assert!(Credentials::parse(ok).is_ok());
        assert_eq!(Credentials::parse("Basic abc"), Err(DigestError::NotDigest));
        assert_eq!(Credentials::parse(&format!("{ok}, realm=\"x\"")), Err(DigestError::Duplicate("realm")));
        assert_eq!(Credentials::parse(&format!("{ok}, USERNAME=\"x\"")), Err(DigestError::Duplicate("username")));
        assert_eq!(Credentials::parse(&format!("{ok}, qop=auth-int")), Err(DigestError::Unsupported));
        assert_eq!(Credentials::parse(&format!("{ok}, qop=auth, cnonce=\"c\"")), Err(DigestError::Missing("nc")));
        assert_eq!(Credentials::parse(&format!("{ok}, qop=auth, cnonce=\"c\", nc=1")), Err(DigestError::BadValue));
        assert_eq!(Credentials::parse(&format!("{ok}, algorithm=MD5-sess")), Err(DigestError::Algorithm));
        assert_eq!(Credentials::parse(&format!("{ok}, algorithm=SHA-256")), Err(DigestError::BadValue));
        assert_eq!(Credentials::parse(&format!("{ok}, userhash=true")), Err(DigestError::Unsupported));
        assert_eq!(Credentials::parse("Digest username=\"a"), Err(DigestError::Malformed));
        assert_eq!(Credentials::parse("Digest username=\"a\\"), Err(DigestError::Malformed));
        assert_eq!(Credentials::parse("Digest username"), Err(DigestError::Malformed));
        assert_eq!(Credentials::parse("Digest a=b c=d"), Err(DigestError::Malformed));
        assert_eq!(Credentials::parse("Digest realm=\"r\""), Err(DigestError::Missing("response")));
        let long = format!("Digest username=\"{}\"", "x".repeat(MAX_VALUE + 1));
        assert_eq!(Credentials::parse(&long), Err(DigestError::TooLong));
        let many: String = (0..MAX_PARAMS + 1).map(|i| format!("p{i}=1,")).collect();
        assert_eq!(Credentials::parse(&format!("Digest {}", many.trim_end_matches(','))), Err(DigestError::TooLong));
        assert_eq!(Credentials::parse(&"x".repeat(MAX_HEADER + 1)), Err(DigestError::TooLong));
    }

    #[test]
    fn never_panics_on_prefixes_and_odd_bytes() {
        let h = rfc7616("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1");
        for i in 0..h.len() {
            let _ = Credentials::parse(&h[..i]);
        }
        for s in ["Digest ", "Digest ,", "Digest =", "Digest a=\"\u{e9}\\\u{e9}\"", "Digest a=\"\\\r\"", "\u{e9}"] {
            let _ = Credentials::parse(s);
        }
    }

    #[test]
    fn challenge_value_round_trips() {
        let c = Challenge { realm: "r\"x", nonce: "abc", algorithm: Algorithm::Sha256, stale: true };
        let v = c.to_value();
        assert_eq!(v, "Digest realm=\"r\\\"x\", nonce=\"abc\", algorithm=SHA-256, qop=\"auth\", stale=true");
        assert_eq!(Challenge::parse(&v).unwrap(), ("r\"x".into(), "abc".into(), Algorithm::Sha256, true));
    }
}
