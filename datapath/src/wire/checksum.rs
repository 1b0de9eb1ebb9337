//! The Internet checksum (RFC 1071) and the UDP pseudo-headers of IPv4 and IPv6.

use std::net::IpAddr;

/// Adds `data` into a 32-bit one's-complement accumulator (odd trailing byte padded with zero).
pub fn accumulate(mut acc: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        acc = acc.wrapping_add(u32::from(u16::from_be_bytes([c[0], c[1]])));
        // Fold early so the accumulator never overflows on large buffers.
        if acc > 0xFFFF_0000 {
            acc = (acc & 0xFFFF) + (acc >> 16);
        }
    }
    if let [b] = chunks.remainder() {
        acc = acc.wrapping_add(u32::from(*b) << 8);
    }
    acc
}

/// Folds an accumulator into the 16-bit one's-complement sum (not yet inverted).
pub fn fold(mut acc: u32) -> u16 {
    while acc > 0xFFFF {
        acc = (acc & 0xFFFF) + (acc >> 16);
    }
    acc as u16
}

/// The one's-complement sum of `data` (not inverted).
pub fn data(data: &[u8]) -> u16 {
    fold(accumulate(0, data))
}

/// Accumulator of the UDP/TCP pseudo-header for `src`, `dst`, `protocol`, `length`.
/// Mixed address families yield the IPv6 form with the IPv4 address mapped.
pub fn pseudo_header(src: &IpAddr, dst: &IpAddr, protocol: u8, length: u32) -> u32 {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let mut acc = accumulate(0, &s.octets());
            acc = accumulate(acc, &d.octets());
            acc + u32::from(protocol) + (length & 0xFFFF)
        }
        _ => {
            let s = match src {
                IpAddr::V4(a) => a.to_ipv6_mapped(),
                IpAddr::V6(a) => *a,
            };
            let d = match dst {
                IpAddr::V4(a) => a.to_ipv6_mapped(),
                IpAddr::V6(a) => *a,
            };
            let mut acc = accumulate(0, &s.octets());
            acc = accumulate(acc, &d.octets());
            acc + (length >> 16) + (length & 0xFFFF) + u32::from(protocol)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_example() {
        // RFC 1071 section 3 example: 0001 f203 f4f5 f6f7 -> sum ddf2.
        assert_eq!(
            data(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            0xddf2
        );
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(data(&[0x12, 0x34, 0x56]), 0x1234 + 0x5600);
    }
}
