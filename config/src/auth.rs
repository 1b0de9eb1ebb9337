//! Digest authentication and scanner resistance: `[sip.auth]`, `sip.unknown_source` and the
//! credentials of a trunk (`[[trunk.users]]`).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::validate::Validator;

/// `[sip.auth]`: the digest challenge and the per-source ban.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SipAuth {
    /// Realm of every challenge; default `node.name`. One realm for the edge: a challenge is
    /// sent before the user is known, so it cannot depend on the user.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub realm: Option<String>,
    /// Algorithms offered, one challenge header each, in this order (default SHA-256, MD5).
    /// A peer that takes the first header it sees and knows only MD5 needs `["MD5"]`.
    pub algorithms: Vec<DigestAlgorithm>,
    /// Seconds a nonce is good for; an older one gets a new challenge with `stale=true`.
    pub nonce_lifetime_secs: u32,
    /// Nonces whose nonce-count is tracked (replay protection); bounded, ageing out.
    pub max_nonces: usize,
    /// Failures (digest failures, requests from a source in no trunk's ACL) within
    /// `ban_window_secs` that ban a source; 0 never bans.
    pub ban_failures: u32,
    /// The window failures are counted in.
    pub ban_window_secs: u32,
    /// How long a banned source gets silence.
    pub ban_secs: u32,
    /// Sources whose failures are tracked (the oldest is evicted when full).
    pub max_sources: usize,
}

impl Default for SipAuth {
    fn default() -> Self {
        Self {
            realm: None,
            algorithms: vec![DigestAlgorithm::Sha256, DigestAlgorithm::Md5],
            nonce_lifetime_secs: 300,
            max_nonces: 65_536,
            ban_failures: 20,
            ban_window_secs: 60,
            ban_secs: 600,
            max_sources: 16_384,
        }
    }
}

/// A digest algorithm (RFC 8760).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
pub enum DigestAlgorithm {
    /// MD5.
    #[serde(rename = "MD5")]
    Md5,
    /// SHA-256.
    #[serde(rename = "SHA-256")]
    Sha256,
    /// SHA-512/256.
    #[serde(rename = "SHA-512-256")]
    Sha512_256,
}

/// What a request from a source in no trunk's ACL (and not authenticating) gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize, Serialize)]
pub enum UnknownSource {
    /// `403 Forbidden` (the default; what this edge always answered to INVITEs).
    #[default]
    #[serde(rename = "403")]
    Forbidden,
    /// Nothing (counted).
    #[serde(rename = "drop")]
    Drop,
}

impl UnknownSource {
    pub(crate) fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

/// One digest user of a trunk (`[[trunk.users]]`): an HA1 per algorithm, or a password.
#[derive(Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TrunkUser {
    /// The digest username (unique over all trunks: it identifies the trunk).
    pub username: String,
    /// Plain password: accepted, but `check-config` warns (prefer the `ha1_*` keys).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// `MD5(username:realm:password)`, 32 hex digits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ha1_md5: Option<String>,
    /// `SHA-256(username:realm:password)`, 64 hex digits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ha1_sha256: Option<String>,
    /// `SHA-512-256(username:realm:password)`, 64 hex digits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ha1_sha512_256: Option<String>,
}

impl fmt::Debug for TrunkUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let set = |o: &Option<String>| o.as_ref().map(|_| "<redacted>");
        f.debug_struct("TrunkUser")
            .field("username", &self.username)
            .field("password", &set(&self.password))
            .field("ha1_md5", &set(&self.ha1_md5))
            .field("ha1_sha256", &set(&self.ha1_sha256))
            .field("ha1_sha512_256", &set(&self.ha1_sha512_256))
            .finish()
    }
}

/// Checks `[sip.auth]` (at `p`).
pub(crate) fn validate_sip_auth(v: &mut Validator, p: &str, a: &SipAuth) {
    if a.algorithms.is_empty() {
        v.add(format!("{p}.algorithms"), "must offer at least one algorithm");
    }
    for (i, x) in a.algorithms.iter().enumerate() {
        if a.algorithms[..i].contains(x) {
            v.add(format!("{p}.algorithms[{i}]"), "listed twice");
        }
    }
    if a.nonce_lifetime_secs == 0 {
        v.add(format!("{p}.nonce_lifetime_secs"), "must be at least 1");
    }
    if a.max_nonces < 16 {
        v.add(format!("{p}.max_nonces"), format!("must be at least 16, got {}", a.max_nonces));
    }
    if a.max_sources == 0 {
        v.add(format!("{p}.max_sources"), "must be at least 1");
    }
    if a.realm.as_ref().is_some_and(|r| r.is_empty() || r.chars().any(char::is_control)) {
        v.add(format!("{p}.realm"), "must be non-empty, without control characters");
    }
}

