//! The client side of digest (RFC 3261 §22.2, RFC 7616 §3.4, RFC 8760): the edge answering a
//! carrier's challenge to its REGISTER (`401`, `WWW-Authenticate` → `Authorization`) or to a
//! call's INVITE (`407`, `Proxy-Authenticate` → `Proxy-Authorization`).
//!
//! Of several challenges the strongest algorithm we know is answered (SHA-512-256, SHA-256,
//! MD5); `-sess` algorithms and qop values other than `auth` are not answered. Without `qop`
//! the RFC 2069 form is sent; `opaque` is echoed.

use std::fmt::Write as _;

use super::digest::{push_quoted, response, Algorithm, DigestError, Params};
use crate::sip::msg::{HName, Message};

/// One challenge we can answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Offer {
    /// `realm`.
    pub realm: String,
    /// `nonce`.
    pub nonce: String,
    /// `algorithm` (MD5 when absent).
    pub algorithm: Algorithm,
    /// Whether `qop` lists `auth`.
    pub qop_auth: bool,
    /// `opaque`, echoed.
    pub opaque: Option<String>,
    /// `stale=true`: the nonce aged out, the credentials were right.
    pub stale: bool,
}

impl Offer {
    /// Parses one `WWW-Authenticate`/`Proxy-Authenticate` value.
    pub fn parse(v: &str) -> Result<Self, DigestError> {
        let v = v.trim_start();
        let (scheme, rest) = v.split_at(v.find([' ', '\t']).unwrap_or(v.len()));
        if !scheme.eq_ignore_ascii_case("digest") {
            return Err(DigestError::NotDigest);
        }
        let (mut realm, mut nonce, mut algorithm) = (None, None, Algorithm::Md5);
        let (mut qop, mut qop_auth, mut opaque, mut stale) = (false, false, None, false);
        let mut p = Params::of(rest);
        while let Some((k, v)) = p.next()? {
            match k.to_ascii_lowercase().as_str() {
                "realm" => realm = Some(v.into_owned()),
                "nonce" => nonce = Some(v.into_owned()),
                "algorithm" => algorithm = Algorithm::parse(&v).ok_or(DigestError::Algorithm)?,
                "qop" => {
                    qop = true;
                    qop_auth = v.split(',').any(|q| q.trim().eq_ignore_ascii_case("auth"));
                }
                "opaque" => opaque = Some(v.into_owned()),
                "stale" => stale = v.eq_ignore_ascii_case("true"),
                _ => {}
            }
        }
        if qop && !qop_auth {
            // auth-int only: we cannot answer it.
            return Err(DigestError::Missing("qop=auth"));
        }
        let realm = realm.ok_or(DigestError::Missing("realm"))?;
        let nonce = nonce.ok_or(DigestError::Missing("nonce"))?;
        if nonce.is_empty() || realm.chars().chain(nonce.chars()).any(char::is_control) {
            return Err(DigestError::Malformed);
        }
        Ok(Self { realm, nonce, algorithm, qop_auth, opaque, stale })
    }
}

fn rank(a: Algorithm) -> u8 {
    match a {
        Algorithm::Md5 => 0,
        Algorithm::Sha256 => 1,
        Algorithm::Sha512_256 => 2,
    }
}

/// The challenge of a `401`/`407` to answer, and the header the answer goes in.
pub fn pick(resp: &Message) -> Option<(HName, Offer)> {
    let (challenge, answer) = match resp.code()? {
        401 => ("WWW-Authenticate", "Authorization"),
        407 => ("Proxy-Authenticate", "Proxy-Authorization"),
        _ => return None,
    };
    let best = resp
        .headers
        .iter()
        .filter(|h| matches!(&h.name, HName::Other(n) if n.eq_ignore_ascii_case(challenge)))
        .filter_map(|h| Offer::parse(&h.value).ok())
        .max_by_key(|o| rank(o.algorithm))?;
    Some((HName::Other(answer.into()), best))
}

/// Who answers: the digest user name and password.
#[derive(Clone, Copy, Debug)]
pub struct Creds<'a> {
    /// Digest user name.
    pub username: &'a str,
    /// Password.
    pub password: &'a str,
}

