//! The data directory and the files in it are the server's alone: the
//! directory is 0700 and the database 0600, whatever the umask, since the
//! database holds every account's password hash and every sealed message,
//! and the directory the token-signing secret and the dev keyring.

use std::path::Path;

/// Creates `dir` (and its parents) with mode 0700, or narrows an existing
/// one that group or others may enter to 0700.
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt as _, PermissionsExt as _};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    narrow(dir, std::fs::metadata(dir)?.permissions().mode(), 0o700)
}

/// Makes `file` mode 0600: created empty if missing (SQLite then fills it,
/// and gives its -wal and -shm files the same mode), narrowed if others
/// may read it. The -wal and -shm files of an existing database too.
pub fn private_database(file: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(file)?;
    for suffix in ["", "-wal", "-shm"] {
        let mut name = file.as_os_str().to_owned();
        name.push(suffix);
        let path = Path::new(&name);
        match std::fs::metadata(path) {
            Ok(meta) => narrow(path, meta.permissions().mode(), 0o600)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn narrow(path: &Path, mode: u32, wanted: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    if mode & 0o077 == 0 {
        return Ok(());
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(wanted))?;
    tracing::warn!(
        path = %path.display(),
        was = format!("{:03o}", mode & 0o777),
        now = format!("{wanted:03o}"),
        "narrowed the mode: only this server's user may use its data"
    );
    Ok(())
}
