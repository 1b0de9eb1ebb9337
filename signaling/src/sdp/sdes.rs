//! SDES (RFC 4568): SRTP policy and suite selection, `a=crypto` lines, keys, and their redaction.

use xtrunk_config::SrtpPolicy;
use xtrunk_ring::msg::{LegCrypto, SrtpKeys, SrtpSuite};
use xtrunk_srtp::{format_sdes_crypto, parse_sdes_crypto, Suite};

use super::{MediaDesc, Sdp, SdpError};

/// A trunk's SRTP settings as the offer/answer needs them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SrtpPrefs {
    /// `srtp = off | optional | mandatory`.
    pub policy: SrtpPolicy,
    /// `srtp_suites`, in preference order (unknown names, refused by config validation, skipped).
    pub suites: Vec<Suite>,
}

impl SrtpPrefs {
    /// The settings of `trunk` (suites already typed at load).
    pub fn of(trunk: &xtrunk_config::TrunkView) -> Self {
        use xtrunk_config::SrtpSuite as S;
        let suite = |s: &S| match s {
            S::AesCm128HmacSha1_80 => Suite::AesCm128HmacSha1_80,
            S::AesCm128HmacSha1_32 => Suite::AesCm128HmacSha1_32,
            S::AeadAes128Gcm => Suite::AeadAes128Gcm,
            S::AeadAes256Gcm => Suite::AeadAes256Gcm,
        };
        Self { policy: trunk.srtp, suites: trunk.srtp_suites.iter().map(suite).collect() }
    }

    /// The settings of `trunk` for a leg whose signaling is TLS (`tls`) or not: with
    /// `srtp_with_tls`, SRTP is mandatory on a TLS leg; otherwise `srtp` holds.
    pub fn of_leg(trunk: &xtrunk_config::TrunkView, tls: bool) -> Self {
        let mut p = Self::of(trunk);
        if tls && trunk.srtp_with_tls {
            p.policy = SrtpPolicy::Mandatory;
        }
        p
    }

    /// True when offers we send to this trunk carry SRTP (RTP/SAVP + `a=crypto`): only for
    /// `mandatory`. An `optional` trunk is offered plain RTP/AVP (RFC 4568 §7.1.1: an RTP/SAVP
    /// offer fails against a peer without SRTP, and we do no capability negotiation) unless the
    /// leg already runs SRTP (re-offers keep it).
    pub fn offer_srtp(&self, leg_is_srtp: bool) -> bool {
        match self.policy {
            SrtpPolicy::Off => false,
            SrtpPolicy::Optional => leg_is_srtp,
            SrtpPolicy::Mandatory => true,
        }
    }
}

/// One usable `a=crypto` line of the relayed stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SdesLine {
    /// The tag (an answer echoes the offer's).
    pub tag: u32,
    /// Suite and key material (redacted in `Debug`).
    pub keys: SrtpKeys,
}

/// The ring's suite for an SDES suite.
pub fn ring_suite(s: Suite) -> SrtpSuite {
    match s {
        Suite::AesCm128HmacSha1_80 => SrtpSuite::AesCm128HmacSha1_80,
        Suite::AesCm128HmacSha1_32 => SrtpSuite::AesCm128HmacSha1_32,
        Suite::AeadAes128Gcm => SrtpSuite::AeadAes128Gcm,
        Suite::AeadAes256Gcm => SrtpSuite::AeadAes256Gcm,
    }
}

/// The SDES suite of a ring suite.
pub fn sdes_suite(s: SrtpSuite) -> Suite {
    match s {
        SrtpSuite::AesCm128HmacSha1_80 => Suite::AesCm128HmacSha1_80,
        SrtpSuite::AesCm128HmacSha1_32 => Suite::AesCm128HmacSha1_32,
        SrtpSuite::AeadAes128Gcm => Suite::AeadAes128Gcm,
        SrtpSuite::AeadAes256Gcm => Suite::AeadAes256Gcm,
    }
}

fn is_secure(m: &MediaDesc) -> bool {
    m.proto.contains("SAVP")
}

