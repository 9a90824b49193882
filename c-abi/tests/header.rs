//! The committed `include/chatseal.h` must be exactly what cbindgen (pinned
//! in Cargo.toml) makes from the code today. `CHATSEAL_WRITE_HEADER=1`
//! rewrites it.

use std::path::PathBuf;

#[test]
fn header_is_current() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(dir.join("cbindgen.toml")).unwrap();
    let mut generated = Vec::new();
    cbindgen::Builder::new()
        .with_crate(&dir)
        .with_config(config)
        .generate()
        .expect("cbindgen")
        .write(&mut generated);
    let path = dir.join("include/chatseal.h");
    if std::env::var_os("CHATSEAL_WRITE_HEADER").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read(&path).expect("include/chatseal.h");
    assert!(
        committed == generated,
        "include/chatseal.h is out of date; regenerate with CHATSEAL_WRITE_HEADER=1 cargo test -p chatseal-ffi --test header"
    );
}
