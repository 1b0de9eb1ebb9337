//! IPv4 + UDP: no panic; what parses re-emits to the same headers and checksums.
#![no_main]

use std::net::IpAddr;

use libfuzzer_sys::fuzz_target;
use xtrunk_datapath::wire::ipv4::{Ipv4Packet, Ipv4Repr};
use xtrunk_datapath::wire::udp::{UdpPacket, UdpRepr};

fuzz_target!(|data: &[u8]| {
    let Ok(ip) = Ipv4Packet::new_checked(data) else {
        return;
    };
    let _ = (ip.dscp(), ip.ecn(), ip.ident(), ip.dont_frag(), ip.frag_offset(), ip.verify_checksum());
    let Ok(repr) = Ipv4Repr::parse(&ip) else {
        return;
    };
    let mut out = vec![0u8; 20 + repr.payload_len];
    repr.emit(&mut out).unwrap();
    assert_eq!(Ipv4Repr::parse(&Ipv4Packet::new_checked(&out[..]).unwrap()).unwrap(), repr);
    let (src, dst) = (IpAddr::V4(repr.src), IpAddr::V4(repr.dst));
    let Ok(u) = UdpPacket::new_checked(ip.payload()) else {
        return;
    };
    let ok = u.verify_checksum(&src, &dst);
    let _ = u.payload();
    if let Ok(r) = UdpRepr::parse(&u, &src, &dst) {
        assert!(ok);
        let mut out = vec![0u8; 8 + u.payload().len()];
        r.emit(&mut out, &src, &dst, u.payload()).unwrap();
        let again = UdpPacket::new_checked(&out[..]).unwrap();
        assert!(again.verify_checksum(&src, &dst));
        assert_eq!(again.payload(), u.payload());
    }
});
