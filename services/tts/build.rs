//! espeak-ng (built from source by espeak-rs-sys) uses libsonic for fast
//! speech; the -sys crate does not link it, so this crate does.

fn main() {
    println!("cargo:rustc-link-lib=dylib=sonic");
}
