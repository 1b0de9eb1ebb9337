//! xtrunk datapath: typed packet views, the sans-IO relay core, and the two backends that drive it
//! (portable UDP sockets, and AF_XDP with the XDP program from `ebpf/`).
//!
//! `wire`, `relay` and `control` need neither libc nor aya. The backends are cargo features, both
//! on by default: `socket` (libc, core_affinity) and `xsk` (libc, core_affinity, aya and
//! `xtrunk-ebpf`, whose build script runs clang).

pub mod codec;
pub mod control;
pub mod relay;
#[cfg(feature = "socket")]
pub mod socket;
pub mod wire;
#[cfg(feature = "xsk")]
pub mod xsk;
