//! `[[trunk.registration]]`: the edge registering upstream for a `kind = "register"` trunk
//! (Kwebbl, Plivo's registration trunks). Each registration is one registrar the edge keeps a
//! binding at; a trunk with two has a primary and a secondary (tried in the order listed). The
//! registrars are also where the trunk's calls go: an outbound call tries the registrars whose
//! registration is up, in order; an inbound call from a registrar is the trunk's.

use std::fmt;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::validate::Validator;
use crate::Transport;

/// Registrations one trunk may hold.
pub const MAX_REGISTRATIONS: usize = 4;

/// One upstream registration.
#[derive(Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Registration {
    /// The registrar (and proxy for the trunk's calls): IP address and port.
    pub registrar: SocketAddr,
    /// Transport to it; default udp.
    #[serde(default = "udp")]
    pub transport: Transport,
    /// The carrier's SIP domain: the host of the address-of-record (`sip:username@domain`) and
    /// of the REGISTER's Request-URI; default the registrar's address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// The account's user name at the carrier (the AOR's user part).
    pub username: String,
    /// The digest user name, when the carrier's differs from `username`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_username: Option<String>,
    /// The digest password (a client must hold it: the realm and algorithm are the carrier's
    /// choice). Shown as `<redacted>` by the admin API.
    pub password: String,
    /// Expiry asked for, in seconds (default 600; the registrar may grant less). The binding
    /// is refreshed when 3/4 of what was granted has passed.
    #[serde(default = "default_expires")]
    pub expires_secs: u32,
    /// Seconds before a failed registration is tried again (default 30), doubling on each
    /// failure in a row up to ten times that.
    #[serde(default = "default_retry")]
    pub retry_secs: u32,
    /// The user part of the Contact registered (where the carrier sends the trunk's calls);
    /// default `username`. Calls to it take the dialled number from their To header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_user: Option<String>,
}

impl Registration {
    /// The digest user name.
    pub fn auth_user(&self) -> &str {
        self.auth_username.as_deref().unwrap_or(&self.username)
    }

    /// The Contact's user part.
    pub fn contact(&self) -> &str {
        self.contact_user.as_deref().unwrap_or(&self.username)
    }

    /// The address-of-record's host: `domain`, else the registrar address (IPv6 bracketed).
    pub fn aor_host(&self) -> String {
        match &self.domain {
            Some(d) => d.clone(),
            None => self.registrar.to_string(),
        }
    }
}

impl fmt::Debug for Registration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registration")
            .field("registrar", &self.registrar)
            .field("transport", &self.transport)
            .field("domain", &self.domain)
            .field("username", &self.username)
            .field("auth_username", &self.auth_username)
            .field("password", &"<redacted>")
            .field("expires_secs", &self.expires_secs)
            .field("retry_secs", &self.retry_secs)
            .field("contact_user", &self.contact_user)
            .finish()
    }
}

fn udp() -> Transport {
    Transport::Udp
}

fn default_expires() -> u32 {
    600
}

fn default_retry() -> u32 {
    30
}

/// A user part we put into a URI unescaped: RFC 3261 `unreserved` and the user-unreserved marks.
fn is_user_text(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.!~*'()&=+$,;?/".contains(&b))
}

/// Checks the registrations of trunk `p` (`register`: the trunk's kind is `register`).
pub(crate) fn validate(v: &mut Validator, p: &str, register: bool, regs: &[Registration]) {
    if !register {
        if !regs.is_empty() {
            v.add(format!("{p}.registration"), "only a trunk with kind = \"register\" registers upstream");
        }
        return;
    }
    if regs.is_empty() {
        v.add(format!("{p}.registration"), "kind = \"register\" needs at least one [[trunk.registration]]");
    }
    if regs.len() > MAX_REGISTRATIONS {
        v.add(format!("{p}.registration"), format!("at most {MAX_REGISTRATIONS}, got {}", regs.len()));
    }
    for (i, r) in regs.iter().enumerate() {
        let q = format!("{p}.registration[{i}]");
        if regs[..i].iter().any(|o| o.registrar == r.registrar && o.transport == r.transport) {
            v.add(format!("{q}.registrar"), format!("{} is listed twice", r.registrar));
        }
        if r.registrar.port() == 0 || r.registrar.ip().is_unspecified() {
            v.add(format!("{q}.registrar"), format!("needs an address and a port, got {}", r.registrar));
        }
        if !is_user_text(&r.username) {
            v.add(
                format!("{q}.username"),
                "must be 1-64 characters of a SIP user part (letters, digits, -_.!~*'()&=+$,;?/)",
            );
        }
        if let Some(a) = &r.auth_username {
            if a.is_empty() || a.chars().any(|c| c.is_control() || c == '"' || c == '\\') {
                v.add(
                    format!("{q}.auth_username"),
                    "must be non-empty, without quotes, backslashes or control characters",
                );
            }
        }
        if let Some(c) = &r.contact_user {
            if !is_user_text(c) {
                v.add(format!("{q}.contact_user"), "must be 1-64 characters of a SIP user part");
            }
        }
        if let Some(d) = &r.domain {
            if d.is_empty() || d.len() > 253 || !d.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b)) {
                v.add(format!("{q}.domain"), format!("must be a host name or address, got {d:?}"));
            }
        }
        if r.password.is_empty() || r.password.chars().any(char::is_control) {
            v.add(format!("{q}.password"), "must be non-empty, without control characters");
        }
        if !(10..=86_400).contains(&r.expires_secs) {
            v.add(format!("{q}.expires_secs"), format!("must be 10..=86400, got {}", r.expires_secs));
        }
        if !(1..=3600).contains(&r.retry_secs) {
            v.add(format!("{q}.retry_secs"), format!("must be 1..=3600, got {}", r.retry_secs));
        }
    }
}
