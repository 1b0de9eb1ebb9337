//! #14 acceptance: SIGHUP swaps the TLS certificate with the real `xtrunk run` binary. The
//! listener's certificate and key files are replaced and the supervisor gets SIGHUP (it passes
//! it to the sidecar): a new connection (`openssl s_client`) is served the new certificate (its
//! SHA-256 fingerprint), and a TLS connection opened before the swap still carries SIP.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

mod common;
use common::{free_port, free_range, udp, wait_ready, write_config, Guard, TestConfig};

fn openssl(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("openssl").args(args).current_dir(dir).stdin(Stdio::null()).output().expect("openssl");
    assert!(
        out.status.success() || args[0] == "s_client",
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `name.pem`/`name.key` for edge.test and 127.0.0.1, signed by `ca`.
fn cert(dir: &Path, name: &str) {
    openssl(dir, &["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", &format!("{name}.key")]);
    let csr = format!("{name}.csr");
    openssl(dir, &["req", "-new", "-key", &format!("{name}.key"), "-out", &csr, "-subj", "/CN=edge.test"]);
    fs::write(dir.join("san.ext"), "subjectAltName=DNS:edge.test,IP:127.0.0.1\n").unwrap();
    let out = format!("{name}.pem");
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            &out,
            "-extfile",
            "san.ext",
        ],
    );
}

fn fingerprint(dir: &Path, pem_file: &str) -> String {
    openssl(dir, &["x509", "-noout", "-fingerprint", "-sha256", "-in", pem_file]).trim().to_string()
}

/// The fingerprint of the certificate a new connection to `port` is served.
fn served(dir: &Path, port: u16) -> String {
    let text = openssl(
        dir,
        &["s_client", "-connect", &format!("127.0.0.1:{port}"), "-CAfile", "ca.pem", "-servername", "edge.test"],
    );
    let (Some(a), Some(b)) = (text.find("-----BEGIN CERTIFICATE-----"), text.find("-----END CERTIFICATE-----")) else {
        panic!("no certificate from s_client: {text}");
    };
    fs::write(dir.join("served.pem"), &text[a..b + 25]).unwrap();
    fingerprint(dir, "served.pem")
}

#[test]
fn sighup_swaps_the_tls_certificate_and_keeps_open_connections() {
    let started = Instant::now();
    let tag = format!("{}-{}", std::process::id(), started.elapsed().as_nanos() % 1_000_000);
    let dir = std::env::temp_dir().join(format!("xtrunk-tls-reload-{tag}"));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    openssl(&dir, &["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "ca.key"]);
    openssl(
        &dir,
        &["req", "-x509", "-new", "-key", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=xtrunk test CA"],
    );
    cert(&dir, "edge");
    let shm = PathBuf::from(format!("/dev/shm/xtrunk-test-tls-reload-{tag}"));
    let (sip, tls) = (free_port(&[]), free_port(&[]));
    let cfg = TestConfig {
        name: "xtrunk-tls-reload",
        sip,
        carrier: free_port(&[]),
        media: free_range(40, &[]),
        media_ports: 40,
        max_sessions: 8,
        t1_ms: 200,
    };
    let file = write_config(&dir, &shm, &cfg);
    let text = fs::read_to_string(&file).unwrap().replacen(
        "[sip.timers]",
        &format!(
            "[[sip.listen]]\ntransport = \"tls\"\naddr = \"127.0.0.1:{tls}\"\ntls = {{ cert = \"{}\", key = \"{}\" }}\n\n[sip.timers]",
            dir.join("edge.pem").display(),
            dir.join("edge.key").display()
        ),
        1,
    );
    fs::write(&file, text).unwrap();
    let mut g = Guard::new(&dir.join("xtrunk.log"), &dir, &shm);
    g.start(&file);
    let pbx = udp();
    wait_ready(&mut g, &pbx, ([127, 0, 0, 1], sip).into(), &tag);
    let old = fingerprint(&dir, "edge.pem");
    assert_eq!(served(&dir, tls), old);

    // A connection opened before the swap, kept open.
    let connect = format!("127.0.0.1:{tls}");
    let mut open = Command::new("openssl")
        .args(["s_client", "-connect", &connect, "-CAfile", "ca.pem", "-servername", "edge.test", "-quiet", "-ign_eof"])
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, lines) = mpsc::channel();
    let out = open.stdout.take().unwrap();
    std::thread::spawn(move || {
        for l in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    let mut stdin = open.stdin.take().unwrap();
    let mut options = |n: u32| {
        let m = format!("OPTIONS sip:edge.test;transport=tls SIP/2.0\r\nVia: SIP/2.0/TLS 127.0.0.1:5999;branch=z9hG4bKhup{n};rport\r\nMax-Forwards: 70\r\nFrom: <sip:100@pbx.test>;tag=h{n}\r\nTo: <sip:edge.test>\r\nCall-ID: hup-{n}-{tag}\r\nCSeq: {n} OPTIONS\r\nContent-Length: 0\r\n\r\n");
        stdin.write_all(m.as_bytes()).unwrap();
        stdin.flush().unwrap();
        let end = Instant::now() + Duration::from_secs(10);
        while let Some(left) = end.checked_duration_since(Instant::now()) {
            match lines.recv_timeout(left) {
                Ok(l) if l.starts_with("SIP/2.0 ") => return l,
                Ok(_) => {}
                Err(_) => break,
            }
        }
        String::new()
    };
    std::thread::sleep(Duration::from_millis(500));
    assert!(options(1).starts_with("SIP/2.0 200"), "OPTIONS over TLS before the swap");

    // The operator replaces the files in place and sends SIGHUP to the supervisor.
    cert(&dir, "edge-new");
    fs::copy(dir.join("edge-new.pem"), dir.join("edge.pem")).unwrap();
    fs::copy(dir.join("edge-new.key"), dir.join("edge.key")).unwrap();
    let new = fingerprint(&dir, "edge.pem");
    assert_ne!(old, new);
    let pid = g.supervisor.as_ref().unwrap().id() as i32;
    // SAFETY: kill(2) on the supervisor this test started; no memory involved.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGHUP) }, 0);
    assert!(g.wait_log("reloaded ", 1, Duration::from_secs(5)), "no reload; log:\n{}", g.log_tail());
    assert_eq!(served(&dir, tls), new, "a new connection gets the new certificate");
    assert!(options(2).starts_with("SIP/2.0 200"), "the connection opened before the swap still works");
    let _ = open.kill();
    let _ = open.wait();
    assert!(!g.log().contains("TLS keeps the certificates it had"), "log:\n{}", g.log_tail());
}