/// The credentials value answering `offer` for `method` to `uri`; `nc` counts the requests
/// answered with this nonce (from 1), `cnonce` is fresh per answer (any token).
pub fn answer(offer: &Offer, who: Creds<'_>, (method, uri): (&str, &str), nc: u32, cnonce: &str) -> String {
    let alg = offer.algorithm;
    let ha1 = alg.ha1(who.username, &offer.realm, who.password);
    let nc = format!("{nc:08x}");
    let qop = offer.qop_auth.then_some((nc.as_str(), cnonce));
    let r = response(alg, &ha1, &offer.nonce, qop, method, uri);
    let mut s = String::with_capacity(200 + uri.len() + offer.nonce.len());
    s.push_str("Digest username=\"");
    push_quoted(&mut s, who.username);
    s.push_str("\", realm=\"");
    push_quoted(&mut s, &offer.realm);
    s.push_str("\", nonce=\"");
    push_quoted(&mut s, &offer.nonce);
    s.push_str("\", uri=\"");
    push_quoted(&mut s, uri);
    let _ = write!(s, "\", response=\"{r}\", algorithm={}", alg.as_str());
    if offer.qop_auth {
        let _ = write!(s, ", qop=auth, nc={nc}, cnonce=\"{cnonce}\"");
    }
    if let Some(o) = &offer.opaque {
        s.push_str(", opaque=\"");
        push_quoted(&mut s, o);
        s.push('"');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::digest::Credentials;

    #[test]
    fn answers_are_what_a_server_verifies() {
        for (alg, qop) in [("MD5", true), ("SHA-256", true), ("SHA-512-256", true), ("MD5", false)] {
            let q = if qop { ", qop=\"auth,auth-int\"" } else { "" };
            let ch = format!("Digest realm=\"carrier\", nonce=\"abc\", algorithm={alg}{q}, opaque=\"o1\"");
            let o = Offer::parse(&ch).unwrap();
            assert_eq!(o.qop_auth, qop);
            let v = answer(&o, Creds { username: "u\"x", password: "pw" }, ("INVITE", "sip:1@h"), 1, "c0ffee");
            let c = Credentials::parse(&v).unwrap();
            let ha1 = o.algorithm.ha1("u\"x", "carrier", "pw");
            assert_eq!(c.expected(&ha1, "INVITE"), c.response.to_ascii_lowercase(), "{v}");
            assert!(v.ends_with(", opaque=\"o1\""), "{v}");
        }
    }

    #[test]
    fn picks_the_strongest_and_the_right_header() {
        let text = "SIP/2.0 407 Proxy Authentication Required\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\
            From: <sip:a@h>;tag=1\r\nTo: <sip:b@h>;tag=2\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n\
            Proxy-Authenticate: Digest realm=\"r\", nonce=\"n1\", algorithm=MD5\r\n\
            Proxy-Authenticate: Digest realm=\"r\", nonce=\"n2\", algorithm=SHA-256\r\n\
            Proxy-Authenticate: Digest realm=\"r\", nonce=\"n3\", algorithm=MD5-sess\r\n\
            Content-Length: 0\r\n\r\n";
        let m = crate::sip::msg::parse(text.as_bytes()).unwrap();
        let (h, o) = pick(&m).unwrap();
        assert_eq!(h, HName::Other("Proxy-Authorization".into()));
        assert_eq!((o.nonce.as_str(), o.algorithm), ("n2", Algorithm::Sha256));
    }

    #[test]
    fn refuses_what_it_cannot_answer() {
        assert!(Offer::parse("Basic realm=\"x\"").is_err());
        assert!(Offer::parse("Digest realm=\"x\", nonce=\"n\", qop=\"auth-int\"").is_err());
        assert!(Offer::parse("Digest realm=\"x\"").is_err());
        assert!(Offer::parse("Digest nonce=\"n\", realm=\"a\rb\"").is_err());
        assert!(Offer::parse("Digest realm=\"x\", nonce=\"n\", algorithm=MD5-sess").is_err());
    }
}
