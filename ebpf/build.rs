//! Compiles `xdp/xtrunk.bpf.c` with clang into `$OUT_DIR/xtrunk.bpf.o` (embedded by `src/lib.rs`).

use std::{env, path::PathBuf, process::Command};

fn main() {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let src = manifest.join("xdp/xtrunk.bpf.c");
    let hdr = manifest.join("xdp/xtrunk_maps.h");
    println!("cargo:rerun-if-changed={}", src.display());
    println!("cargo:rerun-if-changed={}", hdr.display());
    println!("cargo:rerun-if-env-changed=CLANG");
    let clang = env::var("CLANG").unwrap_or_else(|_| "clang".to_owned());
    let obj = out.join("xtrunk.bpf.o");
    let mut cmd = Command::new(&clang);
    cmd.args(["-O2", "-g", "-target", "bpf", "-Wall", "-Werror"]);
    // Debian/Ubuntu keep asm/types.h under the multiarch directory, which -target bpf does not search.
    for dir in ["/usr/include/x86_64-linux-gnu", "/usr/include/aarch64-linux-gnu"] {
        if std::path::Path::new(dir).exists() {
            cmd.arg(format!("-I{dir}"));
        }
    }
    cmd.arg("-c").arg(&src).arg("-o").arg(&obj);
    let status = match cmd.status() {
        Ok(s) => s,
        Err(e) => panic!(
            "cannot run `{clang}` to compile the XDP program ({e}): install clang (scripts/test does), \
             plus libbpf-dev for <bpf/bpf_helpers.h>"
        ),
    };
    if !status.success() {
        panic!("`{clang}` failed to compile {} ({status}); see the messages above", src.display());
    }
}
