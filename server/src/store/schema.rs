//! The schema, in SQL that SQLite and PostgreSQL both take, applied at
//! start. Every statement is idempotent, so servers sharing a database can
//! start together; `chat_schema` records the version for later migrations.

use sqlx::AnyPool;

/// The schema version this build writes and reads.
/// 2: dedup per (room, sender, clientId); usernames unique in any case.
pub const VERSION: i64 = 2;

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
    // Dedup of resends, per room and sender: NULL client ids never collide.
    // (Version 1 had it per sender only, so a clientId reused in another
    // room was answered with the first room's message.)
    "DROP INDEX IF EXISTS chat_messages_client",
    "CREATE UNIQUE INDEX IF NOT EXISTS chat_messages_room_client \
     ON chat_messages (room, sender, client_id)",
    // `ann`, `Ann` and `ANN` are one name (names are ASCII, which lower()
    // folds alike in SQLite and PostgreSQL). A version-1 database holding
    // two such accounts stops here at start: rename one by hand.
    "CREATE UNIQUE INDEX IF NOT EXISTS chat_users_name_folded ON chat_users (lower(username))",
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
        Some(v) if v < VERSION => {
            // The statements above brought it up to date.
            sqlx::query("INSERT INTO chat_schema (version) VALUES ($1)")
                .bind(VERSION)
                .execute(pool)
                .await?;
        }
        Some(_) => {}
    }
    Ok(())
}
