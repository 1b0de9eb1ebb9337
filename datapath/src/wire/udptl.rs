//! UDPTL (ITU-T T.38 §9.1): the datagram that carries T.38 fax IFP packets over UDP.
//!
//! ```text
//! UDPTLPacket ::= SEQUENCE {
//!     seq-number            INTEGER (0..65535),        -- 2 bytes
//!     primary-ifp-packet    OPEN TYPE,                 -- length determinant + bytes
//!     error-recovery        CHOICE {                   -- 1 bit, in the next byte's MSB
//!         secondary-ifp-packets  SEQUENCE OF OPEN TYPE,   -- count, then each
//!         fec-info               SEQUENCE { fec-npackets INTEGER, fec-data SEQUENCE OF OCTET STRING } } }
//! ```
//!
//! ASN.1 PER (aligned) as every T.38 stack writes it: a length determinant is one byte below
//! 0x80, or two bytes `10xxxxxx xxxxxxxx` (up to 16 383); the fragmented form (`11…`) is not
//! used by T.38 endpoints and is refused ([`Error::Unsupported`]). [`Udptl::new_checked`] walks
//! the whole packet once; afterwards no accessor can panic.

use super::{Error, Result};

/// Most redundant or FEC entries accepted in one packet (T.38 stacks send a handful).
pub const MAX_ENTRIES: usize = 32;

/// Reads a PER length determinant at `*at`.
fn length(b: &[u8], at: &mut usize) -> Result<usize> {
    let first = *b.get(*at).ok_or(Error::Truncated)?;
    *at += 1;
    match first >> 6 {
        0 | 1 => Ok(usize::from(first)),
        2 => {
            let second = *b.get(*at).ok_or(Error::Truncated)?;
            *at += 1;
            Ok(usize::from(first & 0x3F) << 8 | usize::from(second))
        }
        _ => Err(Error::Unsupported),
    }
}

/// Reads an open type (length determinant, then that many bytes) at `*at`.
fn open_type<'a>(b: &'a [u8], at: &mut usize) -> Result<&'a [u8]> {
    let n = length(b, at)?;
    let v = b.get(*at..*at + n).ok_or(Error::Truncated)?;
    *at += n;
    Ok(v)
}

/// How a packet protects against loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recovery {
    /// Copies of earlier IFP packets (`count` of them), newest first.
    Redundancy {
        /// How many.
        count: usize,
    },
    /// Forward error correction over `span` packets, `count` FEC entries.
    Fec {
        /// fec-npackets.
        span: u8,
        /// How many fec-data entries.
        count: usize,
    },
}

/// A view of one UDPTL datagram.
#[derive(Debug, Clone)]
pub struct Udptl<T: AsRef<[u8]>> {
    buffer: T,
    /// Byte range of the primary IFP packet.
    primary: (usize, usize),
    /// Offset of the first recovery entry, and the recovery kind.
    entries_at: usize,
    recovery: Recovery,
}

impl<T: AsRef<[u8]>> Udptl<T> {
    /// Checks the whole packet: sequence number, primary IFP, error recovery and its entries,
    /// nothing after them.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let b = buffer.as_ref();
        if b.len() < 2 {
            return Err(Error::Truncated);
        }
        let mut at = 2;
        let p = open_type(b, &mut at)?;
        let primary = (at - p.len(), at);
        let choice = *b.get(at).ok_or(Error::Truncated)?;
        let recovery = if choice & 0x80 == 0 {
            // secondary-ifp-packets: the choice bit shares its byte with nothing else in the
            // aligned variant; the count follows.
            at += 1;
            let count = length(b, &mut at)?;
            Recovery::Redundancy { count }
        } else {
            at += 1;
            // fec-npackets: an INTEGER as a one-byte length and one byte of value.
            if length(b, &mut at)? != 1 {
                return Err(Error::Malformed);
            }
            let span = *b.get(at).ok_or(Error::Truncated)?;
            at += 1;
            let count = length(b, &mut at)?;
            Recovery::Fec { span, count }
        };
        let count = match recovery {
            Recovery::Redundancy { count } | Recovery::Fec { count, .. } => count,
        };
        if count > MAX_ENTRIES {
            return Err(Error::Malformed);
        }
        let entries_at = at;
        for _ in 0..count {
            open_type(b, &mut at)?;
        }
        if at != b.len() {
            return Err(Error::Malformed);
        }
        Ok(Self { buffer, primary, entries_at, recovery })
    }

    /// The sequence number.
    pub fn seq(&self) -> u16 {
        let b = self.buffer.as_ref();
        u16::from_be_bytes([b[0], b[1]])
    }

    /// The primary IFP packet.
    pub fn primary(&self) -> &[u8] {
        &self.buffer.as_ref()[self.primary.0..self.primary.1]
    }

    /// The error-recovery kind.
    pub fn recovery(&self) -> Recovery {
        self.recovery
    }

    /// The redundant IFP packets or FEC entries, in order.
    pub fn entries(&self) -> impl Iterator<Item = &[u8]> + '_ {
        let b = self.buffer.as_ref();
        let mut at = self.entries_at;
        std::iter::from_fn(move || if at < b.len() { open_type(b, &mut at).ok() } else { None })
    }
}

