//! SDES key exchange (RFC 4568): parsing and formatting of `a=crypto` attributes and
//! their `inline:` key-params. Signaling path: allocation is fine here.
//!
//! Supported: one `inline:` key per attribute, optional lifetime (`2^n` or decimal),
//! session parameters `KDR=0`, `WSH=n` and `FEC_ORDER=...`. Refused with a distinct
//! error: an MKI ([`Error::SdesMkiUnsupported`]), several keys, `KDR` other than 0,
//! `UNENCRYPTED_SRTP`, `UNENCRYPTED_SRTCP`, `UNAUTHENTICATED_SRTP`, `FEC_KEY` and unknown
//! parameters ([`Error::SdesUnsupportedParam`]).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use crate::{Error, Suite};

/// The key material of one `inline:` key-param.
#[derive(Clone, PartialEq, Eq)]
pub struct SdesKey {
    /// Master key (`suite.key_len()` bytes).
    pub key: Vec<u8>,
    /// Master salt (`suite.salt_len()` bytes).
    pub salt: Vec<u8>,
    /// Key lifetime in packets, if given.
    pub lifetime: Option<u64>,
}

impl core::fmt::Debug for SdesKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Never print key material.
        f.debug_struct("SdesKey").field("lifetime", &self.lifetime).finish_non_exhaustive()
    }
}

/// A parsed `a=crypto:` attribute value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdesCrypto {
    /// The attribute's tag (the answer must echo it).
    pub tag: u32,
    /// The crypto suite.
    pub suite: Suite,
    /// The key material.
    pub key: SdesKey,
}

/// Parses one key-params string `inline:<base64 key||salt>[|lifetime][|MKI:len]` for
/// `suite`.
pub fn parse_sdes_inline(suite: Suite, key_params: &str) -> Result<SdesKey, Error> {
    if key_params.contains(';') {
        // Several keys need MKIs to tell them apart.
        return Err(Error::SdesMkiUnsupported);
    }
    let info = key_params.strip_prefix("inline:").ok_or(Error::SdesSyntax("key-params must start with \"inline:\""))?;
    let mut parts = info.split('|');
    let b64 = parts.next().unwrap_or("");
    let mut lifetime = None;
    for (i, part) in parts.enumerate() {
        if part.contains(':') {
            return Err(Error::SdesMkiUnsupported);
        }
        if i > 0 || part.is_empty() {
            return Err(Error::SdesSyntax("unexpected field after key"));
        }
        lifetime = Some(parse_lifetime(part)?);
    }
    let raw = STANDARD.decode(b64).map_err(|_| Error::SdesBase64)?;
    let expected = suite.key_len() + suite.salt_len();
    if raw.len() != expected {
        return Err(Error::SdesKeyLength { expected, got: raw.len() });
    }
    let (key, salt) = raw.split_at(suite.key_len());
    Ok(SdesKey { key: key.to_vec(), salt: salt.to_vec(), lifetime })
}

fn parse_lifetime(s: &str) -> Result<u64, Error> {
    const BAD: Error = Error::SdesSyntax("bad key lifetime");
    if let Some(exp) = s.strip_prefix("2^") {
        let e: u32 = exp.parse().map_err(|_| BAD)?;
        // RFC 3711 limits SRTP to 2^48 packets.
        if e > 48 {
            return Err(BAD);
        }
        Ok(1u64 << e)
    } else {
        s.parse().map_err(|_| BAD)
    }
}

/// Parses an `a=crypto` attribute value: `<tag> <suite> <key-params> [session-params]`
/// (with or without the leading `a=crypto:` / `crypto:`).
pub fn parse_sdes_crypto(attr: &str) -> Result<SdesCrypto, Error> {
    let value = attr.trim();
    let value = value.strip_prefix("a=").unwrap_or(value);
    let value = value.strip_prefix("crypto:").unwrap_or(value);
    let mut fields = value.split_ascii_whitespace();
    let tag = fields
        .next()
        .and_then(|t| t.parse::<u32>().ok())
        .filter(|t| *t <= 999_999_999)
        .ok_or(Error::SdesSyntax("bad crypto tag"))?;
    let suite_name = fields.next().ok_or(Error::SdesSyntax("missing crypto-suite"))?;
    let suite = Suite::from_sdes_name(suite_name).ok_or(Error::SdesUnknownSuite)?;
    let key_params = fields.next().ok_or(Error::SdesSyntax("missing key-params"))?;
    let key = parse_sdes_inline(suite, key_params)?;
    for param in fields {
        check_session_param(param)?;
    }
    Ok(SdesCrypto { tag, suite, key })
}

