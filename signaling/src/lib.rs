//! xtrunk signaling sidecar: a SIP B2BUA for trunks, sans-IO cores and a thin mio shell.
//!
//! * [`sip::msg`] — message model, parser (compact forms, folding, lists), serializer.
//! * [`sip::transaction`] — RFC 3261 §17 transactions on caller-supplied time.
//! * [`sdp`] — SDP parse and offer/answer rewrite onto the relay.
//! * [`b2bua`] — the core: `handle_*` in, `poll_*` out, dispatch.
//! * [`policy`] — pure call-setup decisions: [`policy::IncomingCall`] in, [`policy::Decision`] out.
//! * [`call`] — call mechanics carrying decisions out: setup, progress, teardown, re-offers,
//!   transfers, timers, restart.
//! * [`sip::dialog`], [`sip::status`], [`sip::preflight`] — dialogs, status codes, request checks.
//! * [`ports`] — the media port pool; [`media`] — the [`media::MediaPort`] seam to the datapath.
//! * [`journal`] — restart safety; [`files`] — private files (0600, no symlinks);
//!   [`shell`] — sockets, mio, the [`run`] entry point; [`tcp`] — its TCP connections (limits,
//!   ACL at accept, O(n) framing, fair reading).
//! * [`testing`] — the one test rig (a core pumped on simulated time) for tests, benches and fuzzing.

#![forbid(unsafe_code)]

pub mod auth;
pub mod b2bua;
pub mod call;
pub mod cdr;
pub mod cdr_file;
pub mod dns;
pub mod files;
pub mod fleet;
pub mod health;
mod icmp;
pub mod ids;
pub mod journal;
pub mod media;
pub mod metrics;
pub mod ops;
pub mod overload;
pub mod policy;
pub mod ports;
pub mod probe;
pub mod registrar;
pub mod reload;
pub mod sdp;
pub mod shell;
pub mod sip;
pub mod tcp;
pub mod testing;
pub mod tls;
pub mod transport;
mod udp;
pub mod upstream;

pub use media::{Backpressure, LoopbackMedia, MediaPort};
pub use shell::{run, Flags, Server, Summary};