/// The usable `a=crypto` lines of media section `i`, in order. Lines we cannot use (syntax, unknown
/// suite, MKI or several keys, unsupported session parameters, wrong key length) are skipped; a
/// key lifetime is accepted (and not enforced: SDES re-keys by a new offer/answer).
pub fn crypto_lines(sdp: &Sdp, i: usize) -> Vec<SdesLine> {
    let Some(m) = sdp.media.get(i) else { return Vec::new() };
    m.lines
        .iter()
        .filter(|(t, v)| *t == b'a' && v.starts_with("crypto:"))
        .filter_map(|(_, v)| parse_sdes_crypto(v).ok())
        .map(|c| {
            let mut keys = SrtpKeys { suite: ring_suite(c.suite), key: [0; 32], salt: [0; 14] };
            keys.key[..c.key.key.len()].copy_from_slice(&c.key.key);
            keys.salt[..c.key.salt.len()].copy_from_slice(&c.key.salt);
            SdesLine { tag: c.tag, keys }
        })
        .collect()
}

/// Checks an offer received from a trunk with `prefs` (RFC 4568 §7.1.2 answerer side).
/// `Ok(None)`: plain RTP on that leg. `Ok(Some(line))`: SRTP with the offered line we accept,
/// chosen by the trunk's suite preference (first offered line of the most preferred suite).
/// Errors (all answered 488): RTP/SAVP to `off`, plain RTP to `mandatory`, RTP/SAVP without a
/// usable line of an allowed suite. An offer without an audio stream is left to the codec rewrite.
pub fn accept_offer(offer: &Sdp, prefs: &SrtpPrefs) -> Result<Option<SdesLine>, SdpError> {
    let Some(i) = offer.audio_index() else { return Ok(None) };
    match (prefs.policy, is_secure(&offer.media[i])) {
        (SrtpPolicy::Off, true) => Err(SdpError::SrtpOnly),
        (SrtpPolicy::Mandatory, false) => Err(SdpError::SrtpRequired),
        (_, false) => Ok(None),
        (_, true) => {
            let lines = crypto_lines(offer, i);
            prefs
                .suites
                .iter()
                .find_map(|s| lines.iter().find(|l| l.keys.suite == ring_suite(*s)).copied())
                .map(Some)
                .ok_or(SdpError::NoAcceptableCrypto)
        }
    }
}

/// A fresh master key and salt for `suite` from the OS CSPRNG.
pub fn fresh_keys(suite: SrtpSuite) -> Result<SrtpKeys, SdpError> {
    let mut k = SrtpKeys { suite, key: [0; 32], salt: [0; 14] };
    getrandom::getrandom(&mut k.key[..suite.key_len()]).map_err(|_| SdpError::KeyGeneration)?;
    getrandom::getrandom(&mut k.salt[..suite.salt_len()]).map_err(|_| SdpError::KeyGeneration)?;
    Ok(k)
}

/// Our keys for answering the offered line `chosen` on a leg whose current crypto is `current`:
/// the current `tx` key when the suite is unchanged and the peer kept its key (a re-offer that
/// changes nothing changes nothing), else fresh keys (the peer re-keyed, or a new suite).
pub fn answer_keys(chosen: &SdesLine, current: &LegCrypto) -> Result<SrtpKeys, SdpError> {
    match (current.rx, current.tx) {
        (Some(rx), Some(tx)) if rx == chosen.keys && tx.suite == chosen.keys.suite => Ok(tx),
        _ => fresh_keys(chosen.keys.suite),
    }
}

/// Answers the SRTP of an offer received on a leg whose current crypto is `current`: `None` for
/// plain RTP, else the tag to echo and the leg's new crypto (`rx` = the offerer's key, `tx` =
/// [`answer_keys`]). Errors as [`accept_offer`].
pub fn answer_offer_crypto(
    offer: &Sdp,
    prefs: &SrtpPrefs,
    current: &LegCrypto,
) -> Result<Option<(u32, LegCrypto)>, SdpError> {
    let Some(line) = accept_offer(offer, prefs)? else { return Ok(None) };
    let tx = answer_keys(&line, current)?;
    Ok(Some((line.tag, LegCrypto { rx: Some(line.keys), tx: Some(tx) })))
}

fn crypto_attr(tag: u32, k: &SrtpKeys) -> (u8, String) {
    let s = sdes_suite(k.suite);
    let v = format_sdes_crypto(tag, s, &k.key[..s.key_len()], &k.salt[..s.salt_len()]);
    (b'a', format!("crypto:{v}"))
}

/// Puts `line` just before the stream's direction attribute (the last line we emit).
fn push_before_direction(m: &mut MediaDesc, line: (u8, String)) {
    let at = m
        .lines
        .iter()
        .rposition(|(t, v)| *t == b'a' && ["sendrecv", "sendonly", "recvonly", "inactive"].contains(&v.as_str()))
        .unwrap_or(m.lines.len());
    m.lines.insert(at, line);
}

