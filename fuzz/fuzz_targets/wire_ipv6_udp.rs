//! IPv6 + UDP: no panic; what parses re-emits with a valid checksum.
#![no_main]

use std::net::IpAddr;

use libfuzzer_sys::fuzz_target;
use xtrunk_datapath::wire::ipv6::{Ipv6Packet, Ipv6Repr};
use xtrunk_datapath::wire::udp::{UdpPacket, UdpRepr};

fuzz_target!(|data: &[u8]| {
    let Ok(ip) = Ipv6Packet::new_checked(data) else {
        return;
    };
    let repr = Ipv6Repr::parse(&ip).expect("checked packet parses");
    let mut hdr = [0u8; 40];
    repr.emit(&mut hdr).unwrap();
    assert_eq!(&hdr[..], &data[..40]);
    let (src, dst) = (IpAddr::V6(repr.src), IpAddr::V6(repr.dst));
    let Ok(u) = UdpPacket::new_checked(ip.payload()) else {
        return;
    };
    if let Ok(r) = UdpRepr::parse(&u, &src, &dst) {
        let mut out = vec![0u8; 8 + u.payload().len()];
        r.emit(&mut out, &src, &dst, u.payload()).unwrap();
        let again = UdpPacket::new_checked(&out[..]).unwrap();
        assert!(again.verify_checksum(&src, &dst));
        assert_eq!(again.checksum(), u.checksum());
    }
});
