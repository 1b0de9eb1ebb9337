//! RFC 4733 telephone-event payloads (DTMF digits and other named events).

use super::{be16, put16, Error, Result};

mod field {
    pub(super) const EVENT: usize = 0;
    pub(super) const FLAGS_VOLUME: usize = 1;
    pub(super) const DURATION: usize = 2;
    pub(super) const LEN: usize = 4;
}

/// A view of a telephone-event payload (the first 4-byte event; RFC 4733 §2.5.1.4 allows
/// several events back to back, see [`DtmfPayload::event_count`]).
#[derive(Debug, Clone)]
pub struct DtmfPayload<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> DtmfPayload<T> {
    /// Wraps without checks.
    pub const fn new_unchecked(buffer: T) -> Self {
        Self { buffer }
    }

    /// Wraps and validates: at least one whole 4-byte event, length a multiple of 4.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// The validation of [`DtmfPayload::new_checked`].
    pub fn check_len(&self) -> Result<()> {
        let l = self.buffer.as_ref().len();
        if l < field::LEN {
            Err(Error::Truncated)
        } else if l % field::LEN != 0 {
            Err(Error::Malformed)
        } else {
            Ok(())
        }
    }

    fn byte(&self, i: usize) -> u8 {
        self.buffer.as_ref().get(i).copied().unwrap_or(0)
    }

    /// Event code (0–9 digits, 10 `*`, 11 `#`, 12–15 A–D, ...).
    pub fn event(&self) -> u8 {
        self.byte(field::EVENT)
    }

    /// End bit.
    pub fn end(&self) -> bool {
        self.byte(field::FLAGS_VOLUME) & 0x80 != 0
    }

    /// Volume (0..=63, −dBm0).
    pub fn volume(&self) -> u8 {
        self.byte(field::FLAGS_VOLUME) & 0x3F
    }

    /// Duration in timestamp units.
    pub fn duration(&self) -> u16 {
        be16(self.buffer.as_ref(), field::DURATION)
    }

    /// Number of 4-byte events in the payload.
    pub fn event_count(&self) -> usize {
        self.buffer.as_ref().len() / field::LEN
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> DtmfPayload<T> {
    /// Sets the duration.
    pub fn set_duration(&mut self, d: u16) {
        put16(self.buffer.as_mut(), field::DURATION, d);
    }
}

/// One telephone event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DtmfRepr {
    /// Event code.
    pub event: u8,
    /// End bit.
    pub end: bool,
    /// Volume (0..=63).
    pub volume: u8,
    /// Duration in timestamp units.
    pub duration: u16,
}

impl DtmfRepr {
    /// Length emitted.
    pub const LEN: usize = field::LEN;

    /// Parses the first event of a checked payload.
    pub fn parse<T: AsRef<[u8]>>(p: &DtmfPayload<T>) -> Result<Self> {
        p.check_len()?;
        Ok(Self { event: p.event(), end: p.end(), volume: p.volume(), duration: p.duration() })
    }

    /// Writes the event into the start of `buf`; returns 4.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        if self.volume > 63 {
            return Err(Error::Malformed);
        }
        let Some(b) = buf.get_mut(..field::LEN) else {
            return Err(Error::BufferTooSmall);
        };
        b[field::EVENT] = self.event;
        b[field::FLAGS_VOLUME] = if self.end { 0x80 } else { 0 } | self.volume;
        put16(b, field::DURATION, self.duration);
        Ok(field::LEN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn digit_five_end() {
        let p = DtmfPayload::new_checked(&[5u8, 0x8a, 0x03, 0x20][..]).unwrap();
        assert_eq!((p.event(), p.end(), p.volume(), p.duration()), (5, true, 10, 800));
        assert_eq!(DtmfPayload::new_checked(&[5u8, 0, 0][..]).unwrap_err(), Error::Truncated);
        assert_eq!(DtmfPayload::new_checked(&[5u8, 0, 0, 0, 1][..]).unwrap_err(), Error::Malformed);
    }

    proptest! {
        #[test]
        fn roundtrip(event in any::<u8>(), end in any::<bool>(), volume in 0u8..64, duration in any::<u16>()) {
            let r = DtmfRepr { event, end, volume, duration };
            let mut b = [0u8; 4];
            r.emit(&mut b).unwrap();
            prop_assert_eq!(DtmfRepr::parse(&DtmfPayload::new_checked(&b[..]).unwrap()).unwrap(), r);
        }

        #[test]
        fn no_panic(b in proptest::collection::vec(any::<u8>(), 0..16)) {
            if let Ok(p) = DtmfPayload::new_checked(&b[..]) {
                let _ = DtmfRepr::parse(&p);
            }
        }
    }
}
