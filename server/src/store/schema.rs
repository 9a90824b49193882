//! The schema, in SQL that SQLite and PostgreSQL both take, applied at
//! start. Every statement is idempotent, so servers sharing a database can
//! start together; `chat_schema` records the version for later migrations.

use sqlx::AnyPool;

/// The schema version this build writes and reads.
/// 2: dedup per (room, sender, clientId); usernames unique in any case.
/// 3: the store knows its keys (chat_keys, chat_keyring, chat_key_nodes).
pub const VERSION: i64 = 3;

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
    // Version 3: the store knows its keys (docs/operations.md, "Keys").
    // Which key ids messages need (start-up checks, status, rewrap, retire).
    "CREATE INDEX IF NOT EXISTS chat_messages_key ON chat_messages (key_id)",
    // Per master key id: its check value (a one-way fingerprint, never the
    // key; docs/format.md §1), seals so far, when it was first recorded
    // (unix ms) and whether `keys retire` retired it.
    "CREATE TABLE IF NOT EXISTS chat_keys (
        id BIGINT PRIMARY KEY,
        check_value TEXT NOT NULL,
        seals BIGINT NOT NULL DEFAULT 0,
        created BIGINT NOT NULL,
        retired BIGINT NOT NULL DEFAULT 0
    )",
    // One row: the keyring generation servers poll (bumped by `keys
    // rotate`/`retire`), and the lease that makes one rotation at a time.
    "CREATE TABLE IF NOT EXISTS chat_keyring (
        id BIGINT PRIMARY KEY,
        generation BIGINT NOT NULL,
        lease_until BIGINT NOT NULL DEFAULT 0,
        lease_holder TEXT
    )",
    "INSERT INTO chat_keyring (id, generation) VALUES (1, 0) ON CONFLICT DO NOTHING",
    // Every running server, every second: which keys it holds, so a
    // rotation promotes a key only once every server has it.
    "CREATE TABLE IF NOT EXISTS chat_key_nodes (
        node TEXT PRIMARY KEY,
        key_ids TEXT NOT NULL,
        primary_id BIGINT NOT NULL,
        generation BIGINT NOT NULL,
        seen BIGINT NOT NULL
    )",
    // One row: this history's id, made once by the first server to start on
    // an empty database. Clients compare it across joins (the `history` of a
    // join ack, docs/protocol.md §2): a different id means a different
    // history, so seqs they have seen say nothing about it. A backup restored
    // elsewhere carries its id along; a new database gets a new one.
    // Adding it needs no version: older builds never read it.
    "CREATE TABLE IF NOT EXISTS chat_store (
        id BIGINT PRIMARY KEY,
        history TEXT NOT NULL
    )",
    // Accounts as operators manage them (`chatseal-server users`): disabled,
    // and tokens issued before `tokens_after` (unix s) refused.
    "CREATE TABLE IF NOT EXISTS chat_user_state (
        username TEXT PRIMARY KEY,
        disabled BIGINT NOT NULL DEFAULT 0,
        tokens_after BIGINT NOT NULL DEFAULT 0
    )",
    // Invitations (`--registration invite`): the SHA-256 of the code only.
    "CREATE TABLE IF NOT EXISTS chat_invites (
        code_hash TEXT PRIMARY KEY,
        uses_left BIGINT NOT NULL,
        expires BIGINT NOT NULL,
        created BIGINT NOT NULL
    )",
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
    // Servers starting together each offer an id; the first one stays.
    sqlx::query("INSERT INTO chat_store (id, history) VALUES (1, $1) ON CONFLICT DO NOTHING")
        .bind(uuid::Uuid::now_v7().to_string())
        .execute(pool)
        .await?;
    Ok(())
}

/// The history id [`migrate`] made (or found).
pub async fn history_id(pool: &AnyPool) -> Result<String, sqlx::Error> {
    sqlx::query_scalar("SELECT history FROM chat_store WHERE id = 1")
        .fetch_one(pool)
        .await
}