/// Writes a UDPTL packet with redundancy (`secondaries`, newest first) into `buf`; returns its
/// length. Lengths above 16 383 are refused.
pub fn emit_redundant(buf: &mut [u8], seq: u16, primary: &[u8], secondaries: &[&[u8]]) -> Result<usize> {
    fn put_len(buf: &mut [u8], at: &mut usize, n: usize) -> Result<()> {
        if n < 0x80 {
            *buf.get_mut(*at).ok_or(Error::BufferTooSmall)? = n as u8;
            *at += 1;
        } else if n < 0x4000 {
            buf.get_mut(*at..*at + 2).ok_or(Error::BufferTooSmall)?.copy_from_slice(&[0x80 | (n >> 8) as u8, n as u8]);
            *at += 2;
        } else {
            return Err(Error::Malformed);
        }
        Ok(())
    }
    fn put(buf: &mut [u8], at: &mut usize, v: &[u8]) -> Result<()> {
        put_len(buf, at, v.len())?;
        buf.get_mut(*at..*at + v.len()).ok_or(Error::BufferTooSmall)?.copy_from_slice(v);
        *at += v.len();
        Ok(())
    }
    buf.get_mut(..2).ok_or(Error::BufferTooSmall)?.copy_from_slice(&seq.to_be_bytes());
    let mut at = 2;
    put(buf, &mut at, primary)?;
    *buf.get_mut(at).ok_or(Error::BufferTooSmall)? = 0;
    at += 1;
    put_len(buf, &mut at, secondaries.len())?;
    for s in secondaries {
        put(buf, &mut at, s)?;
    }
    Ok(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redundancy_round_trip() {
        let mut buf = [0u8; 600];
        let big = [7u8; 300];
        let n = emit_redundant(&mut buf, 0x1234, &[1, 2, 3], &[&[9, 9], &big]).unwrap();
        let u = Udptl::new_checked(&buf[..n]).unwrap();
        assert_eq!((u.seq(), u.primary(), u.recovery()), (0x1234, &[1u8, 2, 3][..], Recovery::Redundancy { count: 2 }));
        let e: Vec<&[u8]> = u.entries().collect();
        assert_eq!(e, [&[9u8, 9][..], &big[..]]);
        // Trailing bytes, truncation, a fragmented length.
        assert!(Udptl::new_checked(&buf[..n + 1]).is_err());
        assert!(Udptl::new_checked(&buf[..n - 1]).is_err());
        assert_eq!(Udptl::new_checked(&[0u8, 1, 0xC0, 0][..]).err(), Some(Error::Unsupported));
    }

    #[test]
    fn fec_packet() {
        // seq 5, primary [0xAA], FEC: npackets len 1 value 3, 1 entry of 2 bytes.
        let p = [0, 5, 1, 0xAA, 0x80, 1, 3, 1, 2, 0x11, 0x22];
        let u = Udptl::new_checked(&p[..]).unwrap();
        assert_eq!(u.recovery(), Recovery::Fec { span: 3, count: 1 });
        assert_eq!(u.entries().next(), Some(&[0x11u8, 0x22][..]));
        assert!(Udptl::new_checked(&[0, 5, 1, 0xAA, 0x80, 2, 3, 3, 0][..]).is_err());
    }
}
