//! xtrunk signaling sidecar: a SIP B2BUA for trunks, sans-IO cores and a thin mio shell.
//!
//! * [`sip::msg`] — message model, parser (compact forms, folding, lists), serializer.
//! * [`sip::transaction`] — RFC 3261 §17 transactions on caller-supplied time.
//! * [`sdp`] — SDP parse and offer/answer rewrite onto the relay.
//! * [`b2bua`] — calls, dialogs, routing, CANCEL/BYE/re-INVITE/UPDATE/REFER, CDRs.
//! * [`ports`] — the media port pool; [`media`] — the [`media::MediaPort`] seam to the datapath.
//! * [`journal`] — restart safety; [`shell`] — sockets, mio, the [`run`] entry point.

#![forbid(unsafe_code)]

pub mod b2bua;
pub mod cdr;
pub mod journal;
pub mod media;
pub mod metrics;
pub mod ports;
pub mod sdp;
pub mod shell;
pub mod sip;
pub mod transport;

pub use media::{Backpressure, LoopbackMedia, MediaPort};
pub use shell::{run, Server, Summary};
