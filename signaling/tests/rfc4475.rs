//! RFC 4475 torture messages: each gets the verdict the RFC describes. `Accept` = parsed and
//! passes the B2BUA's request checks; `Code(n)` = answered n (400 with a reason naming the fault,
//! or the application-level status of §3.3); `Drop` = an invalid response, silently discarded.

use xtrunk_signaling::b2bua::preflight;
use xtrunk_signaling::sip::msg::parse;

#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Accept,
    Code(u16),
    Drop,
}

fn verdict(bytes: &[u8]) -> (Verdict, String) {
    match parse(bytes) {
        Err(e) if e.is_request => (Verdict::Code(e.code), e.reason.to_string()),
        Err(e) => (Verdict::Drop, e.reason.to_string()),
        Ok(m) if m.method().is_none() => (Verdict::Accept, String::new()),
        Ok(m) => match preflight(&m) {
            Some((c, r, _)) => (Verdict::Code(c), r.to_string()),
            None => (Verdict::Accept, String::new()),
        },
    }
}

#[test]
fn torture_messages() {
    use Verdict::*;
    let table: &[(&str, Verdict)] = &[
        // §3.1.1 valid messages
        ("wsinv", Accept),
        ("intmeth", Accept),
        ("esc01", Accept),
        ("escnull", Accept),
        ("esc02", Accept),
        ("lwsdisp", Accept),
        ("longreq", Accept),
        ("dblreq", Accept),
        ("semiuri", Accept),
        ("transports", Accept),
        ("mpart01", Accept),
        ("unreason", Accept),
        ("noreason", Accept),
        // §3.1.2 invalid messages
        ("badinv01", Code(400)),
        ("clerr", Code(400)),
        ("ncl", Code(400)),
        ("scalar02", Code(400)),
        ("scalarlg", Drop),
        ("quotbal", Code(400)),
        ("ltgtruri", Code(400)),
        ("lwsruri", Code(400)),
        ("lwsstart", Code(400)),
        ("trws", Code(400)),
        ("escruri", Code(400)),
        ("baddate", Code(400)),
        ("regbadct", Code(400)),
        ("badaspec", Code(400)),
        ("baddn", Code(400)),
        ("badvers", Code(505)),
        ("mismatch01", Code(400)),
        ("mismatch02", Code(400)),
        ("bigcode", Drop),
        // §3.2 transaction layer
        ("badbranch", Accept),
        // §3.3 application layer
        ("insuf", Code(400)),
        ("unkscm", Code(416)),
        ("novelsc", Code(416)),
        ("unksm2", Accept),
        ("bext01", Code(420)),
        ("invut", Code(415)),
        ("regaut01", Accept),
        ("multi01", Code(400)),
        ("mcl01", Code(400)),
        ("bcast", Accept),
        ("zeromf", Code(483)),
        ("cparam01", Accept),
        ("cparam02", Accept),
        ("regescrt", Accept),
        ("sdp01", Code(406)),
        // §3.4 backward compatibility
        ("inv2543", Accept),
    ];
    let dir = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/rfc4475"));
    assert!(dir.join("README.md").exists(), "RFC 4475 torture messages missing at {}", dir.display());
    let mut bad = Vec::new();
    for (name, want) in table {
        let bytes = std::fs::read(dir.join(format!("{name}.dat"))).unwrap();
        let (got, why) = verdict(&bytes);
        if &got != want {
            bad.push(format!("{name}: want {want:?}, got {got:?} ({why})"));
        }
        // Reason phrases name the fault.
        if got == Code(400) {
            assert!(!why.is_empty() && why != "Bad Request", "{name}: vague reason {why:?}");
        }
    }
    assert_eq!(table.len(), 49);
    assert!(bad.is_empty(), "{} wrong verdicts:\n{}", bad.len(), bad.join("\n"));
}

#[test]
fn every_truncation_and_mutation_is_safe() {
    // No panic on any prefix of any torture message, nor with bytes flipped.
    let dir = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/rfc4475"));
    let rd = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut files = 0;
    for e in rd.flatten() {
        files += 1;
        let b = std::fs::read(e.path()).unwrap();
        for i in 0..b.len() {
            let _ = verdict(&b[..i]);
            let mut m = b.clone();
            m[i] ^= 0x5a;
            let _ = verdict(&m);
        }
    }
    assert!(files >= 49, "expected the 49 torture messages, read {files} files");
}
