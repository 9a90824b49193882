//! The schema, in SQL that SQLite and PostgreSQL both take, applied at
//! start. Every statement is idempotent, so servers sharing a database can
//! start together; `chat_schema` records the version for later migrations.

use sqlx::AnyPool;

/// The schema version this build writes and reads.
pub const VERSION: i64 = 1;

const STATEMENTS: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS chat_schema (version BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS chat_users (
        username TEXT PRIMARY KEY,
        password_hash TEXT NOT NULL,
        created_at BIGINT NOT NULL
    )",
    // A room row appears with a room's first message or when an account
    // creates it; `last_seq` is the room's counter.
    "CREATE TABLE IF NOT EXISTS chat_rooms (
        name TEXT PRIMARY KEY,
        last_seq BIGINT NOT NULL DEFAULT 0,
        owner TEXT,
        private BIGINT NOT NULL DEFAULT 0
    )",
    "CREATE TABLE IF NOT EXISTS chat_members (
        room TEXT NOT NULL,
        username TEXT NOT NULL,
        PRIMARY KEY (room, username)
    )",
    "CREATE TABLE IF NOT EXISTS chat_messages (
        room TEXT NOT NULL,
        seq BIGINT NOT NULL,
        id TEXT NOT NULL UNIQUE,
        sender TEXT NOT NULL,
        ts BIGINT NOT NULL,
        key_id BIGINT NOT NULL,
        envelope TEXT NOT NULL,
        client_id TEXT,
        PRIMARY KEY (room, seq)
    )",
    // Dedup of resends: NULL client ids never collide.
    "CREATE UNIQUE INDEX IF NOT EXISTS chat_messages_client ON chat_messages (sender, client_id)",
];

/// Creates what is missing and refuses a database written by a newer build.
pub async fn migrate(pool: &AnyPool) -> Result<(), sqlx::Error> {
    for statement in STATEMENTS {
        sqlx::query(statement).execute(pool).await?;
    }
    let found: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM chat_schema")
        .fetch_one(pool)
        .await?;
    match found {
        None => {
            sqlx::query("INSERT INTO chat_schema (version) VALUES ($1)")
                .bind(VERSION)
                .execute(pool)
                .await?;
        }
        Some(v) if v > VERSION => {
            return Err(sqlx::Error::Protocol(format!(
                "the database has schema version {v}; this server understands up to {VERSION}"
            )));
        }
        Some(_) => {}
    }
    Ok(())
}
