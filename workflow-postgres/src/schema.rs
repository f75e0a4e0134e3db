//! The schema, its versions and their migrations, and the server settings the store requires.
//!
//! | table            | row                                                               |
//! |------------------|-------------------------------------------------------------------|
//! | `schema_version` | one per applied migration: `version`, `applied_at`                |
//! | `runs`           | a run: its record (JSON), its index columns, its lease            |
//! | `inbox`          | `(run_id, idx)`: a buffered signal (JSON)                         |
//! | `dedupe`         | `(run_id, key)`: a de-duplication key and when it was accepted    |
//! | `trace`          | `(run_id, idx)`: a trace event (JSON; `idx` is its number)        |
//!
//! The index rows of the embedded store (ready, timers, waits) are columns of `runs` here,
//! written with the record, so that a claim locks and updates one row: `ready`, `timer_ms`
//! (with `seq`, the checkpoint that armed it) and `wait` (the pending wait, JSON), each with a
//! partial index; `not_before_ms` defers a ready run that was claimed without effect (version
//! 2). Times are milliseconds since the Unix epoch as `bigint`; a `u64` beyond
//! `i64::MAX` (about 292 million years) is stored as `i64::MAX`. Run ids sort bytewise
//! (`COLLATE "C"`), as in the embedded store.

use tokio_postgres::Client;
use workflow_runtime::OpenError;

use crate::{backend, storage};

/// Migration `i` brings the schema from version `i` to version `i + 1`; append, never edit.
const MIGRATIONS: &[&str] = &[
    // Version 1.
    r#"
    CREATE TABLE runs (
        run_id text COLLATE "C" PRIMARY KEY,
        workflow text NOT NULL,
        seq bigint NOT NULL,
        record bytea NOT NULL,
        purgeable boolean NOT NULL,
        ready boolean NOT NULL,
        timer_ms bigint,
        wait bytea,
        lease_owner text,
        lease_token bigint,
        lease_expires_ms bigint
    );
    CREATE INDEX runs_ready ON runs (run_id) WHERE ready;
    CREATE INDEX runs_timers ON runs (timer_ms, run_id) WHERE timer_ms IS NOT NULL;
    CREATE INDEX runs_waits ON runs (run_id) WHERE wait IS NOT NULL;
    CREATE SEQUENCE lease_tokens;
    CREATE TABLE inbox (
        run_id text COLLATE "C" NOT NULL,
        idx bigint NOT NULL,
        entry bytea NOT NULL,
        PRIMARY KEY (run_id, idx)
    );
    CREATE TABLE dedupe (
        run_id text COLLATE "C" NOT NULL,
        key text COLLATE "C" NOT NULL,
        at_ms bigint NOT NULL,
        PRIMARY KEY (run_id, key)
    );
    CREATE TABLE trace (
        run_id text COLLATE "C" NOT NULL,
        idx bigint NOT NULL,
        event bytea NOT NULL,
        PRIMARY KEY (run_id, idx)
    );
    "#,
    // Version 2: a ready run claimed without effect is deferred (`Store::defer`) until
    // `not_before_ms`, which any grant clears; the ready index is ordered by it, so that a
    // claim reads the runs due now as a range and never the deferred ones.
    r#"
    ALTER TABLE runs ADD COLUMN not_before_ms bigint;
    DROP INDEX runs_ready;
    CREATE INDEX runs_ready ON runs ((COALESCE(not_before_ms, 0)), run_id) WHERE ready;
    "#,
];

/// The schema version this code writes and reads.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// Any constant works, as long as every version of this library takes the same one: it keeps
/// two processes opening a fresh database at once from both creating the schema.
const MIGRATION_LOCK: i64 = 0x7766_6c6f_7770_6731;

/// Creates the schema, or migrates it to [`SCHEMA_VERSION`]; refuses a newer one, changing
/// nothing.
pub(crate) async fn migrate(client: &mut Client, label: &str) -> Result<(), OpenError> {
    let op = "creating or migrating the schema";
    let txn = client
        .transaction()
        .await
        .map_err(|e| storage(label, backend(op, e)))?;
    txn.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(|e| storage(label, backend(op, e)))?;
    txn.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_version (
             version integer PRIMARY KEY,
             applied_at timestamptz NOT NULL DEFAULT now()
         )",
    )
    .await
    .map_err(|e| storage(label, backend(op, e)))?;
    let found: i32 = txn
        .query_one("SELECT COALESCE(MAX(version), 0) FROM schema_version", &[])
        .await
        .map_err(|e| storage(label, backend(op, e)))?
        .get(0);
    let found = u32::try_from(found).unwrap_or(0);
    if found > SCHEMA_VERSION {
        return Err(OpenError::SchemaTooNew {
            path: label.to_owned(),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    for version in found + 1..=SCHEMA_VERSION {
        let sql = MIGRATIONS[(version - 1) as usize];
        txn.batch_execute(sql)
            .await
            .map_err(|e| storage(label, backend(op, e)))?;
        txn.execute(
            "INSERT INTO schema_version (version) VALUES ($1)",
            &[&i32::try_from(version).unwrap_or(i32::MAX)],
        )
        .await
        .map_err(|e| storage(label, backend(op, e)))?;
    }
    txn.commit()
        .await
        .map_err(|e| storage(label, backend(op, e)))
}

/// Makes the connection's commits wait for the flush of their WAL (`synchronous_commit` is per
/// session: a role or database default of `off` would otherwise apply), then checks that the
/// server keeps what it acknowledged through a power cut.
pub(crate) async fn require_durability(client: &Client, label: &str) -> Result<(), OpenError> {
    let op = "checking the server's durability settings";
    client
        .batch_execute("SET synchronous_commit = on")
        .await
        .map_err(|e| storage(label, backend(op, e)))?;
    for (setting, accepted) in [
        ("fsync", &["on"][..]),
        ("full_page_writes", &["on"][..]),
        // Every value but `off` waits for the local WAL flush.
        (
            "synchronous_commit",
            &["on", "local", "remote_write", "remote_apply"][..],
        ),
    ] {
        let value: String = client
            .query_one("SELECT current_setting($1)", &[&setting])
            .await
            .map_err(|e| storage(label, backend(op, e)))?
            .get(0);
        if !accepted.contains(&value.as_str()) {
            return Err(OpenError::NotDurable {
                path: label.to_owned(),
                setting: setting.to_owned(),
                value,
                required: "on".to_owned(),
            });
        }
    }
    Ok(())
}
