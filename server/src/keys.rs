//! Where the server's keyring comes from.
//!
//! In order: the environment variable (production), an explicit file
//! (production), or `<data-dir>/keyring.json`, generated on first start so the
//! quick start needs no set-up. A generated keyring is announced in the log,
//! because a keyring nobody backs up is history nobody can read.

use chatseal_core::{Keyring, Zeroizing};

use crate::config::Config;

/// Loads or creates the keyring that `config` names.
pub fn load(config: &Config) -> anyhow::Result<Keyring> {
    if let Some(keyring) = Keyring::from_env(&config.keyring_env)? {
        tracing::info!(source = %format!("${}", config.keyring_env), primary = keyring.primary(), "keyring loaded");
        return Ok(keyring);
    }
    if let Some(path) = &config.keyring_file {
        let keyring = Keyring::load_file(path)?;
        tracing::info!(source = %path.display(), primary = keyring.primary(), "keyring loaded");
        return Ok(keyring);
    }
    let path = config.data_dir.join("keyring.json");
    let (keyring, created) = Keyring::load_or_generate(&path)?;
    if created {
        tracing::warn!(
            path = %path.display(),
            "created a new development keyring; back it up, or set CHATSEAL_KEYRING_FILE / CHATSEAL_KEYRING in production"
        );
    } else {
        tracing::info!(source = %path.display(), primary = keyring.primary(), "keyring loaded");
    }
    Ok(keyring)
}

/// Reads the keyring again from where [`load`] found it, for a rotation
/// without a restart (SIGHUP). Never generates one.
pub fn reload(config: &Config) -> anyhow::Result<Keyring> {
    if let Some(keyring) = Keyring::from_env(&config.keyring_env)? {
        return Ok(keyring);
    }
    let path = config
        .keyring_file
        .clone()
        .unwrap_or_else(|| config.data_dir.join("keyring.json"));
    Ok(Keyring::load_file(path)?)
}

/// Longest a SIGHUP reload waits for the keyring file: a file that never
/// answers (a FIFO, a hung network mount) fails the reload, not the server.
pub const RELOAD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// [`reload`] on a blocking thread, never on the runtime's, given up after
/// `timeout`. A read that hangs keeps its thread until the file answers;
/// `pending` holds it, and no second read starts while it is stuck.
pub async fn reload_blocking(
    config: &Config,
    timeout: std::time::Duration,
    pending: &mut Option<tokio::task::JoinHandle<anyhow::Result<Keyring>>>,
) -> anyhow::Result<Keyring> {
    if pending.as_ref().is_some_and(|read| !read.is_finished()) {
        anyhow::bail!("the previous keyring read has not returned yet (a FIFO, a hung mount?)");
    }
    let config = config.clone();
    let read = pending.insert(tokio::task::spawn_blocking(move || reload(&config)));
    match tokio::time::timeout(timeout, read).await {
        Ok(joined) => {
            *pending = None;
            joined?
        }
        Err(_) => anyhow::bail!(
            "the keyring file did not answer within {} s (a FIFO, a hung mount?)",
            timeout.as_secs_f32()
        ),
    }
}

/// The secret that signs session tokens: from the configuration (32 bytes
/// or more), or `<data-dir>/jwt-secret`, made on first start with mode 0600.
pub fn jwt_secret(config: &Config) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    if let Some(secret) = &config.jwt_secret {
        anyhow::ensure!(
            secret.len() >= 32,
            "CHATSEAL_JWT_SECRET must be at least 32 bytes"
        );
        return Ok(Zeroizing::new(secret.as_bytes().to_vec()));
    }
    let path = config.data_dir.join("jwt-secret");
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let text = Zeroizing::new(text);
            check_private(&path)?;
            let secret = Zeroizing::new(
                b64.decode(text.trim())
                    .map_err(|_| anyhow::anyhow!("{} is not base64", path.display()))?,
            );
            anyhow::ensure!(
                secret.len() >= 32,
                "{} holds under 32 bytes",
                path.display()
            );
            Ok(secret)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            use rand_core::{OsRng, TryRngCore as _};
            use std::io::Write as _;
            use std::os::unix::fs::OpenOptionsExt as _;
            let mut secret = Zeroizing::new(vec![0u8; 32]);
            OsRng.try_fill_bytes(&mut secret)?;
            crate::files::private_dir(&config.data_dir)?;
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)?;
            file.write_all(Zeroizing::new(b64.encode(&*secret)).as_bytes())?;
            file.sync_all()?;
            tracing::info!(path = %path.display(), "created a token-signing secret");
            Ok(secret)
        }
        Err(e) => Err(e.into()),
    }
}

fn check_private(path: &std::path::Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(path)?.permissions().mode();
    anyhow::ensure!(
        mode & 0o077 == 0,
        "{} is readable by group or others (mode {:o}); chmod 600 it",
        path.display(),
        mode & 0o777
    );
    Ok(())
}
