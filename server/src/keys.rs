//! Where the server's keyring comes from.
//!
//! In order: the environment variable (production), an explicit file
//! (production), or `<data-dir>/keyring.json`, generated on first start so the
//! quick start needs no set-up. A generated keyring is announced in the log,
//! because a keyring nobody backs up is history nobody can read.

use chatseal_core::Keyring;

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
