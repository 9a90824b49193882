//! Where the server's keyring comes from.
//!
//! In order: the environment variable (production), an explicit file
//! (production), or `<data-dir>/keyring.json`, generated on first start so the
//! quick start needs no set-up. A generated keyring is announced in the log,
//! because a keyring nobody backs up is history nobody can read.

pub mod cli;
pub mod guard;
pub mod rewrap;
pub mod rotate;
pub mod watch;

use anyhow::Context as _;
use chatseal_core::{Keyring, Zeroizing};

use crate::config::Config;

/// Loads or creates the keyring that `config` names.
pub fn load(config: &Config) -> anyhow::Result<Keyring> {
    if let Some(keyring) = Keyring::from_env(&config.keyring_env)? {
        tracing::info!(source = %format!("${}", config.keyring_env), primary = keyring.primary(), "keyring loaded");
        return Ok(keyring);
    }
    if let Some(path) = &config.keyring_file {
        let keyring =
            Keyring::load_file(path).with_context(|| format!("keyring file {}", path.display()))?;
        tracing::info!(source = %path.display(), primary = keyring.primary(), "keyring loaded");
        return Ok(keyring);
    }
    let path = config.data_dir.join("keyring.json");
    let (keyring, created) = Keyring::load_or_generate(&path)
        .with_context(|| format!("keyring file {}", path.display()))?;
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

/// The secret that signs session tokens: `CHATSEAL_JWT_SECRET`, or
/// `<data-dir>/jwt-secret`, made on first start with mode 0600. Both hold
/// the same thing, standard base64 of 32 bytes or more, so the file's
/// content copied into the variable of a second server signs the same
/// tokens; anything else is refused at start rather than read differently.
pub fn jwt_secret(config: &Config) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    if let Some(secret) = &config.jwt_secret {
        return decode_jwt_secret(secret, "CHATSEAL_JWT_SECRET");
    }
    let path = config.data_dir.join("jwt-secret");
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let text = Zeroizing::new(text);
            check_private(&path)?;
            decode_jwt_secret(&text, &path.display().to_string())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            use rand_core::{OsRng, TryRngCore as _};
            let mut secret = Zeroizing::new(vec![0u8; 32]);
            OsRng.try_fill_bytes(&mut secret)?;
            write_private(&path, &Zeroizing::new(b64.encode(&*secret)))?;
            tracing::info!(path = %path.display(), "created a token-signing secret");
            Ok(secret)
        }
        Err(e) => Err(anyhow::Error::new(e).context(format!("cannot read {}", path.display()))),
    }
}

/// The bearer token `/encrypt` and `/decrypt` require, and where it comes
/// from: `CHATSEAL_SERVICE_TOKEN`, or `<data-dir>/service-token`, made on
/// first start with mode 0600 (32 random bytes, base64url). There is always
/// one: the listen address says nothing about who is calling (a reverse
/// proxy on the same host is a loopback client).
pub fn service_token(config: &Config) -> anyhow::Result<(Zeroizing<String>, String)> {
    bearer_token(
        config,
        config.service_token.as_deref(),
        "CHATSEAL_SERVICE_TOKEN",
        "service-token",
        "a service token for /encrypt and /decrypt",
    )
}

/// The bearer token the publish API (`POST /api/rooms/:room/messages`)
/// requires: `CHATSEAL_PUBLISH_TOKEN`, or `<data-dir>/publish-token`, made
/// like the service token. A separate token: a bot that may post should
/// not hold a decryption oracle, nor a `/decrypt` caller post as a service.
pub fn publish_token(config: &Config) -> anyhow::Result<(Zeroizing<String>, String)> {
    bearer_token(
        config,
        config.publish_token.as_deref(),
        "CHATSEAL_PUBLISH_TOKEN",
        "publish-token",
        "a publish token for POST /api/rooms/:room/messages",
    )
}

