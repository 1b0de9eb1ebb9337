//! Table-driven G.711 A-law ↔ µ-law conversion, bit-exact with the ITU-T Software Tool Library
//! (STL) `g711.c`: each table entry is `ulaw_compress(alaw_expand(a))` resp.
//! `alaw_compress(ulaw_expand(u))`, i.e. conversion via the 16-bit linear domain. The tables are
//! computed at compile time from a transcription of the STL routines below.

/// STL `alaw_expand` for one code: A-law byte → 16-bit linear.
pub const fn alaw_expand(a: u8) -> i16 {
    let ix = (a ^ 0x55) & 0x7F;
    let iexp = (ix >> 4) as i32;
    let mut mant = (ix & 0x0F) as i32;
    if iexp > 0 {
        mant += 16;
    }
    mant = (mant << 4) + 0x0008;
    if iexp > 1 {
        mant <<= iexp - 1;
    }
    (if a > 127 { mant } else { -mant }) as i16
}

/// STL `alaw_compress` for one sample: 16-bit linear → A-law byte (12 MSBs used).
pub const fn alaw_compress(x: i16) -> u8 {
    let mut ix: i32 = if x < 0 { (!x as i32) >> 4 } else { (x as i32) >> 4 };
    if ix > 15 {
        let mut iexp = 1;
        while ix > 16 + 15 {
            ix >>= 1;
            iexp += 1;
        }
        ix -= 16;
        ix += iexp << 4;
    }
    if x >= 0 {
        ix |= 0x0080;
    }
    (ix ^ 0x0055) as u8
}

/// STL `ulaw_expand` for one code: µ-law byte → 16-bit linear.
pub const fn ulaw_expand(u: u8) -> i16 {
    let sign: i32 = if u < 0x80 { -1 } else { 1 };
    let mantissa = !(u as i32);
    let exponent = (mantissa >> 4) & 0x07;
    let segment = exponent + 1;
    let mantissa = mantissa & 0x0F;
    let step = 4 << segment;
    (sign * ((0x0080 << exponent) + step * mantissa + step / 2 - 4 * 33)) as i16
}

/// STL `ulaw_compress` for one sample: 16-bit linear → µ-law byte (14 MSBs used).
pub const fn ulaw_compress(x: i16) -> u8 {
    let mut absno: i32 = if x < 0 { ((!x as i32) >> 2) + 33 } else { ((x as i32) >> 2) + 33 };
    if absno > 0x1FFF {
        absno = 0x1FFF;
    }
    let mut i = absno >> 6;
    let mut segno = 1;
    while i != 0 {
        segno += 1;
        i >>= 1;
    }
    let high = 0x0008 - segno;
    let low = 0x000F - ((absno >> segno) & 0x000F);
    let mut out = (high << 4) | low;
    if x >= 0 {
        out |= 0x0080;
    }
    out as u8
}

const fn build_a2u() -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = ulaw_compress(alaw_expand(i as u8));
        i += 1;
    }
    t
}

const fn build_u2a() -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = alaw_compress(ulaw_expand(i as u8));
        i += 1;
    }
    t
}

/// A-law byte → µ-law byte.
pub static ALAW_TO_ULAW: [u8; 256] = build_a2u();
/// µ-law byte → A-law byte.
pub static ULAW_TO_ALAW: [u8; 256] = build_u2a();

/// Converts an A-law payload to µ-law in place.
pub fn alaw_to_ulaw(buf: &mut [u8]) {
    for b in buf {
        *b = ALAW_TO_ULAW[usize::from(*b)];
    }
}

/// Converts a µ-law payload to A-law in place.
pub fn ulaw_to_alaw(buf: &mut [u8]) {
    for b in buf {
        *b = ULAW_TO_ALAW[usize::from(*b)];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_points() {
        // Silence codes: A-law 0xD5 is +8, µ-law 0xFF is +0.
        assert_eq!(alaw_expand(0xD5), 8);
        assert_eq!(alaw_expand(0x55), -8);
        assert_eq!(ulaw_expand(0xFF), 0);
        assert_eq!(ulaw_expand(0x7F), 0);
        // Full scale.
        assert_eq!(alaw_expand(0xAA), 32256);
        assert_eq!(ulaw_expand(0x80), 32124);
        assert_eq!(ULAW_TO_ALAW[0xFF], 0xD5);
        assert_eq!(ULAW_TO_ALAW[0x7F], 0xD5);
        assert_eq!(ALAW_TO_ULAW[0xD5], 0xFE);
        assert_eq!(ALAW_TO_ULAW[0xAA], 0x80);
    }

    #[test]
    fn codecs_are_idempotent_on_their_levels() {
        for c in 0..=255u8 {
            assert_eq!(alaw_compress(alaw_expand(c)), c, "A-law {c:#x}");
            let u = ulaw_compress(ulaw_expand(c));
            // µ-law has two zeros (0x7F and 0xFF): -0 re-encodes as +0.
            assert!(u == c || (c == 0x7F && u == 0xFF), "µ-law {c:#x} -> {u:#x}");
        }
    }

    #[test]
    fn conversion_is_monotonic() {
        // Linear order of A-law codes must be preserved through the µ-law conversion.
        let mut codes: Vec<u8> = (0..=255).collect();
        codes.sort_by_key(|&a| alaw_expand(a));
        for w in codes.windows(2) {
            assert!(ulaw_expand(ALAW_TO_ULAW[usize::from(w[0])]) <= ulaw_expand(ALAW_TO_ULAW[usize::from(w[1])]));
        }
    }
}
