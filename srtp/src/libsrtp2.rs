//! Hand-written FFI bindings to the system libsrtp2 (feature `libsrtp2`), wrapped in a
//! safe [`Session`]. Used as the independent peer of the interop tests and as the
//! baseline of `xtrunk-bench srtp`; the datapath never uses it.
//!
//! # Safety
//!
//! This is the only module of the crate with `unsafe` code. Its rules:
//!
//! - `srtp_init` runs exactly once per process (a `OnceLock`) before any other call.
//! - A [`Session`] owns its `srtp_t`: created by `srtp_create`, released once by
//!   `srtp_dealloc` in `Drop`, never shared (`Session` is neither `Send` nor `Sync`,
//!   libsrtp2 sessions are not thread safe).
//! - The policy struct mirrors `srtp_policy_t` of libsrtp 2.x on LP64 targets; its size
//!   and field offsets are checked at compile time against the values read from
//!   `/usr/include/srtp2/srtp.h` (128 bytes, `key` at 56, `window_size` at 88, `next`
//!   at 120).
//! - `srtp_protect*` write up to `SRTP_MAX_TRAILER_LEN` (+ 4 for SRTCP) bytes after the
//!   packet without being told the buffer size, so every protect call first checks that
//!   the slice has [`HEADROOM`] bytes after `len`. Lengths cross the boundary as `c_int`
//!   after a range check.

#![allow(unsafe_code)]

use std::ffi::{c_int, c_uint, c_ulong, c_void};
use std::sync::OnceLock;

use crate::Suite;

/// `SRTP_MAX_TRAILER_LEN` (16-byte tag + 128-byte MKI) plus the 4-byte SRTCP index:
/// bytes a protect call may write after the packet.
pub const HEADROOM: usize = 16 + 128 + 4;

/// `srtp_err_status_auth_fail`.
pub const STATUS_AUTH_FAIL: i32 = 7;
/// `srtp_err_status_replay_fail`.
pub const STATUS_REPLAY_FAIL: i32 = 9;
/// `srtp_err_status_replay_old`.
pub const STATUS_REPLAY_OLD: i32 = 10;

#[repr(C)]
#[derive(Clone, Copy)]
struct SrtpSsrc {
    kind: c_int,
    value: c_uint,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct SrtpCryptoPolicy {
    cipher_type: u32,
    cipher_key_len: c_int,
    auth_type: u32,
    auth_key_len: c_int,
    auth_tag_len: c_int,
    sec_serv: c_int,
}

#[repr(C)]
struct SrtpPolicy {
    ssrc: SrtpSsrc,
    rtp: SrtpCryptoPolicy,
    rtcp: SrtpCryptoPolicy,
    key: *mut u8,
    keys: *mut *mut c_void,
    num_master_keys: c_ulong,
    deprecated_ekt: *mut c_void,
    window_size: c_ulong,
    allow_repeat_tx: c_int,
    enc_xtn_hdr: *mut c_int,
    enc_xtn_hdr_count: c_int,
    next: *mut SrtpPolicy,
}

#[cfg(target_pointer_width = "64")]
const _: () = {
    assert!(std::mem::size_of::<SrtpPolicy>() == 128);
    assert!(std::mem::size_of::<SrtpCryptoPolicy>() == 24);
    assert!(std::mem::offset_of!(SrtpPolicy, rtcp) == 32);
    assert!(std::mem::offset_of!(SrtpPolicy, key) == 56);
    assert!(std::mem::offset_of!(SrtpPolicy, window_size) == 88);
    assert!(std::mem::offset_of!(SrtpPolicy, enc_xtn_hdr_count) == 112);
    assert!(std::mem::offset_of!(SrtpPolicy, next) == 120);
};

const SSRC_ANY_INBOUND: c_int = 2;
const SSRC_ANY_OUTBOUND: c_int = 3;

/// Opaque `srtp_ctx_t`.
#[repr(C)]
struct SrtpCtx {
    _private: [u8; 0],
}

extern "C" {
    fn srtp_init() -> c_int;
    fn srtp_create(session: *mut *mut SrtpCtx, policy: *const SrtpPolicy) -> c_int;
    fn srtp_dealloc(session: *mut SrtpCtx) -> c_int;
    fn srtp_protect(ctx: *mut SrtpCtx, rtp_hdr: *mut c_void, len_ptr: *mut c_int) -> c_int;
    fn srtp_unprotect(ctx: *mut SrtpCtx, srtp_hdr: *mut c_void, len_ptr: *mut c_int) -> c_int;
    fn srtp_protect_rtcp(ctx: *mut SrtpCtx, rtcp_hdr: *mut c_void, len_ptr: *mut c_int) -> c_int;
    fn srtp_unprotect_rtcp(ctx: *mut SrtpCtx, srtcp_hdr: *mut c_void, len_ptr: *mut c_int) -> c_int;
    fn srtp_crypto_policy_set_rtp_default(p: *mut SrtpCryptoPolicy);
    fn srtp_crypto_policy_set_aes_cm_128_hmac_sha1_32(p: *mut SrtpCryptoPolicy);
    fn srtp_crypto_policy_set_aes_gcm_128_16_auth(p: *mut SrtpCryptoPolicy);
    fn srtp_crypto_policy_set_aes_gcm_256_16_auth(p: *mut SrtpCryptoPolicy);
}

/// A libsrtp2 call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LibSrtpError {
    /// libsrtp2 returned a non-zero `srtp_err_status_t`.
    #[error("libsrtp2 {op} failed with status {status}")]
    Status {
        /// The function that failed.
        op: &'static str,
        /// The `srtp_err_status_t` value (see the `STATUS_*` constants).
        status: i32,
    },
    /// The buffer lacks [`HEADROOM`] bytes after the packet, or `len` exceeds it.
    #[error("buffer needs {HEADROOM} bytes of headroom after the packet")]
    NoHeadroom,
    /// Key or salt length does not match the suite.
    #[error("key or salt length does not match the suite")]
    BadKeyLength,
    /// Length does not fit a C `int`.
    #[error("packet too large for libsrtp2")]
    TooLarge,
}