/// A bearer token from `given` (the variable `env`), else from
/// `<data-dir>/<file>`, made on first start.
fn bearer_token(
    config: &Config,
    given: Option<&str>,
    env: &str,
    file: &str,
    what: &str,
) -> anyhow::Result<(Zeroizing<String>, String)> {
    use base64::Engine as _;
    if let Some(token) = given {
        anyhow::ensure!(
            !token.trim().is_empty(),
            "{env} is empty; unset it to use <data-dir>/{file}"
        );
        return Ok((Zeroizing::new(token.trim().to_owned()), env.to_owned()));
    }
    let path = config.data_dir.join(file);
    let source = path.display().to_string();
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let text = Zeroizing::new(text);
            check_private(&path)?;
            anyhow::ensure!(!text.trim().is_empty(), "{source} is empty");
            Ok((Zeroizing::new(text.trim().to_owned()), source))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            use rand_core::{OsRng, TryRngCore as _};
            let mut bytes = Zeroizing::new([0u8; 32]);
            OsRng.try_fill_bytes(&mut *bytes)?;
            let token =
                Zeroizing::new(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(*bytes));
            write_private(&path, &token)?;
            tracing::info!(path = %source, "created {what}");
            Ok((token, source))
        }
        Err(e) => Err(anyhow::Error::new(e).context(format!("cannot read {source}"))),
    }
}

/// Creates `path` (and its directory) holding `text`, mode 0600; fails if
/// it exists.
fn write_private(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    if let Some(dir) = path.parent() {
        crate::files::private_dir(dir)
            .with_context(|| format!("cannot create the data directory {}", dir.display()))?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    Ok(())
}

/// Checks a configured `CHATSEAL_JWT_SECRET` without touching anything
/// ([`crate::config::Config::validate`]).
pub fn check_jwt_secret(text: &str) -> anyhow::Result<()> {
    decode_jwt_secret(text, "CHATSEAL_JWT_SECRET").map(drop)
}

fn decode_jwt_secret(text: &str, source: &str) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    use base64::Engine as _;
    let secret = Zeroizing::new(
        base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|_| {
                anyhow::anyhow!(
                    "{source} is not standard base64: it holds base64 of 32+ random bytes \
                     (`openssl rand -base64 32`, or the content of a server's data/jwt-secret)"
                )
            })?,
    );
    anyhow::ensure!(
        secret.len() >= 32,
        "{source} decodes to {} bytes; it needs 32 or more",
        secret.len()
    );
    Ok(secret)
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

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    /// A fresh directory of its own under the system's temp dir.
    fn tempdir(label: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "chatseal-keys-{label}-{}-{}",
            std::process::id(),
            crate::auth::unix_now().as_nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn config(dir: &std::path::Path, secret: Option<&str>) -> Config {
        let mut config =
            Config::parse_from(["chatseal-server", "--data-dir", dir.to_str().unwrap()]);
        config.jwt_secret = secret.map(str::to_owned);
        config
    }

    #[test]
    fn the_generated_file_and_the_variable_read_alike() {
        let dir = tempdir("file");
        let generated = jwt_secret(&config(&dir, None)).unwrap();
        let text = std::fs::read_to_string(dir.join("jwt-secret")).unwrap();
        // A second server given the file's content signs the same tokens.
        let other = tempdir("env");
        let from_env = jwt_secret(&config(&other, Some(&text))).unwrap();
        assert_eq!(*generated, *from_env);
        assert_eq!(generated.len(), 32);
        let _ = std::fs::remove_dir_all(dir);
        let _ = std::fs::remove_dir_all(other);
    }

    #[test]
    fn a_secret_that_is_not_base64_of_32_bytes_is_refused() {
        let dir = tempdir("bad");
        for bad in ["conformance-suite-secret-0123456789abcdef!", "c2hvcnQ=", ""] {
            let err = jwt_secret(&config(&dir, Some(bad))).unwrap_err();
            assert!(err.to_string().starts_with("CHATSEAL_JWT_SECRET"), "{err}");
        }
        let _ = std::fs::remove_dir_all(dir);
    }
}
