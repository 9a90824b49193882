//! The schema, in SQL that SQLite and PostgreSQL both take, applied at
//! start. Every statement is idempotent, so servers sharing a database can
//! start together; `chat_schema` records the version for later migrations.

use sqlx::{AnyConnection, AnyPool};

/// The schema version this build writes and reads.
/// 2: dedup per (room, sender, clientId); usernames unique in any case.
/// 3: the store knows its keys (chat_keys, chat_keyring, chat_key_nodes).
/// 4: room key epochs (chat_rooms.epoch, chat_messages.epoch).
/// 5: the dedup index holds messages with a clientId only, clientId first.
pub const VERSION: i64 = 5;

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
        private BIGINT NOT NULL DEFAULT 0,
        epoch BIGINT NOT NULL DEFAULT 0
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
        epoch BIGINT NOT NULL DEFAULT 0,
        PRIMARY KEY (room, seq)
    )",
    // Dedup of resends, per room and sender: NULL client ids never collide.
    // (Version 1 had it per sender only, so a clientId reused in another
    // room was answered with the first room's message.)
    "DROP INDEX IF EXISTS chat_messages_client",
    // Version 5: only messages with a clientId are in it, clientId before
    // sender. Versions 2–4 indexed every message, NULLs too, although a
    // NULL never collides and no look-up asks for one, and in (room,
    // sender, clientId) order: each sender's run of entries was one more
    // page for every commit to write (a third of the bytes the store wrote
    // per message, with clientIds or without). With time-ordered clientIds
    // (the SDK's UUID v7) every sender's new entries now go to the same
    // end of the room's part of the index. The same three columns, so the
    // same uniqueness. The new index is made before the old one goes, so
    // a server still running on the database never writes without one.
    "CREATE UNIQUE INDEX IF NOT EXISTS chat_messages_room_client_id \
     ON chat_messages (room, client_id, sender) WHERE client_id IS NOT NULL",
    "DROP INDEX IF EXISTS chat_messages_room_client",
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

/// Columns added after their table was first made: (table, column, type).
/// A database made before them gets them at start (`add_column`); every
/// existing row takes the default, which means what the row meant before
/// (epoch 0 is the room key every message had before epochs existed).
const ADDED_COLUMNS: &[(&str, &str, &str)] = &[
    ("chat_rooms", "epoch", "BIGINT NOT NULL DEFAULT 0"),
    ("chat_messages", "epoch", "BIGINT NOT NULL DEFAULT 0"),
];

/// The PostgreSQL advisory lock servers take turns on while they migrate
/// ("chatseal" in ASCII).
const MIGRATION_LOCK: i64 = 0x6368_6174_7365_616c;

/// Creates what is missing and refuses a database written by a newer build.
///
/// On PostgreSQL servers starting together on one database take turns: two
/// `CREATE … IF NOT EXISTS` of one name at once can both find it missing,
/// and the second then fails on the catalog's unique index — a server that
/// does not start (seen with the schema-5 index, 2 starts in 11). SQLite
/// runs one writer's statement at a time by itself.
pub async fn migrate(pool: &AnyPool, backend: super::Backend) -> Result<(), sqlx::Error> {
    let mut conn = pool.acquire().await?;
    if backend == super::Backend::Postgres {
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut *conn)
            .await?;
    }
    let migrated = migrate_on(&mut conn, backend).await;
    if backend == super::Backend::Postgres {
        let unlocked = sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut *conn)
            .await;
        if unlocked.is_err() {
            // The lock ends with the session: this connection must not go
            // back to the pool holding it.
            drop(conn.detach());
        }
    }
    migrated
}

async fn migrate_on(conn: &mut AnyConnection, backend: super::Backend) -> Result<(), sqlx::Error> {
    for statement in STATEMENTS {
        sqlx::query(statement).execute(&mut *conn).await?;
    }
    for (table, column, kind) in ADDED_COLUMNS {
        add_column(conn, backend, table, column, kind).await?;
    }
    let found: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM chat_schema")
        .fetch_one(&mut *conn)
        .await?;
    match found {
        None => {
            sqlx::query("INSERT INTO chat_schema (version) VALUES ($1)")
                .bind(VERSION)
                .execute(&mut *conn)
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
                .execute(&mut *conn)
                .await?;
        }
        Some(_) => {}
    }
    // Servers starting together each offer an id; the first one stays.
    sqlx::query("INSERT INTO chat_store (id, history) VALUES (1, $1) ON CONFLICT DO NOTHING")
        .bind(uuid::Uuid::now_v7().to_string())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Adds `column` to `table` unless it is there. SQLite has no `ADD COLUMN IF
/// NOT EXISTS`, so the column list is read first; two servers starting
/// together on an old database may both try, and the loser's error is
/// forgiven once the column is seen to exist.
async fn add_column(
    conn: &mut AnyConnection,
    backend: super::Backend,
    table: &str,
    column: &str,
    kind: &str,
) -> Result<(), sqlx::Error> {
    if has_column(conn, backend, table, column).await? {
        return Ok(());
    }
    let added = sqlx::query(&format!("ALTER TABLE {table} ADD COLUMN {column} {kind}"))
        .execute(&mut *conn)
        .await;
    match added {
        Ok(_) => Ok(()),
        Err(_) if has_column(conn, backend, table, column).await? => Ok(()),
        Err(e) => Err(e),
    }
}

async fn has_column(
    conn: &mut AnyConnection,
    backend: super::Backend,
    table: &str,
    column: &str,
) -> Result<bool, sqlx::Error> {
    let sql = match backend {
        super::Backend::Sqlite => "SELECT COUNT(*) FROM pragma_table_info($1) WHERE name = $2",
        super::Backend::Postgres => {
            "SELECT COUNT(*) FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = $1 AND column_name = $2"
        }
    };
    let n: i64 = sqlx::query_scalar(sql)
        .bind(table)
        .bind(column)
        .fetch_one(&mut *conn)
        .await?;
    Ok(n > 0)
}

/// The history id [`migrate`] made (or found).
pub async fn history_id(pool: &AnyPool) -> Result<String, sqlx::Error> {
    sqlx::query_scalar("SELECT history FROM chat_store WHERE id = 1")
        .fetch_one(pool)
        .await
}