impl LibSrtpError {
    /// The libsrtp2 status code, if the failure came from libsrtp2.
    pub fn status(&self) -> Option<i32> {
        match self {
            LibSrtpError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// Which way a [`Session`] works: it protects (outbound) or unprotects (inbound).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// `ssrc_any_outbound`: for protect calls.
    Outbound,
    /// `ssrc_any_inbound`: for unprotect calls.
    Inbound,
}

fn init() -> Result<(), LibSrtpError> {
    static INIT: OnceLock<c_int> = OnceLock::new();
    // SAFETY: srtp_init has no preconditions; OnceLock runs it once per process,
    // before any other libsrtp2 call (every such call goes through Session::new first).
    let status = *INIT.get_or_init(|| unsafe { srtp_init() });
    if status == 0 {
        Ok(())
    } else {
        Err(LibSrtpError::Status { op: "srtp_init", status })
    }
}

/// One libsrtp2 session (`srtp_t`) with a single wildcard-SSRC policy.
pub struct Session {
    ctx: *mut SrtpCtx,
}

impl core::fmt::Debug for Session {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("libsrtp2::Session").finish_non_exhaustive()
    }
}

impl Session {
    /// Creates a session for `suite` with master `key` and `salt` (window 128). For
    /// AES_CM_128_HMAC_SHA1_32 SRTCP uses the 80-bit tag, as RFC 4568 prescribes.
    pub fn new(suite: Suite, key: &[u8], salt: &[u8], dir: Direction) -> Result<Self, LibSrtpError> {
        init()?;
        let zero = SrtpCryptoPolicy {
            cipher_type: 0,
            cipher_key_len: 0,
            auth_type: 0,
            auth_key_len: 0,
            auth_tag_len: 0,
            sec_serv: 0,
        };
        let mut rtp = zero;
        let mut rtcp = zero;
        // SAFETY: each setter only writes the plain-data struct behind the pointer,
        // which is a valid, exclusive, properly aligned SrtpCryptoPolicy.
        unsafe {
            match suite {
                Suite::AesCm128HmacSha1_80 => {
                    srtp_crypto_policy_set_rtp_default(&mut rtp);
                    srtp_crypto_policy_set_rtp_default(&mut rtcp);
                }
                Suite::AesCm128HmacSha1_32 => {
                    srtp_crypto_policy_set_aes_cm_128_hmac_sha1_32(&mut rtp);
                    srtp_crypto_policy_set_rtp_default(&mut rtcp);
                }
                Suite::AeadAes128Gcm => {
                    srtp_crypto_policy_set_aes_gcm_128_16_auth(&mut rtp);
                    srtp_crypto_policy_set_aes_gcm_128_16_auth(&mut rtcp);
                }
                Suite::AeadAes256Gcm => {
                    srtp_crypto_policy_set_aes_gcm_256_16_auth(&mut rtp);
                    srtp_crypto_policy_set_aes_gcm_256_16_auth(&mut rtcp);
                }
            }
        }
        if key.len() != suite.key_len() || salt.len() != suite.salt_len() {
            return Err(LibSrtpError::BadKeyLength);
        }
        // libsrtp2 reads key || salt, of the lengths the policy implies; it derives the
        // session keys inside srtp_create and keeps no pointer to this buffer.
        let mut material = Vec::with_capacity(key.len() + salt.len());
        material.extend_from_slice(key);
        material.extend_from_slice(salt);
        let policy = SrtpPolicy {
            ssrc: SrtpSsrc {
                kind: match dir {
                    Direction::Outbound => SSRC_ANY_OUTBOUND,
                    Direction::Inbound => SSRC_ANY_INBOUND,
                },
                value: 0,
            },
            rtp,
            rtcp,
            key: material.as_mut_ptr(),
            keys: std::ptr::null_mut(),
            num_master_keys: 0,
            deprecated_ekt: std::ptr::null_mut(),
            window_size: 128,
            allow_repeat_tx: 0,
            enc_xtn_hdr: std::ptr::null_mut(),
            enc_xtn_hdr_count: 0,
            next: std::ptr::null_mut(),
        };
        let mut ctx: *mut SrtpCtx = std::ptr::null_mut();
        // SAFETY: `policy` is a valid srtp_policy_t (layout checked above) whose key
        // points to `material`, alive for the call and as long as the policy implies
        // (key_len + salt_len, checked above); `ctx` is a valid out-pointer.
        let status = unsafe { srtp_create(&mut ctx, &policy) };
        material.fill(0);
        if status != 0 || ctx.is_null() {
            return Err(LibSrtpError::Status { op: "srtp_create", status });
        }
        Ok(Session { ctx })
    }

