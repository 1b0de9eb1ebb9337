//! xtrunk signaling sidecar: SIP B2BUA for trunks, sans-IO cores and a mio shell