/// Adds our answer's `a=crypto` to the relayed stream of `answer` (built by
/// [`rewrite_answer`](super::rewrite_answer) for an SRTP offerer): the offered line's tag and
/// suite, our key (RFC 4568 §7.1.2).
pub fn add_answer_crypto(answer: &mut Sdp, tag: u32, ours: &SrtpKeys) {
    let Some(i) = answer.audio_index() else { return };
    let m = &mut answer.media[i];
    if !is_secure(m) {
        m.proto = "RTP/SAVP".into();
    }
    push_before_direction(m, crypto_attr(tag, ours));
}

/// Makes our rewritten offer an SRTP offer: profile RTP/SAVP (RTP/SAVPF when it was AVPF), one
/// `a=crypto` per suite in preference order, tags 1, 2, ..., each with fresh keys except `reuse`
/// for its own suite (re-offers keep our key so the peer's context continues).
pub fn add_offer_crypto(offer: &mut Sdp, suites: &[Suite], reuse: Option<&SrtpKeys>) -> Result<(), SdpError> {
    let i = offer.audio_index().ok_or(SdpError::NoAudio)?;
    if suites.is_empty() {
        return Err(SdpError::NoAcceptableCrypto);
    }
    let mut lines = Vec::with_capacity(suites.len());
    for (n, s) in suites.iter().enumerate() {
        let rs = ring_suite(*s);
        let keys = match reuse {
            Some(k) if k.suite == rs => *k,
            _ => fresh_keys(rs)?,
        };
        lines.push(crypto_attr(n as u32 + 1, &keys));
    }
    let m = &mut offer.media[i];
    m.proto = if m.proto.ends_with("AVPF") { "RTP/SAVPF".into() } else { "RTP/SAVP".into() };
    for l in lines {
        push_before_direction(m, l);
    }
    Ok(())
}

/// The crypto of a leg after its peer answered `our_offer` with `answer`. Plain when we offered
/// plain RTP (any `a=crypto` in the answer is ignored). When we offered SRTP the answer must be
/// RTP/SAVP(F) with a usable line echoing one of our tags with the same suite: then `rx` = the
/// answerer's key, `tx` = ours for that tag; else [`SdpError::NoAcceptableCrypto`].
pub fn answer_crypto(our_offer: &Sdp, answer: &Sdp) -> Result<LegCrypto, SdpError> {
    let Some(i) = our_offer.audio_index() else { return Ok(LegCrypto::default()) };
    let offered = crypto_lines(our_offer, i);
    if offered.is_empty() || !is_secure(&our_offer.media[i]) {
        return Ok(LegCrypto::default());
    }
    let am = answer.media.get(i).ok_or(SdpError::NoAcceptableCrypto)?;
    if !is_secure(am) {
        return Err(SdpError::NoAcceptableCrypto);
    }
    crypto_lines(answer, i)
        .into_iter()
        .find_map(|a| {
            offered
                .iter()
                .find(|o| o.tag == a.tag && o.keys.suite == a.keys.suite)
                .map(|o| LegCrypto { rx: Some(a.keys), tx: Some(o.keys) })
        })
        .ok_or(SdpError::NoAcceptableCrypto)
}

