//! Gives libchatseal.so a SONAME, so programs link against the ABI major
//! version (`libchatseal.so.0`) rather than a file name.

fn main() {
    let major = std::env::var("CARGO_PKG_VERSION_MAJOR").unwrap();
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libchatseal.so.{major}");
    }
}
