//! One dialog (RFC 3261 §12) as the B2BUA holds it: identifiers, CSeq, route set, remote target
//! and where its requests go. Builds every in-dialog request and the ACK of a 2xx in one place.

use super::msg::{HName, Message, Method, NameAddr};
use crate::transport::Dest;

/// A dialog, UAC or UAS side.
#[derive(Clone, Debug)]
pub struct Dialog {
    /// Call-ID.
    pub call_id: String,
    /// Our tag.
    pub local_tag: String,
    /// Our From (UAC) / To (UAS) header value, tag included.
    pub local_hdr: String,
    /// The peer's header value, tag included once known.
    pub remote_hdr: String,
    /// The peer's tag (empty until the dialog is established).
    pub remote_tag: String,
    /// Our last CSeq.
    pub local_cseq: u32,
    /// The peer's last CSeq (journaled; not yet checked, RFC 3261 §12.2.2).
    pub remote_cseq: u32,
    /// Remote target (the peer's Contact URI).
    pub remote_target: String,
    /// Route set, in the order Route headers are sent.
    pub route_set: Vec<String>,
    /// Where in-dialog requests go.
    pub dest: Dest,
}

impl Dialog {
    /// An in-dialog request (RFC 3261 §12.2.1.1) with a new CSeq. `contact` is omitted when
    /// empty; `body` is (Content-Type, bytes).
    pub fn request(&mut self, method: Method, via: String, contact: String, body: Option<(&str, Vec<u8>)>) -> Message {
        self.local_cseq += 1;
        let seq = self.local_cseq;
        self.build(method, seq, via, contact, body)
    }

    /// The ACK of a 2xx to our (re-)INVITE: the INVITE's CSeq number, no Contact (§13.2.2.4).
    pub fn ack(&self, via: String) -> Message {
        self.build(Method::Ack, self.local_cseq, via, String::new(), None)
    }

    fn build(&self, method: Method, seq: u32, via: String, contact: String, body: Option<(&str, Vec<u8>)>) -> Message {
        let mut m = Message::request(method.clone(), self.remote_target.clone());
        m.push(HName::Via, via)
            .push(HName::MaxForwards, "70")
            .push(HName::From, self.local_hdr.clone())
            .push(HName::To, self.remote_hdr.clone())
            .push(HName::CallId, self.call_id.clone())
            .push(HName::CSeq, format!("{seq} {method}"));
        for r in &self.route_set {
            m.push(HName::Route, r.clone());
        }
        if !contact.is_empty() {
            m.push(HName::Contact, contact);
        }
        if let Some((ct, b)) = body {
            m.push(HName::ContentType, ct);
            m.body = b;
        }
        m
    }

    /// Establishes the UAC side from a 2xx (§12.1.2): remote tag and header, remote target
    /// (Contact, else the address we sent to) and the route set (Record-Route reversed).
    pub fn confirm(&mut self, resp: &Message) {
        self.remote_tag = resp.to_tag().unwrap_or_default().to_string();
        self.remote_hdr = resp.header(&HName::To).unwrap_or("").to_string();
        self.remote_target = resp
            .header(&HName::Contact)
            .and_then(|c| NameAddr::parse(c).ok())
            .map(|n| n.uri)
            .unwrap_or_else(|| format!("sip:{}", self.dest.remote));
        let mut rs: Vec<String> = resp.headers_of(&HName::RecordRoute).map(str::to_string).collect();
        rs.reverse();
        self.route_set = rs;
    }
}
