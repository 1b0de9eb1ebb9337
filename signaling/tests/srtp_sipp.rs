//! SDES-keyed SRTP through the sidecar, with SIPp as the PBX and the carrier (the sidecar's
//! datapath is the in-memory `LoopbackMedia`): a PBX offering RTP/SAVP + `a=crypto` on an
//! SRTP trunk reaches a plain carrier with RTP/AVP and no crypto, and gets an RTP/SAVP answer
//! echoing its tag and suite with a key of ours; refused offers get 488 + `Warning: 399`.
//! The scenarios check the SDP with `<ereg check_it>`; the tests also read SIPp's message logs.

#[macro_use]
mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use xtrunk_config::{Config, SrtpPolicy};

/// The key the PBX scenario offers (RFC 4568 §4 example key).
const PBX_KEY: &str = "PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR";

fn pbx_srtp(policy: SrtpPolicy) -> impl FnOnce(&mut Config) {
    move |c: &mut Config| {
        c.trunks[0].srtp = policy;
        c.trunks[0].srtp_suites = vec!["AES_CM_128_HMAC_SHA1_80".into(), "AEAD_AES_128_GCM".into()];
    }
}

fn msg_log(dir: &Path, tag: &str) -> (String, String) {
    let p = dir.join(format!("{tag}_msgs.log"));
    (p.display().to_string(), std::fs::read_to_string(&p).unwrap_or_default())
}

/// One SRTP PBX (uac_srtp) calling a plain carrier (uas_srtp_plain) `n` times through a pbx
/// trunk with `policy`; returns both message logs.
fn srtp_to_plain(name: &str, policy: SrtpPolicy, n: usize) -> (String, String) {
    let uas_port = free_port();
    let side = Sidecar::start(name, &[uas_port], pbx_srtp(policy));
    let (uas_log, _) = msg_log(&side.dir, "uas");
    let (uac_log, _) = msg_log(&side.dir, "uac");
    let carrier =
        sipp(&side.dir, "uas", "uas_srtp_plain", uas_port, None, n, &["-trace_msg", "-message_file", &uas_log]);
    std::thread::sleep(Duration::from_millis(200));
    let pbx = sipp(
        &side.dir,
        "uac",
        "uac_srtp",
        free_port(),
        Some(side.port),
        n,
        &["-r", "10", "-trace_msg", "-message_file", &uac_log],
    );
    let (a, b) = (pbx.wait(), carrier.wait());
    // Read before `stop`, which removes the scratch directory.
    let logs = (msg_log(&side.dir, "uac").1, msg_log(&side.dir, "uas").1);
    let (s, cdrs) = side.stop_with_cdrs();
    assert!(a.ok && b.ok, "uac {a:?} uas {b:?}");
    assert_eq!((a.successful, a.failed, b.successful), (n as u64, 0, n as u64));
    assert_clean(&s);
    assert_eq!(cdrs.len(), n);
    assert!(cdrs.iter().all(|c| c["disposition"] == 200));
    logs
}

/// The SDP bodies of the 200 OK responses in a SIPp message log.
fn answers(log: &str) -> Vec<String> {
    log.split("SIP/2.0 200 OK")
        .skip(1)
        .map(|m| m.split("-----").next().unwrap_or("").to_string())
        .filter(|m| m.contains("v=0"))
        .collect()
}

fn check_logs(uac: &str, uas: &str, n: usize) {
    // Carrier side: plain RTP/AVP, no crypto, nothing of the PBX's key.
    assert_eq!(uas.matches("INVITE sip:").count(), n, "{uas}");
    assert!(uas.contains(" RTP/AVP "), "{uas}");
    assert!(!uas.contains("crypto") && !uas.contains("SAVP") && !uas.contains(PBX_KEY), "{uas}");
    // PBX side: RTP/SAVP answers with our tag and suite and a key of the sidecar's, fresh per call.
    let ans = answers(uac);
    assert!(ans.len() >= n, "{uac}");
    let mut keys = Vec::new();
    for a in &ans {
        assert!(a.contains(" RTP/SAVP "), "{a}");
        assert_eq!(a.matches("a=crypto:").count(), 1, "{a}");
        let key = a
            .split("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:")
            .nth(1)
            .expect("crypto line")
            .split_whitespace()
            .next()
            .unwrap()
            .to_string();
        assert_eq!(key.len(), 40, "{key}");
        assert_ne!(key, PBX_KEY);
        keys.push(key);
    }
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), n, "one fresh key per call");
}

#[test]
fn srtp_pbx_mandatory_to_plain_carrier() {
    need_sipp!();
    let (uac, uas) = srtp_to_plain("srtp-mand", SrtpPolicy::Mandatory, 10);
    check_logs(&uac, &uas, 10);
}

#[test]
fn srtp_pbx_optional_to_plain_carrier() {
    need_sipp!();
    let (uac, uas) = srtp_to_plain("srtp-opt", SrtpPolicy::Optional, 10);
    check_logs(&uac, &uas, 10);
}

/// Runs `n` calls of uac_srtp_488 with the given m-line profile and crypto line; every call must
/// get 488 with a Warning 399 (checked by the scenario); returns the PBX's message log.
fn refused(name: &str, policy: SrtpPolicy, proto: &str, crypto: &str) -> String {
    let n = 3;
    let side = Sidecar::start(name, &[free_port()], pbx_srtp(policy));
    let (log, _) = msg_log(&side.dir, "uac");
    let extra = ["-r", "10", "-key", "proto", proto, "-key", "crypto", crypto, "-trace_msg", "-message_file", &log];
    let a = sipp(&side.dir, "uac", "uac_srtp_488", free_port(), Some(side.port), n, &extra).wait();
    // Read before `stop`, which removes the scratch directory.
    let log = msg_log(&side.dir, "uac").1;
    let s = side.stop();
    assert!(a.ok, "{a:?}");
    assert_eq!((a.successful, a.failed), (n as u64, 0));
    assert_eq!(s.metrics.finals_to_caller.get(&488), Some(&(n as u64)));
    assert_eq!(s.metrics.calls_started, 0, "a refused offer starts no call");
    assert_clean(&s);
    log
}

#[test]
fn mandatory_trunk_refuses_plain_offer() {
    need_sipp!();
    let log = refused("srtp-488-plain", SrtpPolicy::Mandatory, "RTP/AVP", "a=ptime:20");
    assert!(log.contains("SIP/2.0 488 SRTP Required"), "{log}");
    assert!(log.contains("\"SRTP required on this trunk\""), "{log}");
}

#[test]
fn mandatory_trunk_refuses_unacceptable_crypto() {
    need_sipp!();
    // Only a suite the trunk does not allow, then an MKI line: nothing acceptable.
    let crypto = format!("a=crypto:1 AES_CM_128_HMAC_SHA1_32 inline:{PBX_KEY}\r\na=crypto:2 AES_CM_128_HMAC_SHA1_80 inline:{PBX_KEY}|2^20|1:4");
    let log = refused("srtp-488-crypto", SrtpPolicy::Mandatory, "RTP/SAVP", &crypto);
    assert!(log.contains("\"no acceptable SRTP crypto\""), "{log}");
}

#[test]
fn srtp_off_trunk_refuses_savp_offer() {
    need_sipp!();
    let log = refused(
        "srtp-488-off",
        SrtpPolicy::Off,
        "RTP/SAVP",
        &format!("a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{PBX_KEY}"),
    );
    assert!(log.contains("\"SRTP not allowed on this trunk\""), "{log}");
}