/// `text` with the key material of every `inline:` key-param replaced by `<redacted>` (up to the
/// next whitespace or `;`): for any log line that shows SDP.
pub fn redact_keys(text: &str) -> String {
    const MARK: &str = "inline:";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(MARK) {
        let (head, tail) = rest.split_at(at + MARK.len());
        out.push_str(head);
        out.push_str("<redacted>");
        let end = tail.find(|c: char| c.is_whitespace() || c == ';').unwrap_or(tail.len());
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sdp::{rewrite_answer, rewrite_offer, Origin, Rewrite, OFFER};
    use xtrunk_srtp::format_sdes_inline;

    const K80: &str = "inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR";

    fn savp_offer(cryptos: &[String]) -> Sdp {
        let mut t = String::from("v=0\r\no=a 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/SAVP 8 101\r\na=rtpmap:101 telephone-event/8000\r\n");
        for c in cryptos {
            t.push_str(&format!("a=crypto:{c}\r\n"));
        }
        t.push_str("a=sendrecv\r\n");
        Sdp::parse(t.as_bytes()).unwrap()
    }

    fn prefs(policy: SrtpPolicy, suites: &[Suite]) -> SrtpPrefs {
        SrtpPrefs { policy, suites: suites.to_vec() }
    }

    fn gcm_line(tag: u32) -> String {
        format!("{tag} AEAD_AES_128_GCM {}", format_sdes_inline(&[7; 16], &[8; 12]))
    }

    #[test]
    fn suite_selection_follows_trunk_preference() {
        let o = savp_offer(&[format!("1 AES_CM_128_HMAC_SHA1_80 {K80}"), gcm_line(2)]);
        let p = prefs(SrtpPolicy::Mandatory, &[Suite::AeadAes128Gcm, Suite::AesCm128HmacSha1_80]);
        let l = accept_offer(&o, &p).unwrap().unwrap();
        assert_eq!((l.tag, l.keys.suite), (2, SrtpSuite::AeadAes128Gcm));
        assert_eq!(&l.keys.key[..16], &[7; 16]);
        assert_eq!(&l.keys.salt[..12], &[8; 12]);
        let p = prefs(SrtpPolicy::Optional, &[Suite::AesCm128HmacSha1_80]);
        let l = accept_offer(&o, &p).unwrap().unwrap();
        assert_eq!((l.tag, l.keys.suite), (1, SrtpSuite::AesCm128HmacSha1_80));
        assert_eq!(&l.keys.key[..4], b"=-n@");
        // SAVP with no allowed suite.
        let p = prefs(SrtpPolicy::Optional, &[Suite::AesCm128HmacSha1_32]);
        assert_eq!(accept_offer(&o, &p), Err(SdpError::NoAcceptableCrypto));
    }

    #[test]
    fn unusable_lines_are_skipped() {
        let o = savp_offer(&[
            format!("1 AES_CM_128_HMAC_SHA1_80 {K80}|2^20|1:4"),         // MKI
            format!("2 F8_128_HMAC_SHA1_80 {K80}"),                      // unknown suite
            "3 AES_CM_128_HMAC_SHA1_80 inline:!!!!".into(),              // bad base64
            format!("4 AES_CM_128_HMAC_SHA1_80 {K80} UNENCRYPTED_SRTP"), // unsupported param
            format!("5 AES_CM_128_HMAC_SHA1_80 {K80}|2^31"),             // lifetime: fine
        ]);
        let p = prefs(SrtpPolicy::Mandatory, &[Suite::AesCm128HmacSha1_80]);
        assert_eq!(accept_offer(&o, &p).unwrap().unwrap().tag, 5);
        let o = savp_offer(&[format!("1 AES_CM_128_HMAC_SHA1_80 {K80}|2^20|1:4")]);
        assert_eq!(accept_offer(&o, &p), Err(SdpError::NoAcceptableCrypto));
        assert_eq!(accept_offer(&savp_offer(&[]), &p), Err(SdpError::NoAcceptableCrypto));
    }

    #[test]
    fn refusals_488() {
        let all = Suite::ALL;
        let savp = savp_offer(&[format!("1 AES_CM_128_HMAC_SHA1_80 {K80}")]);
        let avp = Sdp::parse(OFFER.as_bytes()).unwrap(); // RTP/AVP (with a stray a=crypto)
        assert_eq!(accept_offer(&savp, &prefs(SrtpPolicy::Off, &all)), Err(SdpError::SrtpOnly));
        assert_eq!(accept_offer(&avp, &prefs(SrtpPolicy::Mandatory, &all)), Err(SdpError::SrtpRequired));
        assert_eq!(accept_offer(&avp, &prefs(SrtpPolicy::Optional, &all)), Ok(None));
        assert_eq!(accept_offer(&avp, &prefs(SrtpPolicy::Off, &all)), Ok(None));
        for e in [SdpError::SrtpOnly, SdpError::SrtpRequired, SdpError::NoAcceptableCrypto] {
            assert_eq!(e.status().0, 488);
            assert!(e.warning().is_some());
        }
        assert_eq!(SdpError::NoAcceptableCrypto.warning(), Some("no acceptable SRTP crypto"));
        assert_eq!(SdpError::NoCommonCodec.warning(), None);
    }

    #[test]
    fn fresh_keys_are_random_and_sized() {
        for s in Suite::ALL {
            let rs = ring_suite(s);
            let a = fresh_keys(rs).unwrap();
            let b = fresh_keys(rs).unwrap();
            assert_eq!(a.suite, rs);
            assert_ne!(a.key, b.key);
            assert_ne!(a.salt, b.salt);
            // Only the suite's lengths are used; the rest stays zero.
            assert!(a.key[s.key_len()..].iter().all(|b| *b == 0));
            assert!(a.salt[s.salt_len()..].iter().all(|b| *b == 0));
            assert!(a.key[..s.key_len()].iter().any(|b| *b != 0));
            assert_eq!(sdes_suite(rs), s);
        }
    }

    #[test]
    fn srtp_offer_and_answer_round_trip() {
        // We offer SRTP to a mandatory trunk: RTP/SAVP, one line per suite, fresh keys.
        let plain = Sdp::parse(OFFER.as_bytes()).unwrap();
        let allowed = vec![xtrunk_config::Codec::Pcma, xtrunk_config::Codec::Pcmu];
        let rw = Rewrite { ip: "192.0.2.1".parse().unwrap(), port: 20000, allowed: &allowed, srtp_off: false };
        let mut origin = Origin { id: 7, version: 0 };
        let mut ours = rewrite_offer(&plain, &rw, &mut origin).unwrap();
        let suites = [Suite::AesCm128HmacSha1_80, Suite::AeadAes256Gcm];
        add_offer_crypto(&mut ours, &suites, None).unwrap();
        let text = String::from_utf8(ours.to_bytes()).unwrap();
        assert!(text.contains("m=audio 20000 RTP/SAVP 8 0\r\n"), "{text}");
        assert!(text.contains("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"));
        assert!(text.contains("a=crypto:2 AEAD_AES_256_GCM inline:"));
        assert!(text.find("a=crypto:2").unwrap() < text.find("a=sendonly").unwrap());
        // The caller's stray crypto line did not cross.
        assert!(!text.contains("inline:xx"));
        let offered = crypto_lines(&ours, 0);
        assert_eq!(offered.len(), 2);
        assert_ne!(offered[0].keys.key[..16], offered[1].keys.key[..16]);

        // The peer answers tag 2.
        let peer = fresh_keys(SrtpSuite::AeadAes256Gcm).unwrap();
        let mut ans = Sdp::parse(b"v=0\r\nc=IN IP4 10.9.9.9\r\nm=audio 7000 RTP/SAVP 8\r\n").unwrap();
        add_answer_crypto(&mut ans, 2, &peer);
        let c = answer_crypto(&ours, &ans).unwrap();
        assert_eq!(c.rx, Some(peer));
        assert_eq!(c.tx, Some(offered[1].keys));
        // Wrong suite for the tag, unknown tag, plain answer: refused.
        let mut bad = Sdp::parse(b"v=0\r\nc=IN IP4 10.9.9.9\r\nm=audio 7000 RTP/SAVP 8\r\n").unwrap();
        add_answer_crypto(&mut bad, 1, &peer);
        assert_eq!(answer_crypto(&ours, &bad), Err(SdpError::NoAcceptableCrypto));
        let mut bad = Sdp::parse(b"v=0\r\nc=IN IP4 10.9.9.9\r\nm=audio 7000 RTP/SAVP 8\r\n").unwrap();
        add_answer_crypto(&mut bad, 9, &peer);
        assert_eq!(answer_crypto(&ours, &bad), Err(SdpError::NoAcceptableCrypto));
        let plain_ans = Sdp::parse(b"v=0\r\nc=IN IP4 10.9.9.9\r\nm=audio 7000 RTP/AVP 8\r\n").unwrap();
        assert_eq!(answer_crypto(&ours, &plain_ans), Err(SdpError::NoAcceptableCrypto));
        // A plain offer: any crypto in the answer is ignored.
        let plain_ours = rewrite_offer(&plain, &rw, &mut origin).unwrap();
        assert_eq!(answer_crypto(&plain_ours, &ans), Ok(LegCrypto::default()));

        // A re-offer keeps our key for its suite and makes fresh ones for the others.
        let mut re = rewrite_offer(&plain, &rw, &mut origin).unwrap();
        add_offer_crypto(&mut re, &suites, Some(&offered[1].keys)).unwrap();
        let again = crypto_lines(&re, 0);
        assert_eq!(again[1].keys, offered[1].keys);
        assert_ne!(again[0].keys, offered[0].keys);
    }

    #[test]
    fn answering_an_srtp_offer_echoes_tag_with_our_key() {
        let offer = savp_offer(&[format!("1 AES_CM_128_HMAC_SHA1_80 {K80}")]);
        let p = prefs(SrtpPolicy::Optional, &[Suite::AesCm128HmacSha1_80]);
        let (tag, c) = answer_offer_crypto(&offer, &p, &LegCrypto::default()).unwrap().unwrap();
        assert_eq!(tag, 1);
        let theirs = crypto_lines(&offer, 0)[0].keys;
        assert_eq!(c.rx, Some(theirs));
        let ours = c.tx.unwrap();
        assert_ne!(ours.key, theirs.key);
        // The callee's answer rewritten for the offerer keeps RTP/SAVP; add our line.
        let ans = Sdp::parse(b"v=0\r\nc=IN IP4 10.9.9.9\r\nm=audio 7000 RTP/AVP 8\r\n").unwrap();
        let allowed = vec![xtrunk_config::Codec::Pcma];
        let rw = Rewrite { ip: "192.0.2.1".parse().unwrap(), port: 30000, allowed: &allowed, srtp_off: false };
        let mut out = rewrite_answer(&ans, &offer, &rw, &mut Origin { id: 1, version: 0 }).unwrap();
        add_answer_crypto(&mut out, tag, &ours);
        let text = String::from_utf8(out.to_bytes()).unwrap();
        assert!(text.contains("m=audio 30000 RTP/SAVP 8\r\n"), "{text}");
        assert!(text.contains("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:"));
        assert!(!text.contains(&K80[7..]), "the offerer's key must not be echoed");
        assert_eq!(crypto_lines(&out, 0)[0].keys, ours);
        // Re-offer with the same key: our key is kept; the peer re-keys: so do we.
        let (_, c2) = answer_offer_crypto(&offer, &p, &c).unwrap().unwrap();
        assert_eq!(c2, c);
        let rekeyed = savp_offer(&[format!("1 AES_CM_128_HMAC_SHA1_80 {}", format_sdes_inline(&[1; 16], &[2; 14]))]);
        let (_, c3) = answer_offer_crypto(&rekeyed, &p, &c).unwrap().unwrap();
        assert_ne!(c3.tx, c.tx);
        assert_ne!(c3.rx, c.rx);
        // Plain offer on an optional trunk: no crypto.
        let plain = Sdp::parse(OFFER.as_bytes()).unwrap();
        assert_eq!(answer_offer_crypto(&plain, &p, &c), Ok(None));
    }

    #[test]
    fn offer_policy() {
        let p = |policy| prefs(policy, &[Suite::AesCm128HmacSha1_80]);
        assert!(!p(SrtpPolicy::Off).offer_srtp(true));
        assert!(!p(SrtpPolicy::Optional).offer_srtp(false));
        assert!(p(SrtpPolicy::Optional).offer_srtp(true));
        assert!(p(SrtpPolicy::Mandatory).offer_srtp(false));
        let mut t = xtrunk_config::Snapshot::embedded_default().unwrap().trunks[0].clone();
        t.srtp_suites = vec![xtrunk_config::SrtpSuite::AeadAes128Gcm, xtrunk_config::SrtpSuite::AesCm128HmacSha1_32];
        assert_eq!(SrtpPrefs::of(&t).suites, vec![Suite::AeadAes128Gcm, Suite::AesCm128HmacSha1_32]);
    }

    #[test]
    fn keys_are_redacted() {
        let o = savp_offer(&[format!("1 AES_CM_128_HMAC_SHA1_80 {K80}|2^20 KDR=0"), gcm_line(2)]);
        let text = String::from_utf8(o.to_bytes()).unwrap();
        let r = redact_keys(&text);
        assert!(!r.contains("PS1uQCVe") && !r.contains("BwcH"), "{r}");
        assert!(r.contains("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:<redacted> KDR=0\r\n"), "{r}");
        assert_eq!(r.matches("inline:<redacted>").count(), 2);
        assert_eq!(redact_keys("no keys"), "no keys");
        assert_eq!(redact_keys("x inline:"), "x inline:<redacted>");
        for dbg in [format!("{o:?}"), format!("{:?}", o.media[0]), format!("{:?}", crypto_lines(&o, 0))] {
            assert!(!dbg.contains("PS1uQCVe") && !dbg.contains("BwcH"), "{dbg}");
        }
    }
}