/// Checks the users of trunk `p` with `auth` mode `digest` (`uses`: digest or both).
pub(crate) fn validate_users(v: &mut Validator, p: &str, uses_digest: bool, users: &[TrunkUser]) {
    if uses_digest && users.is_empty() {
        v.add(format!("{p}.users"), "auth uses digest but the trunk has no users");
    }
    if !uses_digest && !users.is_empty() {
        v.add(format!("{p}.users"), "users are only read with auth = \"digest\" or \"both\"");
    }
    for (i, u) in users.iter().enumerate() {
        let q = format!("{p}.users[{i}]");
        if u.username.is_empty() || u.username.len() > 256 || u.username.chars().any(char::is_control) {
            v.add(format!("{q}.username"), "must be 1 to 256 characters, without control characters");
        }
        if users[..i].iter().any(|o| o.username == u.username) {
            v.add(format!("{q}.username"), format!("{:?} listed twice", u.username));
        }
        let hashes =
            [(&u.ha1_md5, "ha1_md5", 32), (&u.ha1_sha256, "ha1_sha256", 64), (&u.ha1_sha512_256, "ha1_sha512_256", 64)];
        for (h, key, len) in hashes {
            if let Some(h) = h {
                if h.len() != len || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
                    v.add(format!("{q}.{key}"), format!("must be {len} hex digits"));
                }
            }
        }
        if u.password.is_none() && hashes.iter().all(|(h, _, _)| h.is_none()) {
            v.add(q.clone(), "needs ha1_md5, ha1_sha256, ha1_sha512_256 or password");
        }
    }
}

/// Warnings for trunk `p`'s users: a plain password in the file.
pub(crate) fn warn_users(p: &str, users: &[TrunkUser], out: &mut Vec<crate::Problem>) {
    for (i, u) in users.iter().enumerate() {
        if u.password.is_some() {
            out.push(crate::Problem {
                path: format!("{p}.users[{i}].password"),
                reason: "a plain password is stored in the file; prefer ha1_md5 / ha1_sha256 (HA1 hashes)".into(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::{AuthMode, Config, Host, TrunkUser};

    fn problems(tweak: impl FnOnce(&mut Config)) -> Vec<String> {
        let mut c = Config::embedded_default().unwrap();
        tweak(&mut c);
        c.validate(Host { cores: 2, check_paths: false }).into_iter().map(|p| p.to_string()).collect()
    }

    fn user(name: &str) -> TrunkUser {
        TrunkUser { username: name.into(), password: None, ha1_md5: None, ha1_sha256: None, ha1_sha512_256: None }
    }

    #[test]
    fn digest_trunk_without_users_names_the_key() {
        let p = problems(|c| c.trunks[0].auth = AuthMode::Digest);
        assert!(p.iter().any(|p| p.starts_with("trunk[0].users:") && p.contains("no users")), "{p:?}");
    }

    #[test]
    fn users_checked_by_key_path() {
        let p = problems(|c| {
            c.trunks[0].auth = AuthMode::Both;
            let mut a = user("alice");
            a.ha1_md5 = Some("abc".into());
            c.trunks[0].users = vec![a, user("bob"), user("bob")];
            c.sip.auth.algorithms.clear();
        });
        let has = |k: &str| p.iter().any(|p| p.starts_with(k));
        assert!(has("trunk[0].users[0].ha1_md5: must be 32 hex digits"), "{p:?}");
        assert!(has("trunk[0].users[1]: needs"), "{p:?}");
        assert!(has("trunk[0].users[2].username"), "{p:?}");
        assert!(has("sip.auth.algorithms"), "{p:?}");
    }

    #[test]
    fn a_plain_password_is_accepted_with_a_warning() {
        let mut c = Config::embedded_default().unwrap();
        c.trunks[0].auth = AuthMode::Digest;
        let mut u = user("alice");
        u.password = Some("secret".into());
        c.trunks[0].users = vec![u];
        assert!(c.validate(Host { cores: 2, check_paths: false }).is_empty());
        let w = c.warnings();
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].path, "trunk[0].users[0].password");
        assert!(!format!("{:?}", c.trunks[0].users[0]).contains("secret"));
    }

    #[test]
    fn toml_spelling() {
        let t = r#"
            [sip]
            unknown_source = "drop"
            [sip.auth]
            algorithms = ["MD5"]
            ban_secs = 5
        "#;
        let c: Config = toml::from_str(t).unwrap();
        assert_eq!(c.sip.unknown_source, crate::UnknownSource::Drop);
        assert_eq!(c.sip.auth.algorithms, vec![crate::DigestAlgorithm::Md5]);
    }
}
