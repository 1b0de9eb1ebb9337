//! xtrunk datapath: packet views, the sans-IO relay core, socket and AF_XDP backends
