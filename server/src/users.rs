//! `chatseal-server users …`: accounts made and managed by an operator,
//! for `--registration closed` (no sign-up over HTTP) and `invite`. Each
//! command takes the server's own flags and environment (`--data-dir`,
//! `DATABASE_URL`), like `keys`, and works while servers run: they read
//! accounts from the store on every login and token check.
//!
//! Passwords are read from standard input (one line), never from the
//! command line (where `ps` and shell history would keep them), or made
//! here with `--generate` and printed once.

// A command's output is what it prints.
#![allow(clippy::print_stdout)]

use std::io::BufRead as _;
use std::time::Duration;

use zeroize::Zeroizing;

use crate::auth;
use crate::config::Config;

/// `users …`
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Users {
    /// Create an account; the password is read from standard input.
    Add {
        username: String,
        /// Make a random password and print it instead of reading one.
        #[arg(long)]
        generate: bool,
    },
    /// Set a new password (read from standard input) and end every session
    /// of the account: tokens issued before are refused from now on.
    ResetPassword {
        username: String,
        /// Make a random password and print it instead of reading one.
        #[arg(long)]
        generate: bool,
    },
    /// Disable an account: it cannot log in, its tokens are refused (open
    /// sessions end at their next check: a reconnect, a refresh, their
    /// token's exp), no one can invite it. Its messages stay.
    Disable { username: String },
    /// Enable a disabled account again (its old tokens stay refused).
    Enable { username: String },
    /// Make an invitation code for `--registration invite`, printed once
    /// (the store keeps only its SHA-256).
    Invite {
        /// How many accounts it may create.
        #[arg(long, default_value_t = 1)]
        uses: u32,
        /// How long it is valid.
        #[arg(long, default_value = "7d", value_parser = humantime::parse_duration)]
        expires: Duration,
    },
}

/// The stored form of an invitation code: lowercase hex of its SHA-256.
/// Codes are 128 random bits, so a fast hash is enough to make a stolen
/// database useless for signing up.
pub fn code_hash(code: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, code.trim().as_bytes());
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// Runs a `users` command.
pub async fn run(config: &Config, command: Users) -> anyhow::Result<()> {
    if let Users::Add { username, .. } = &command {
        auth::validate_username(username).map_err(anyhow::Error::msg)?;
        let prefix = &config.oidc.oidc_name_prefix;
        anyhow::ensure!(
            prefix.is_empty()
                || !username
                    .to_ascii_lowercase()
                    .starts_with(&prefix.to_ascii_lowercase()),
            "names starting with {prefix} are for the identity provider's users \
             (CHATSEAL_OIDC_NAME_PREFIX)"
        );
    }
    let store = crate::keys::cli::connect(config).await?;
    let now_ms = auth::unix_now().as_millis() as i64;
    let now_s = auth::unix_now().as_secs() as i64;
    let outcome = async {
        match command {
            Users::Add { username, generate } => {
                let password = password(generate)?;
                let hash = hash(password).await?;
                anyhow::ensure!(
                    store.create_user(&username, &hash, now_ms).await?,
                    "an account named {username} exists already (names are one in any case)"
                );
                println!("created account {username}");
            }
            Users::ResetPassword { username, generate } => {
                let password = password(generate)?;
                let hash = hash(password).await?;
                anyhow::ensure!(
                    store.reset_password(&username, &hash, now_s).await?,
                    "no account named {username}"
                );
                println!("new password set for {username}; its earlier sessions are ended");
            }
            Users::Disable { username } => {
                anyhow::ensure!(
                    store.set_disabled(&username, true, now_s).await?,
                    "no account named {username}"
                );
                println!("disabled {username}: no logins; its tokens are refused");
            }
            Users::Enable { username } => {
                anyhow::ensure!(
                    store.set_disabled(&username, false, now_s).await?,
                    "no account named {username}"
                );
                println!("enabled {username}: it may log in again");
            }
            Users::Invite { uses, expires } => {
                anyhow::ensure!(uses >= 1, "--uses is 1 or more");
                let code = random_secret()?;
                let until = now_ms.saturating_add(expires.as_millis() as i64);
                store
                    .create_invite(&code_hash(&code), i64::from(uses), until, now_ms)
                    .await?;
                println!("{}", code.as_str());
                eprintln!(
                    "invitation for {uses} account(s), valid for {}: register with \
                     {{ username, password, invite }}",
                    humantime::format_duration(expires)
                );
            }
        }
        Ok(())
    }
    .await;
    store.close().await;
    outcome
}

/// A password from standard input (one line), or a generated one, printed.
fn password(generate: bool) -> anyhow::Result<Zeroizing<String>> {
    if generate {
        let password = random_secret()?;
        println!("password: {}", password.as_str());
        return Ok(password);
    }
    let mut line = Zeroizing::new(String::new());
    std::io::stdin().lock().read_line(&mut line)?;
    let password = Zeroizing::new(line.trim_end_matches(['\r', '\n']).to_owned());
    auth::validate_password(&password).map_err(anyhow::Error::msg)?;
    Ok(password)
}

async fn hash(password: Zeroizing<String>) -> anyhow::Result<String> {
    Ok(tokio::task::spawn_blocking(move || auth::hash_password(&password)).await?)
}

/// 16 random bytes, base64url: an invitation code or a generated password.
fn random_secret() -> anyhow::Result<Zeroizing<String>> {
    use base64::Engine as _;
    use rand_core::{OsRng, TryRngCore as _};
    let mut bytes = Zeroizing::new([0u8; 16]);
    OsRng.try_fill_bytes(&mut *bytes)?;
    Ok(Zeroizing::new(
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(*bytes),
    ))
}