    fn call(
        &mut self,
        op: &'static str,
        f: unsafe extern "C" fn(*mut SrtpCtx, *mut c_void, *mut c_int) -> c_int,
        buf: &mut [u8],
        len: usize,
    ) -> Result<usize, LibSrtpError> {
        let mut n = c_int::try_from(len).map_err(|_| LibSrtpError::TooLarge)?;
        // SAFETY: self.ctx is a live session owned by self (&mut: no concurrent use);
        // `buf` is valid for writes of buf.len() bytes and callers have checked that
        // libsrtp2 writes no further than that (len + HEADROOM for protect, at most
        // len for unprotect); `n` is a valid in/out length.
        let status = unsafe { f(self.ctx, buf.as_mut_ptr().cast(), &mut n) };
        if status != 0 {
            return Err(LibSrtpError::Status { op, status });
        }
        usize::try_from(n).map_err(|_| LibSrtpError::TooLarge)
    }

    fn check_headroom(buf: &[u8], len: usize) -> Result<(), LibSrtpError> {
        match len.checked_add(HEADROOM) {
            Some(end) if end <= buf.len() => Ok(()),
            _ => Err(LibSrtpError::NoHeadroom),
        }
    }

    /// `srtp_protect` on `buf[..len]`; `buf` needs [`HEADROOM`] bytes after `len`.
    pub fn protect_rtp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, LibSrtpError> {
        Self::check_headroom(buf, len)?;
        self.call("srtp_protect", srtp_protect, buf, len)
    }

    /// `srtp_unprotect` on all of `buf`; returns the RTP length.
    pub fn unprotect_rtp(&mut self, buf: &mut [u8]) -> Result<usize, LibSrtpError> {
        let len = buf.len();
        self.call("srtp_unprotect", srtp_unprotect, buf, len)
    }

    /// `srtp_protect_rtcp` on `buf[..len]`; `buf` needs [`HEADROOM`] bytes after `len`.
    pub fn protect_rtcp(&mut self, buf: &mut [u8], len: usize) -> Result<usize, LibSrtpError> {
        Self::check_headroom(buf, len)?;
        self.call("srtp_protect_rtcp", srtp_protect_rtcp, buf, len)
    }

    /// `srtp_unprotect_rtcp` on all of `buf`; returns the RTCP length.
    pub fn unprotect_rtcp(&mut self, buf: &mut [u8]) -> Result<usize, LibSrtpError> {
        let len = buf.len();
        self.call("srtp_unprotect_rtcp", srtp_unprotect_rtcp, buf, len)
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // SAFETY: self.ctx came from a successful srtp_create and is released once here.
        unsafe {
            srtp_dealloc(self.ctx);
        }
    }
}
