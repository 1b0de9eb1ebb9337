//! The sans-IO relay core: sessions, legs, latching, payload mapping, stats. No sockets, no clock.
