//! Session key derivation, RFC 3711 §4.3 with key derivation rate 0.
//!
//! The PRF is AES in counter mode keyed with the master key (AES-128 or AES-256
//! after its length); its IV is `(label << 48 XOR master_salt) * 2^16`. RFC 7714 §11
//! keeps this KDF for the AEAD suites: their 96-bit master salt is zero-padded on the
//! right to 112 bits, and the derived session salt is 96 bits.

use aes::{Aes128, Aes256};
use cipher::{KeyIvInit, StreamCipher};

/// Key derivation labels (RFC 3711 §4.3.1, §4.3.2).
#[derive(Debug, Clone, Copy)]
#[repr(u8)]
pub(crate) enum Label {
    RtpEncryption = 0x00,
    RtpAuth = 0x01,
    RtpSalt = 0x02,
    RtcpEncryption = 0x03,
    RtcpAuth = 0x04,
    RtcpSalt = 0x05,
}

/// Fills `out` with the PRF output for `label`. `master_key` is 16 or 32 bytes (checked
/// by the caller); `master_salt` at most 14 bytes.
pub(crate) fn derive(master_key: &[u8], master_salt: &[u8], label: Label, out: &mut [u8]) {
    let mut iv = [0u8; 16];
    let n = master_salt.len().min(14);
    iv[..n].copy_from_slice(&master_salt[..n]);
    // key_id = label || r (r = 0 for KDR 0) is 7 bytes aligned to the end of the
    // 14-byte salt, so the label lands on byte 7.
    iv[7] ^= label as u8;
    out.fill(0);
    match master_key.len() {
        32 => {
            let mut c = ctr::Ctr128BE::<Aes256>::new(master_key.into(), &iv.into());
            c.apply_keystream(out);
        }
        _ => {
            let mut c = ctr::Ctr128BE::<Aes128>::new(master_key.into(), &iv.into());
            c.apply_keystream(out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_util::hex;

    /// RFC 3711 Appendix B.3.
    #[test]
    fn rfc3711_b3_key_derivation() {
        let mk = hex("E1F97A0D3E018BE0D64FA32C06DE4139");
        let ms = hex("0EC675AD498AFEEBB6960B3AABE6");
        let mut k = [0u8; 16];
        derive(&mk, &ms, Label::RtpEncryption, &mut k);
        assert_eq!(k[..], hex("C61E7A93744F39EE10734AFE3FF7A087")[..]);
        let mut s = [0u8; 14];
        derive(&mk, &ms, Label::RtpSalt, &mut s);
        assert_eq!(s[..], hex("30CBBC08863D8C85D49DB34A9AE1")[..]);
        let mut a = [0u8; 94];
        derive(&mk, &ms, Label::RtpAuth, &mut a);
        let expected = hex(concat!(
            "CEBE321F6FF7716B6FD4AB49AF256A15",
            "6D38BAA48F0A0ACF3C34E2359E6CDBCE",
            "E049646C43D9327AD175578EF7227098",
            "6371C10C9A369AC2F94A8C5FBCDDDC25",
            "6D6E919A48B610EF17C2041E47403576",
            "6B68642C59BBFC2F34DB60DBDFB2"
        ));
        assert_eq!(a[..], expected[..]);
        // The 160-bit HMAC key is the prefix of the same PRF stream.
        let mut a20 = [0u8; 20];
        derive(&mk, &ms, Label::RtpAuth, &mut a20);
        assert_eq!(a20[..], expected[..20]);
    }
}
