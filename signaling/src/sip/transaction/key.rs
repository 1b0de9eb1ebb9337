//! Transaction keys and owners.

use std::net::IpAddr;

use crate::sip::msg::{Message, Method};

/// A call of the B2BUA, as transactions name it (the core's call number).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallKey(pub u64);

/// What a call's client or server transaction is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Purpose {
    /// The callee-side INVITE.
    Invite,
    /// CANCEL of the callee-side INVITE.
    Cancel,
    /// A BYE on either leg.
    Bye,
    /// A re-INVITE/UPDATE relayed to the other leg.
    ReOffer,
    /// A NOTIFY of a REFER's progress.
    Notify,
    /// The INVITE toward a transfer target.
    TransferInvite,
    /// Our 2xx to the caller's INVITE (server side; its ACK timeout ends the call).
    Answer2xx,
    /// Our 2xx to a re-INVITE (server side).
    ReOffer2xx,
    /// A session-timer refresh (UPDATE) on leg N.
    Refresh(u8),
    /// Our G.711-only re-INVITE to leg N after a refused T.38 re-offer (`call::fax`).
    FaxFallback(u8),
}

/// Who a transaction reports to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Owner {
    /// A call, for one purpose.
    Call(CallKey, Purpose),
    /// A request that belongs to no call (the BYE of a 2xx nobody wants any more); its events
    /// are dropped.
    Orphan,
    /// An OPTIONS health probe (`crate::health`).
    Probe,
    /// An upstream REGISTER (`crate::upstream`).
    Registration,
}

/// Transaction key: direction + branch + method (ACK matches INVITE), or the RFC 2543 fallback.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TxKey(String);

impl TxKey {
    /// A key that names no transaction of ours (a call rebuilt after a restart keeps one where
    /// its INVITE's server transaction key was).
    pub fn detached(label: String) -> Self {
        Self(label)
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for TxKey {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for TxKey {
    fn borrow(&self) -> &str {
        &self.0
    }
}

pub(super) fn key(server: bool, branch: &str, method: &Method) -> TxKey {
    let m = match method {
        Method::Ack => "INVITE",
        m => m.as_str(),
    };
    let mut k = String::with_capacity(branch.len() + m.len() + 3);
    k.push(if server { 's' } else { 'c' });
    k.push('|');
    k.push_str(branch);
    k.push('|');
    k.push_str(m);
    TxKey(k)
}

/// The transaction key of a received request's server transaction (also usable for CANCEL →
/// INVITE matching with `method = Invite`): RFC 3261 §17.2.3 — branch, the top Via's sent-by
/// and method — plus the source IP, so that a request from elsewhere that copies a peer's
/// branch (its Via is no secret on the wire) is never taken for that peer's retransmission.
pub fn server_key(msg: &Message, method: &Method, src: IpAddr) -> Option<TxKey> {
    let via = msg.top_via_ref()?;
    let branch: std::borrow::Cow<'_, str> = match via.branch() {
        Some(b) if b.starts_with("z9hG4bK") && b.len() > 7 => b.into(),
        // RFC 2543 peers: no usable branch; approximate §17.2.3 with Call-ID, CSeq number and
        // From tag (sent-by is in every key).
        _ => format!(
            "2543:{}:{}:{}",
            msg.call_id().unwrap_or(""),
            msg.cseq().map_or(0, |c| c.seq),
            msg.from_tag().unwrap_or_default(),
        )
        .into(),
    };
    let port = via.port.unwrap_or(if via.transport.eq_ignore_ascii_case("TLS") { 5061 } else { 5060 });
    // One allocation, no `fmt`: this runs for every request received.
    let mut k = String::with_capacity(branch.len() + via.host.len() + 64);
    k.push_str(&branch);
    k.push('|');
    k.extend(via.host.chars().map(|c| c.to_ascii_lowercase()));
    k.push(':');
    push_hex(&mut k, &port.to_be_bytes());
    k.push('|');
    match src {
        IpAddr::V4(a) => push_hex(&mut k, &a.octets()),
        IpAddr::V6(a) => push_hex(&mut k, &a.octets()),
    }
    Some(key(true, &k, method))
}

fn push_hex(k: &mut String, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        k.push(char::from(HEX[usize::from(b >> 4)]));
        k.push(char::from(HEX[usize::from(b & 15)]));
    }
}