fn check_session_param(p: &str) -> Result<(), Error> {
    if let Some(kdr) = p.strip_prefix("KDR=") {
        return match kdr.parse::<u8>() {
            Ok(0) => Ok(()),
            Ok(_) => Err(Error::SdesUnsupportedParam),
            Err(_) => Err(Error::SdesSyntax("bad KDR")),
        };
    }
    if p.starts_with("WSH=") || p.starts_with("FEC_ORDER=") {
        return Ok(());
    }
    // UNENCRYPTED_SRTP, UNENCRYPTED_SRTCP, UNAUTHENTICATED_SRTP, FEC_KEY, unknown.
    Err(Error::SdesUnsupportedParam)
}

/// Formats the key-params `inline:<base64 key||salt>`.
pub fn format_sdes_inline(key: &[u8], salt: &[u8]) -> String {
    let mut raw = Vec::with_capacity(key.len() + salt.len());
    raw.extend_from_slice(key);
    raw.extend_from_slice(salt);
    format!("inline:{}", STANDARD.encode(&raw))
}

/// Formats an `a=crypto` attribute value (without `a=crypto:`):
/// `<tag> <suite> inline:<base64 key||salt>`.
pub fn format_sdes_crypto(tag: u32, suite: Suite, key: &[u8], salt: &[u8]) -> String {
    format!("{tag} {} {}", suite.sdes_name(), format_sdes_inline(key, salt))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4568_example_parses() {
        // RFC 4568 §4 example attribute.
        let c = parse_sdes_crypto(
            "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20|1:4",
        );
        assert_eq!(c, Err(Error::SdesMkiUnsupported));
        let c = parse_sdes_crypto("1 AES_CM_128_HMAC_SHA1_80 inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR|2^20")
            .unwrap();
        assert_eq!(c.tag, 1);
        assert_eq!(c.suite, Suite::AesCm128HmacSha1_80);
        assert_eq!(c.key.key.len(), 16);
        assert_eq!(c.key.salt.len(), 14);
        assert_eq!(c.key.lifetime, Some(1 << 20));
        assert_eq!(&c.key.key[..4], b"=-n@");
    }

    #[test]
    fn round_trip_all_suites() {
        for suite in Suite::ALL {
            let key: Vec<u8> = (0..suite.key_len() as u8).collect();
            let salt: Vec<u8> = (0..suite.salt_len() as u8).map(|b| b ^ 0x5a).collect();
            let line = format_sdes_crypto(7, suite, &key, &salt);
            let c = parse_sdes_crypto(&line).unwrap();
            assert_eq!((c.tag, c.suite), (7, suite));
            assert_eq!((c.key.key, c.key.salt, c.key.lifetime), (key, salt, None));
        }
    }

    #[test]
    fn errors_are_distinct() {
        let ok = format_sdes_inline(&[1; 16], &[2; 14]);
        assert!(parse_sdes_inline(Suite::AesCm128HmacSha1_32, &ok).is_ok());
        assert_eq!(parse_sdes_inline(Suite::AeadAes128Gcm, &ok), Err(Error::SdesKeyLength { expected: 28, got: 30 }));
        assert_eq!(parse_sdes_inline(Suite::AeadAes128Gcm, "inline:!!!"), Err(Error::SdesBase64));
        assert!(matches!(parse_sdes_inline(Suite::AeadAes128Gcm, "key:abcd"), Err(Error::SdesSyntax(_))));
        assert_eq!(parse_sdes_crypto(&format!("1 F8_128_HMAC_SHA1_80 {ok}")), Err(Error::SdesUnknownSuite));
        assert_eq!(
            parse_sdes_crypto(&format!("1 AES_CM_128_HMAC_SHA1_80 {ok} UNENCRYPTED_SRTCP")),
            Err(Error::SdesUnsupportedParam)
        );
        assert_eq!(
            parse_sdes_crypto(&format!("1 AES_CM_128_HMAC_SHA1_80 {ok} KDR=3")),
            Err(Error::SdesUnsupportedParam)
        );
        assert!(parse_sdes_crypto(&format!("1 AES_CM_128_HMAC_SHA1_80 {ok} KDR=0 WSH=128")).is_ok());
        assert_eq!(parse_sdes_crypto(&format!("1 AES_CM_128_HMAC_SHA1_80 {ok};{ok}")), Err(Error::SdesMkiUnsupported));
        assert!(matches!(parse_sdes_crypto(&format!("x AES_CM_128_HMAC_SHA1_80 {ok}")), Err(Error::SdesSyntax(_))));
        assert!(matches!(
            parse_sdes_inline(Suite::AesCm128HmacSha1_80, &format!("{ok}|2^99")),
            Err(Error::SdesSyntax(_))
        ));
        assert_eq!(parse_sdes_inline(Suite::AesCm128HmacSha1_80, &format!("{ok}|1000")).unwrap().lifetime, Some(1000));
    }
}
