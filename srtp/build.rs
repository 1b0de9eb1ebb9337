//! Links the system libsrtp2, only when the `libsrtp2` feature is on.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=CARGO_FEATURE_LIBSRTP2");
    if std::env::var_os("CARGO_FEATURE_LIBSRTP2").is_none() {
        return;
    }
    // Prefer pkg-config's view (search paths of a non-default prefix); fall back to
    // the plain library name, which is where Debian's libsrtp2-dev puts it.
    let libs = std::process::Command::new("pkg-config").args(["--libs-only-L", "libsrtp2"]).output();
    if let Ok(out) = libs {
        if out.status.success() {
            for flag in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                if let Some(dir) = flag.strip_prefix("-L") {
                    println!("cargo:rustc-link-search=native={dir}");
                }
            }
        } else {
            println!("cargo:warning=pkg-config does not know libsrtp2; trying -lsrtp2 anyway");
        }
    }
    println!("cargo:rustc-link-lib=srtp2");
}
