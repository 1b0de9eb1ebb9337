//! xtrunk datapath: typed packet views, the sans-IO relay core, and the two backends that drive it
//! (portable UDP sockets, and AF_XDP with the XDP program from `ebpf/`).

pub mod wire;
pub mod relay;
pub mod socket;
pub mod xsk;
