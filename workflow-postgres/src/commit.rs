//! Group commit on the write connection: every transaction carries all the checkpoints that
//! were queued while the previous one was being committed, each acknowledged or refused on its
//! own.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::Poll;

use tokio::sync::{mpsc, oneshot};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Row, Statement, Transaction};
use workflow_runtime::CodecError;
use workflow_runtime::store::{Acknowledger, CheckpointWrite, Fence, Indexed, StoreError};

use crate::{Reconnect, backend, to_db};

/// One checkpoint, encoded on the caller's thread, with its index columns derived.
pub(crate) struct Job {
    run_id: String,
    fence: Fence,
    purge: bool,
    row: Option<RunRow>,
    clear_inbox: bool,
    consumed: Vec<i64>,
    buffer: Option<Vec<u8>>,
    dedupe: Option<(String, i64)>,
    trace: Vec<Vec<u8>>,
    /// Checkpoints of other runs written in the same transaction (the child runs a
    /// checkpoint creates).
    others: Vec<Job>,
    /// The lease a new run is written with: owner, token, expiry.
    grant: Option<(String, i64, i64)>,
}

/// The `runs` row a checkpoint writes (lease columns aside).
struct RunRow {
    workflow: String,
    seq: i64,
    record: Vec<u8>,
    purgeable: bool,
    ready: bool,
    timer_ms: Option<i64>,
    wait: Option<Vec<u8>>,
}

impl RunRow {
    /// The columns a record write sets, as statement parameters in [`WRITTEN`]'s order.
    fn params(&self) -> [&(dyn ToSql + Sync); 7] {
        [
            &self.workflow,
            &self.seq,
            &self.record,
            &self.purgeable,
            &self.ready,
            &self.timer_ms,
            &self.wait,
        ]
    }
}

impl Job {
    /// Encodes a checkpoint; an encoding error reaches the caller before anything is queued.
    pub(crate) fn encode(mut cp: CheckpointWrite) -> Result<Job, StoreError> {
        let others = std::mem::take(&mut cp.others)
            .into_iter()
            .map(|other| {
                if other.others.is_empty() {
                    Job::encode(other)
                } else {
                    Err(StoreError::backend(
                        "committing a checkpoint",
                        std::io::Error::other("a checkpoint's other writes cannot have their own"),
                    ))
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        let run_id = cp.run_id;
        let grant = cp
            .grant
            .filter(|_| cp.run.is_some())
            .map(|lease| (lease.owner, to_db(lease.token), to_db(lease.expires_ms)));
        let encode = |what: &str, e| {
            StoreError::Codec(CodecError::encoding(
                format!("the {what} of run `{run_id}`"),
                e,
            ))
        };
        // The index columns follow from the new record alone: `previous` names the rows the
        // embedded store must delete, and here every record write overwrites them.
        let row = match &cp.run {
            Some(write) => {
                let rec = &write.record;
                let indexed = Indexed::of(&run_id, rec);
                let wait = match &indexed {
                    Some(Indexed::Wait(wait)) => {
                        Some(serde_json::to_vec(wait).map_err(|e| encode("pending wait", e))?)
                    }
                    _ => None,
                };
                Some(RunRow {
                    workflow: rec.workflow.clone(),
                    seq: to_db(rec.seq),
                    record: serde_json::to_vec(rec).map_err(|e| encode("record", e))?,
                    purgeable: rec.is_purgeable(),
                    ready: matches!(indexed, Some(Indexed::Ready)),
                    timer_ms: indexed.as_ref().and_then(Indexed::deadline_ms).map(to_db),
                    wait,
                })
            }
            None => None,
        };
        let buffer = cp
            .buffer
            .as_ref()
            .map(|entry| serde_json::to_vec(entry).map_err(|e| encode("buffered signal", e)))
            .transpose()?;
        let trace = cp
            .trace
            .iter()
            .map(|event| serde_json::to_vec(event).map_err(|e| encode("trace event", e)))
            .collect::<Result<_, _>>()?;
        Ok(Job {
            fence: cp.fence,
            purge: cp.purge,
            // A finished run accepts no signal; one parked as incompatible may be revived and
            // keeps what it had buffered: exactly the purgeable ones lose their inbox.
            clear_inbox: row.as_ref().is_some_and(|r| r.purgeable),
            row,
            consumed: cp.consumed.into_iter().map(to_db).collect(),
            buffer,
            dedupe: cp.dedupe.map(|(key, at_ms)| (key, to_db(at_ms))),
            trace,
            run_id,
            others,
            grant,
        })
    }
}

impl Job {
    /// The statement-per-part paths' record write and its parameters, if the job has one.
    fn upsert<'a>(
        &'a self,
        st: &'a WriteStatements,
    ) -> Option<(&'a Statement, Vec<&'a (dyn ToSql + Sync)>)> {
        let row = self.row.as_ref()?;
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![&self.run_id];
        params.extend(row.params());
        // A creation inserts: the checks of these paths read a snapshot, in which a row that
        // a concurrent group statement is inserting does not show; the insert then fails on
        // the unique index instead of overwriting that run (see [`write`]).
        let create = self.fence == Fence::Create;
        match &self.grant {
            Some((owner, token, expires)) => {
                params.extend([owner as &(dyn ToSql + Sync), token, expires]);
                Some((
                    if create {
                        &st.insert_granted
                    } else {
                        &st.upsert_granted
                    },
                    params,
                ))
            }
            None => Some((if create { &st.insert } else { &st.upsert }, params)),
        }
    }
}

/// What a group writes, as bits: which parts its one statement ([`group_sql`]) needs. A part
/// no checkpoint of the group has is left out of the statement, so that the server neither
/// plans nor starts it (each table written costs its executor start-up, about as much as the
/// write of one row).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct Shape(u16);

impl Shape {
    /// Some checkpoint is fenced: its run's row is updated under its token first.
    const FENCE: u16 = 1;
    const RECORD: u16 = 2;
    const CLEAR: u16 = 4;
    const CONSUME: u16 = 8;
    const BUFFER: u16 = 16;
    const DEDUPE: u16 = 32;
    const TRACE: u16 = 64;
    /// Some new run is written with its creator's lease.
    const GRANT: u16 = 128;
    /// Some checkpoint is not fenced (beside fenced ones, its own parts are needed).
    const OPEN: u16 = 256;
    /// Some fenced checkpoint writes no record.
    const BARE: u16 = 512;
    /// Some unfenced checkpoint writes no record: the unfenced runs' rows are locked first
    /// (`held`), as a record write would lock them.
    const LOOSE: u16 = 1024;
    /// Some checkpoint creates its run ([`Fence::Create`]): it is written only if the id is
    /// free, by an `INSERT … ON CONFLICT DO NOTHING` (`created`).
    const CREATE: u16 = 2048;
    /// The group is one checkpoint that [`single`] admits, written by [`single_sql`].
    const SINGLE: u16 = 4096;

    fn of(jobs: &[&Job]) -> Shape {
        let mut bits = 0;
        for job in jobs {
            match (job.fence, &job.row) {
                (Fence::Lease(_), Some(_)) => bits |= Self::FENCE,
                (Fence::Lease(_), None) => bits |= Self::FENCE | Self::BARE,
                (Fence::Create, Some(_)) => bits |= Self::CREATE,
                (_, Some(_)) => bits |= Self::OPEN,
                (_, None) => bits |= Self::OPEN | Self::LOOSE,
            }
            if job.row.is_some() {
                bits |= Self::RECORD;
            }
            if job.clear_inbox {
                bits |= Self::CLEAR;
            }
            if !job.consumed.is_empty() {
                bits |= Self::CONSUME;
            }
            if job.buffer.is_some() {
                bits |= Self::BUFFER;
            }
            if job.dedupe.is_some() {
                bits |= Self::DEDUPE;
            }
            if !job.trace.is_empty() {
                bits |= Self::TRACE;
            }
            if job.grant.is_some() {
                bits |= Self::GRANT;
            }
        }
        Shape(bits)
    }

    fn has(self, bit: u16) -> bool {
        self.0 & bit != 0
    }

    /// Whether the statement names the group's checkpoints as `j`, with a `token` column
    /// (`NULL` for an unfenced checkpoint).
    fn named(self) -> bool {
        self.has(Self::FENCE) || self.has(Self::LOOSE) || self.has(Self::CREATE)
    }
}

/// The run columns a record write sets, in `runs`' order.
const WRITTEN: [&str; 7] = [
    "workflow",
    "seq",
    "record",
    "purgeable",
    "ready",
    "timer_ms",
    "wait",
];

/// [`WRITTEN`] with their types.
const WRITTEN_TYPES: [(&str, &str); 7] = [
    ("workflow", "text"),
    ("seq", "bigint"),
    ("record", "bytea"),
    ("purgeable", "bool"),
    ("ready", "bool"),
    ("timer_ms", "bigint"),
    ("wait", "bytea"),
];

/// A whole group as one statement, so one transaction and one round trip whether or not its
/// checkpoints are fenced; see [`write_at_once`] for its parameters. One row of `ok` per
/// checkpoint; trace events and consumed inbox entries, of which a checkpoint may have
/// several, come as flat arrays keyed by run. With [`Shape::FENCE`] the statement answers the
/// runs whose fence failed: their checkpoints are left out, the others written.
///
/// Every part sees the statement's snapshot, and they all run "at once": a run's rows are
/// written by at most one checkpoint of the group (so no row is changed twice), and a
/// checkpoint whose outcome would depend on the order of its parts (a buffered signal beside
/// consumed or cleared ones) takes the statement-per-part path instead ([`at_once`]).
///
/// Fencing: a fenced checkpoint's record is written by an `UPDATE … WHERE lease_token =
/// token` (`fenced`, or `ok` when every checkpoint is fenced), and the runs it did not update
/// are the refused ones; every other part writes only the runs of `ok` (the unfenced
/// checkpoints and those the update answered), so a refused checkpoint writes nothing, and
/// the statement's parts commit or fail together.
/// Under READ COMMITTED an `UPDATE` that finds its row changed by a concurrent transaction
/// waits for it and re-checks its condition on the newest version, so a claim committed
/// after the statement's snapshot is seen; and the row stays locked until the commit, so a
/// claim cannot slip in before it. The rows are passed in run id order, the order in which
/// claims, the locked path and most plans lock them.
///
/// Deadlocks: a worker waits for a run's row only if its snapshot shows the run under its own
/// token (else the row fails the condition and is skipped unlocked). Two workers each holding
/// one row and waiting for the other's would then each have taken a row over after the
/// other's snapshot showed it still under the other's token, which claims committed before
/// each statement began make impossible. Between a worker's own statements on its two
/// connections (a renewal beside a commit of the same runs) the order of locking is the plan's;
/// should they ever deadlock, the server fails one of them after `deadlock_timeout`: a failed
/// renewal is retried next round, a failed group is written again by the locked path.
///
/// Serializing writers of one run: a record write locks the run's row (the update or the
/// upsert); the inbox and trace rows are numbered from the run's last one as the snapshot
/// shows it, so two processes appending to one run at once (a worker and a web front end)
/// may compute the same number, and then the second one's unique-index check fails: an error
/// from the server, so nothing was written, and the group is written again by the locked
/// path, which takes the row locks before it reads the last numbers.
fn group_sql(shape: Shape) -> String {
    let mut params = 0;
    let mut param = |ty: &str| {
        params += 1;
        format!("${params}::{ty}")
    };
    // The columns of one checkpoint, as `unnest` arguments and names.
    let mut columns = vec![(param("text[]"), "run_id")];
    if shape.named() {
        columns.push((param("bigint[]"), "token"));
    }
    if shape.has(Shape::CREATE) {
        columns.push((param("bool[]"), "fresh"));
    }
    if shape.has(Shape::RECORD) {
        for (name, ty) in WRITTEN_TYPES {
            columns.push((param(&format!("{ty}[]")), name));
        }
    }
    if shape.has(Shape::GRANT) {
        columns.push((param("text[]"), "grant_owner"));
        columns.push((param("bigint[]"), "grant_token"));
        columns.push((param("bigint[]"), "grant_expires"));
    }
    if shape.has(Shape::CLEAR) {
        columns.push((param("bool[]"), "clear"));
    }
    if shape.has(Shape::BUFFER) {
        columns.push((param("bytea[]"), "buffer"));
    }
    if shape.has(Shape::DEDUPE) {
        columns.push((param("text[]"), "dedupe_key"));
        columns.push((param("bigint[]"), "dedupe_at"));
    }
    let (args, names): (Vec<String>, Vec<&str>) = columns.into_iter().unzip();
    let source = format!(
        "SELECT * FROM unnest({}) AS j({})",
        args.join(", "),
        names.join(", ")
    );
    let mut parts = Vec::new();
    if shape.named() {
        parts.push(format!("j AS ({source})"));
    }
    if shape.has(Shape::FENCE) {
        // The fence is the update itself: a row is written only if it still carries the
        // checkpoint's token, and the update's own row lock (taken on the newest version of
        // the row, re-checked after waiting for a concurrent writer) keeps a claim from
        // slipping in before the commit. A fenced checkpoint without a record rewrites its
        // token, for that lock and check alone. What the update returns is the accepted
        // checkpoints, which the later parts write. The `ANY` repeats the join's condition
        // for the planner: a generic plan prepared while `runs` was small joins `unnest`'s
        // rows to a scan of the whole table and keeps doing so until an `ANALYZE`
        // invalidates it; a condition on the key itself lets it probe the index.
        let set = if !shape.has(Shape::RECORD) {
            "lease_token = r.lease_token".to_owned()
        } else if shape.has(Shape::BARE) {
            WRITTEN
                .iter()
                .map(|c| format!("{c} = CASE WHEN j.record IS NULL THEN r.{c} ELSE j.{c} END"))
                .collect::<Vec<_>>()
                .join(", ")
        } else {
            WRITTEN
                .iter()
                .map(|c| format!("{c} = j.{c}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let fenced = if shape.has(Shape::OPEN) || shape.has(Shape::CREATE) {
            "fenced"
        } else {
            "ok"
        };
        parts.push(format!(
            "{fenced} AS (UPDATE runs r SET {set} FROM j
                          WHERE j.token IS NOT NULL AND r.run_id = j.run_id
                            AND r.run_id = ANY($1::text[]) AND r.lease_token = j.token
                          RETURNING j.*)"
        ));
    }
    // A new run's row is inserted only if its id is free: a row created by a concurrent
    // statement is seen through the unique index (the insert waits for that statement's
    // transaction, then does nothing if it committed), not through the snapshot; the runs it
    // did not return are the refused creations, of which nothing else is written.
    let (lease_columns, lease_values) = if shape.has(Shape::GRANT) {
        (
            ", lease_owner, lease_token, lease_expires_ms",
            ", grant_owner, grant_token, grant_expires",
        )
    } else {
        ("", "")
    };
    if shape.has(Shape::CREATE) {
        let columns = WRITTEN.join(", ");
        parts.push(format!(
            "created AS (
                INSERT INTO runs (run_id, {columns}{lease_columns})
                SELECT run_id, {columns}{lease_values} FROM j WHERE j.fresh ORDER BY run_id
                ON CONFLICT (run_id) DO NOTHING RETURNING run_id)"
        ));
    }
    let not_fresh = if shape.has(Shape::CREATE) {
        " AND NOT j.fresh"
    } else {
        ""
    };
    if shape.has(Shape::LOOSE) {
        parts.push(format!(
            "held AS (SELECT r.run_id FROM runs r
                      WHERE r.run_id IN (SELECT j.run_id FROM j WHERE j.token IS NULL{not_fresh})
                      ORDER BY r.run_id FOR UPDATE)"
        ));
    }
    if !shape.named() {
        parts.push(format!("ok AS ({source})"));
    } else if shape.has(Shape::OPEN) || shape.has(Shape::CREATE) {
        // The checkpoints written: the fenced ones the update accepted, the unfenced ones, the
        // creations the insert made.
        let mut accepted = Vec::new();
        if shape.has(Shape::FENCE) {
            accepted.push("SELECT * FROM fenced".to_owned());
        }
        if shape.has(Shape::LOOSE) {
            // The left join makes `ok` wait for the locks without refusing a missing run.
            accepted.push(format!(
                "SELECT j.* FROM j LEFT JOIN held h ON h.run_id = j.run_id
                 WHERE j.token IS NULL{not_fresh}"
            ));
        } else if shape.has(Shape::OPEN) {
            accepted.push(format!("SELECT * FROM j WHERE j.token IS NULL{not_fresh}"));
        }
        if shape.has(Shape::CREATE) {
            accepted
                .push("SELECT * FROM j WHERE j.run_id IN (SELECT run_id FROM created)".to_owned());
        }
        parts.push(format!("ok AS ({})", accepted.join(" UNION ALL ")));
    }
    // The unfenced record writes (the fenced ones were the update's).
    if shape.has(Shape::RECORD) && shape.has(Shape::OPEN) {
        let unfenced = match (shape.named(), shape.has(Shape::CREATE)) {
            (true, true) => "FROM ok WHERE record IS NOT NULL AND token IS NULL AND NOT fresh",
            (true, false) => "FROM ok WHERE record IS NOT NULL AND token IS NULL",
            (false, _) => "FROM ok WHERE record IS NOT NULL",
        };
        let set = WRITTEN
            .iter()
            .map(|c| format!("{c} = EXCLUDED.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let columns = WRITTEN.join(", ");
        // A granted lease is written only with a new row: a run that exists keeps its lease.
        parts.push(format!(
            "upserted AS (
                INSERT INTO runs (run_id, {columns}{lease_columns})
                SELECT run_id, {columns}{lease_values} {unfenced}
                ON CONFLICT (run_id) DO UPDATE SET {set})"
        ));
    }
    if shape.has(Shape::CLEAR) {
        parts.push(
            "cleared AS (DELETE FROM inbox i USING ok WHERE ok.clear AND i.run_id = ok.run_id)"
                .to_owned(),
        );
    }
    if shape.has(Shape::CONSUME) {
        parts.push(format!(
            "consumed AS (DELETE FROM inbox i
                          USING unnest({}, {}) AS c(run_id, idx), ok
                          WHERE ok.run_id = c.run_id AND i.run_id = c.run_id AND i.idx = c.idx)",
            param("text[]"),
            param("bigint[]")
        ));
    }
    if shape.has(Shape::BUFFER) {
        parts.push(
            "buffered AS (
                INSERT INTO inbox (run_id, idx, entry)
                SELECT ok.run_id,
                       COALESCE((SELECT MAX(x.idx) + 1 FROM inbox x WHERE x.run_id = ok.run_id),
                                0),
                       ok.buffer
                FROM ok WHERE ok.buffer IS NOT NULL)"
                .to_owned(),
        );
    }
    if shape.has(Shape::DEDUPE) {
        parts.push(
            "deduped AS (
                INSERT INTO dedupe (run_id, key, at_ms)
                SELECT run_id, dedupe_key, dedupe_at FROM ok WHERE dedupe_key IS NOT NULL
                ON CONFLICT (run_id, key) DO UPDATE SET at_ms = EXCLUDED.at_ms)"
                .to_owned(),
        );
    }
    if shape.has(Shape::TRACE) {
        // `pos` numbers a checkpoint's events from 0; the subquery reads the run's last event
        // as the snapshot shows it, so every event of one run adds its `pos` to the same base.
        let filter = if shape.named() {
            "WHERE t.run_id IN (SELECT ok.run_id FROM ok)"
        } else {
            ""
        };
        parts.push(format!(
            "traced AS (
                INSERT INTO trace (run_id, idx, event)
                SELECT t.run_id,
                       COALESCE((SELECT MAX(x.idx) + 1 FROM trace x WHERE x.run_id = t.run_id),
                                0) + t.pos,
                       t.event
                FROM unnest({}, {}, {}) AS t(run_id, pos, event) {filter})",
            param("text[]"),
            param("bigint[]"),
            param("bytea[]")
        ));
    }
    let answer = match (shape.has(Shape::FENCE), shape.has(Shape::CREATE)) {
        (true, true) => {
            "SELECT j.run_id FROM j
             WHERE (j.token IS NOT NULL OR j.fresh) AND j.run_id NOT IN (SELECT ok.run_id FROM ok)"
        }
        (true, false) => {
            "SELECT j.run_id FROM j
             WHERE j.token IS NOT NULL AND j.run_id NOT IN (SELECT ok.run_id FROM ok)"
        }
        (false, true) => {
            "SELECT j.run_id FROM j WHERE j.fresh AND j.run_id NOT IN (SELECT ok.run_id FROM ok)"
        }
        (false, false) => "SELECT run_id FROM ok WHERE false",
    };
    format!("WITH {} {answer}", parts.join(",\n"))
}

/// Whether a group of one checkpoint can be written by [`single_sql`]'s statement: a record
/// write under a lease or in an exclusive store, creating and granting nothing. Every step of
/// a run driven alone commits so.
fn single(job: &Job) -> bool {
    matches!(job.fence, Fence::Lease(_) | Fence::Exclusive)
        && job.row.is_some()
        && job.grant.is_none()
        && !job.purge
        && job.others.is_empty()
}

/// [`group_sql`] for a group of one checkpoint that [`single`] admits, with each column a
/// scalar parameter: no arrays to unpack and no rows to join, so the server starts and ends
/// fewer plan nodes (`bench pg --statements`, W1 on one exclusive engine: 52-63 µs of
/// execution per step against 76-78 µs for the group statement; the shared W1 went from
/// 1.42-1.55× the floor `INSERT` to 1.16-1.44×: BENCHMARKS.md, round 6).
///
/// Parameters: the run id, the token (fenced), the record's columns ([`WRITTEN`]), then, as
/// the shape has them, the consumed indexes, the buffered entry, the dedupe key and time, the
/// trace events.
///
/// `ok` is the run's row written: by an `UPDATE` under the token (the fence, as in
/// [`group_sql`]; no row if it fails) or by an upsert (no fence). The other parts write only
/// if `ok` has the row, and the statement answers it: no row means the checkpoint was refused.
/// As in [`group_sql`], inbox and trace rows are numbered from the run's last ones as the
/// statement's snapshot shows them.
fn single_sql(shape: Shape) -> String {
    let mut params = 1;
    let mut param = |ty: &str| {
        params += 1;
        format!("${params}::{ty}")
    };
    let fenced = shape.has(Shape::FENCE);
    let token = fenced.then(|| param("bigint"));
    let values: Vec<String> = WRITTEN_TYPES.iter().map(|(_, ty)| param(ty)).collect();
    let mut parts = Vec::new();
    if let Some(token) = token {
        let set = WRITTEN
            .iter()
            .zip(&values)
            .map(|(c, v)| format!("{c} = {v}"))
            .collect::<Vec<_>>()
            .join(", ");
        parts.push(format!(
            "ok AS (UPDATE runs SET {set} WHERE run_id = $1::text AND lease_token = {token}
                    RETURNING run_id)"
        ));
    } else {
        let set = WRITTEN
            .iter()
            .map(|c| format!("{c} = EXCLUDED.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        parts.push(format!(
            "ok AS (INSERT INTO runs (run_id, {}) VALUES ($1::text, {})
                    ON CONFLICT (run_id) DO UPDATE SET {set} RETURNING run_id)",
            WRITTEN.join(", "),
            values.join(", ")
        ));
    }
    if shape.has(Shape::CLEAR) {
        parts.push(
            "cleared AS (DELETE FROM inbox i USING ok WHERE i.run_id = ok.run_id)".to_owned(),
        );
    }
    if shape.has(Shape::CONSUME) {
        parts.push(format!(
            "consumed AS (DELETE FROM inbox i USING ok
                          WHERE i.run_id = ok.run_id AND i.idx = ANY({}))",
            param("bigint[]")
        ));
    }
    // The number after the run's last row of `table`, as the statement's snapshot shows it.
    let next = |table: &str| {
        format!("COALESCE((SELECT MAX(x.idx) + 1 FROM {table} x WHERE x.run_id = $1::text), 0)")
    };
    if shape.has(Shape::BUFFER) {
        parts.push(format!(
            "buffered AS (
                INSERT INTO inbox (run_id, idx, entry) SELECT ok.run_id, {}, {} FROM ok)",
            next("inbox"),
            param("bytea")
        ));
    }
    if shape.has(Shape::DEDUPE) {
        parts.push(format!(
            "deduped AS (
                INSERT INTO dedupe (run_id, key, at_ms) SELECT ok.run_id, {}, {} FROM ok
                ON CONFLICT (run_id, key) DO UPDATE SET at_ms = EXCLUDED.at_ms)",
            param("text"),
            param("bigint")
        ));
    }
    if shape.has(Shape::TRACE) {
        parts.push(format!(
            "traced AS (
                INSERT INTO trace (run_id, idx, event)
                SELECT ok.run_id, {} + t.ord - 1, t.event
                FROM ok, unnest({}) WITH ORDINALITY AS t(event, ord))",
            next("trace"),
            param("bytea[]")
        ));
    }
    format!("WITH {} SELECT run_id FROM ok", parts.join(",\n"))
}

/// The write connection's prepared statements.
pub(crate) struct WriteStatements {
    /// The group statements prepared so far on this connection, by shape.
    groups: std::sync::Mutex<HashMap<Shape, Statement>>,
    serialize: Statement,
    lock_rows: Statement,
    fences: Statement,
    purgeable: Statement,
    purge: Statement,
    upsert: Statement,
    upsert_granted: Statement,
    insert: Statement,
    insert_granted: Statement,
    clear_inbox: Statement,
    consume: Statement,
    buffer: Statement,
    dedupe: Statement,
    trace: Statement,
}

impl WriteStatements {
    /// The statement that writes groups of this shape, prepared on first use.
    async fn group(
        &self,
        client: &Client,
        shape: Shape,
    ) -> Result<Statement, tokio_postgres::Error> {
        let cached = self
            .groups
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&shape)
            .cloned();
        if let Some(statement) = cached {
            return Ok(statement);
        }
        let sql = match shape.has(Shape::SINGLE) {
            true => single_sql(shape),
            false => group_sql(shape),
        };
        let statement = client.prepare(&sql).await?;
        self.groups
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(shape, statement.clone());
        Ok(statement)
    }

    pub(crate) async fn prepare(client: &Client) -> Result<Self, tokio_postgres::Error> {
        Ok(WriteStatements {
            groups: std::sync::Mutex::default(),
            // A transaction-scoped lock per run written, taken in run id order: inbox and trace
            // rows are numbered from the run's last one, so two processes writing one run (a
            // worker and a web front end buffering a signal) must take turns. A hash
            // collision only makes two runs take turns too.
            serialize: client
                .prepare(
                    "SELECT pg_advisory_xact_lock(hashtextextended(id, 0))
                     FROM (SELECT DISTINCT id FROM unnest($1::text[]) AS id ORDER BY id) ids",
                )
                .await?,
            // Waits for a group statement ([`group_sql`]) writing one of these runs, whose
            // inbox and trace rows the later statements then see; sorted, as it locks them.
            lock_rows: client
                .prepare(
                    "SELECT 1 FROM runs WHERE run_id = ANY($1::text[]) ORDER BY run_id
                     FOR UPDATE",
                )
                .await?,
            // Sorted, so that two committers lock the rows they share in the same order.
            fences: client
                .prepare(
                    "SELECT run_id, lease_token FROM runs WHERE run_id = ANY($1::text[])
                     ORDER BY run_id FOR UPDATE",
                )
                .await?,
            purgeable: client
                .prepare("SELECT purgeable FROM runs WHERE run_id = $1 FOR UPDATE")
                .await?,
            purge: client
                .prepare(
                    "WITH i AS (DELETE FROM inbox WHERE run_id = $1),
                          t AS (DELETE FROM trace WHERE run_id = $1),
                          d AS (DELETE FROM dedupe WHERE run_id = $1)
                     DELETE FROM runs WHERE run_id = $1",
                )
                .await?,
            upsert: client
                .prepare(
                    "INSERT INTO runs (run_id, workflow, seq, record, purgeable, ready, timer_ms,
                                       wait)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                     ON CONFLICT (run_id) DO UPDATE SET
                         workflow = EXCLUDED.workflow, seq = EXCLUDED.seq,
                         record = EXCLUDED.record, purgeable = EXCLUDED.purgeable,
                         ready = EXCLUDED.ready, timer_ms = EXCLUDED.timer_ms,
                         wait = EXCLUDED.wait",
                )
                .await?,
            // A new run with its creator's lease; a run that exists keeps its own.
            upsert_granted: client
                .prepare(
                    "INSERT INTO runs (run_id, workflow, seq, record, purgeable, ready, timer_ms,
                                       wait, lease_owner, lease_token, lease_expires_ms)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
                     ON CONFLICT (run_id) DO UPDATE SET
                         workflow = EXCLUDED.workflow, seq = EXCLUDED.seq,
                         record = EXCLUDED.record, purgeable = EXCLUDED.purgeable,
                         ready = EXCLUDED.ready, timer_ms = EXCLUDED.timer_ms,
                         wait = EXCLUDED.wait",
                )
                .await?,
            insert: client
                .prepare(
                    "INSERT INTO runs (run_id, workflow, seq, record, purgeable, ready, timer_ms,
                                       wait)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .await?,
            insert_granted: client
                .prepare(
                    "INSERT INTO runs (run_id, workflow, seq, record, purgeable, ready, timer_ms,
                                       wait, lease_owner, lease_token, lease_expires_ms)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                )
                .await?,
            clear_inbox: client
                .prepare("DELETE FROM inbox WHERE run_id = $1")
                .await?,
            consume: client
                .prepare("DELETE FROM inbox WHERE run_id = $1 AND idx = ANY($2::bigint[])")
                .await?,
            buffer: client
                .prepare(
                    "INSERT INTO inbox (run_id, idx, entry)
                     SELECT $1, COALESCE(MAX(idx) + 1, 0), $2 FROM inbox WHERE run_id = $1",
                )
                .await?,
            dedupe: client
                .prepare(
                    "INSERT INTO dedupe (run_id, key, at_ms) VALUES ($1, $2, $3)
                     ON CONFLICT (run_id, key) DO UPDATE SET at_ms = EXCLUDED.at_ms",
                )
                .await?,
            trace: client
                .prepare(
                    "INSERT INTO trace (run_id, idx, event)
                     SELECT $1, n.next + t.ord - 1, t.event
                     FROM (SELECT COALESCE(MAX(idx) + 1, 0) AS next FROM trace
                           WHERE run_id = $1) n,
                          unnest($2::bytea[]) WITH ORDINALITY AS t(event, ord)",
                )
                .await?,
        })
    }
}

/// What a committer's channel carries.
// Every commit is a `One`; boxing it to shrink the rare `InParts` would cost an allocation per
// commit.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Queued {
    /// One checkpoint to commit.
    One(Job, Acknowledger),
    /// A group that a committer on a runtime could not write as one statement, handed to the
    /// store thread's committer to be written in parts there as one group; `done` answers
    /// once each of its checkpoints is acknowledged.
    InParts(Vec<(Job, Acknowledger)>, oneshot::Sender<()>),
}

/// Checkpoints to commit as one group, with who waits for the whole group (a handed-over one).
type Group = (Vec<(Job, Acknowledger)>, Option<oneshot::Sender<()>>);

/// Where a committer writes the groups that take more than one round trip to the server.
pub(crate) enum Parts {
    /// On its own connection: the store's thread.
    Here,
    /// Handed to the committer on the store's thread, and awaited before the next group. A
    /// transaction of several round trips holds its row locks while the client works out and
    /// sends the next statement; on a runtime whose threads may all be blocked in the store's
    /// synchronous calls (a claim waiting for one of those very rows, on the read
    /// connection), nothing would send it. A group written as one statement commits on the
    /// server by itself, so the runtime's committer writes only those.
    Thread(mpsc::UnboundedSender<Queued>),
}

impl Parts {
    /// Commits `jobs` on the store's thread; returns once each is acknowledged (or, should
    /// that thread be gone, answered `Closed` by its dropped acknowledger).
    async fn hand_over(&self, jobs: Vec<(Job, Acknowledger)>) {
        if let Parts::Thread(tx) = self {
            let (done, answered) = oneshot::channel();
            if tx.send(Queued::InParts(jobs, done)).is_ok() {
                let _ = answered.await;
            }
        }
    }
}

/// Commits groups until the channel closes, then returns once what was queued is committed.
///
/// The write connection is opened by the first group (and again by the first group after the
/// server dropped it), on the runtime this runs on: its I/O is then polled by the same threads
/// as the callers that queue the commits and await their acknowledgements, so a commit costs
/// the round trip and the wake-up of the thread that waits for the answer, no hand-off to a
/// thread of the store's own (see [`crate::PgStore`]'s `commit`).
pub(crate) async fn run(
    reconnect: Arc<Reconnect>,
    mut rx: mpsc::UnboundedReceiver<Queued>,
    commits: Arc<AtomicU64>,
    parts: Parts,
) {
    let mut writer: Option<(Client, WriteStatements)> = None;
    let mut queued = Vec::new();
    // `recv_many` returns everything queued, up to the limit, as soon as one is there: no
    // fixed delay for a lone checkpoint, one transaction for many under load.
    while rx.recv_many(&mut queued, 4096).await > 0 {
        // In order: the checkpoints queued before a handed-over group are committed first.
        let mut groups: Vec<Group> = vec![(Vec::new(), None)];
        for item in queued.drain(..) {
            match item {
                Queued::One(job, ack) => match groups.last_mut() {
                    Some((group, None)) => group.push((job, ack)),
                    _ => groups.push((vec![(job, ack)], None)),
                },
                Queued::InParts(jobs, done) => groups.push((jobs, Some(done))),
            }
        }
        for (jobs, done) in groups {
            if jobs.is_empty() {
                continue;
            }
            if writer.as_ref().is_none_or(|(client, _)| client.is_closed()) {
                writer = None;
                match reconnect.writer().await {
                    Ok(fresh) => writer = Some(fresh),
                    Err(e) => {
                        for (_, ack) in jobs {
                            ack.acknowledge(Err(e.clone()));
                        }
                        continue;
                    }
                }
            }
            if let Some((client, statements)) = writer.as_mut() {
                commit_group(client, statements, jobs, &commits, &parts).await;
            }
            if let Some(done) = done {
                let _ = done.send(());
            }
        }
    }
}

async fn commit_group(
    client: &mut Client,
    st: &WriteStatements,
    jobs: Vec<(Job, Acknowledger)>,
    commits: &AtomicU64,
    parts: &Parts,
) {
    let here = matches!(parts, Parts::Here);
    let group: Vec<&Job> = jobs.iter().map(|(job, _)| job).collect();
    let Some(written) = write(client, st, &group, here).await else {
        parts.hand_over(jobs).await;
        return;
    };
    match written {
        Ok(accepted) => {
            if accepted.iter().any(|a| *a) {
                commits.fetch_add(1, Ordering::Relaxed);
            }
            for ((job, ack), accepted) in jobs.into_iter().zip(accepted) {
                ack.acknowledge(if accepted {
                    Ok(())
                } else {
                    Err(StoreError::NotOwner { run_id: job.run_id })
                });
            }
        }
        Err(e) if jobs.len() == 1 => {
            let (_, ack) = jobs.into_iter().next().expect("one job");
            ack.acknowledge(Err(e));
        }
        Err(_) => {
            // One bad checkpoint (a purge of an open run, a value the server refuses) must not
            // fail the others it happened to be grouped with: retry each on its own.
            for (job, ack) in jobs {
                let Some(written) = write(client, st, &[&job], here).await else {
                    parts.hand_over(vec![(job, ack)]).await;
                    continue;
                };
                let result = match written {
                    Ok(accepted) if accepted[0] => {
                        commits.fetch_add(1, Ordering::Relaxed);
                        Ok(())
                    }
                    Ok(_) => Err(StoreError::NotOwner { run_id: job.run_id }),
                    Err(e) => Err(e),
                };
                ack.acknowledge(result);
            }
        }
    }
}

/// Writes the group in one transaction, leaving out every checkpoint whose fence fails;
/// returns which were written. Nothing is written when it fails.
///
/// Most groups are one statement ([`write_at_once`]): one round trip, fenced or not. The rest
/// (purges, child runs, a run written twice in the group, a buffered signal beside consumed
/// ones), and a group the server refused as one statement, take the statement-per-part paths.
///
/// `None` if the group must be written in parts and `here` is false (see [`Parts`]): then
/// nothing was written.
async fn write(
    client: &mut Client,
    st: &WriteStatements,
    jobs: &[&Job],
    here: bool,
) -> Option<Result<Vec<bool>, StoreError>> {
    // Purges and checkpoints that create other runs are rare: they take the plain path.
    if jobs.iter().any(|job| job.purge || !job.others.is_empty()) {
        return match here {
            true => Some(write_in_parts(client, st, jobs, true).await),
            false => None,
        };
    }
    if at_once(jobs) {
        match write_at_once(client, st, jobs).await {
            Ok(accepted) => return Some(Ok(accepted)),
            // The server answered with an error and kept the session, so the statement's
            // transaction was rolled back and the group can be written again; most likely two
            // processes appended to one run's inbox or trace at once (see `group_sql`), which
            // the locked path serializes.
            Err(e) if refused_whole(client, &e) => {
                tracing::debug!(error = %e, "a group refused as one statement: in parts");
            }
            // The connection failed (a FATAL error ends the session too): the outcome is
            // unknown, and a second write could append the same trace events twice.
            Err(e) => return Some(Err(backend("committing a checkpoint", e))),
        }
    }
    match here {
        true => Some(write_in_parts(client, st, jobs, false).await),
        false => None,
    }
}

/// [`write_in_turns`] or [`write_pipelined`], again once if a creation collided with a run
/// inserted by a concurrent transaction that committed after the fence check's snapshot: the
/// second time the check sees that run and refuses the creation alone.
async fn write_in_parts(
    client: &mut Client,
    st: &WriteStatements,
    jobs: &[&Job],
    in_turns: bool,
) -> Result<Vec<bool>, StoreError> {
    let creates = jobs.iter().any(|job| {
        std::iter::once(*job)
            .chain(&job.others)
            .any(|job| job.fence == Fence::Create)
    });
    let mut again = creates;
    loop {
        let written = if in_turns {
            write_in_turns(client, st, jobs).await
        } else {
            write_pipelined(client, st, jobs).await
        };
        match written {
            Err(e) if again && unique_violation(&e) && !client.is_closed() => {
                tracing::debug!(error = %e, "a creation collided with a concurrent one: again");
                again = false;
            }
            written => return written,
        }
    }
}

/// Whether the server refused a write for a duplicate key.
fn unique_violation(e: &StoreError) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(e) = source {
        if let Some(pg) = e.downcast_ref::<tokio_postgres::Error>() {
            return pg.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION);
        }
        source = e.source();
    }
    false
}

/// Whether the server refused a statement and rolled its transaction back, keeping the
/// connection.
fn refused_whole(client: &Client, e: &tokio_postgres::Error) -> bool {
    let error = e
        .as_db_error()
        .is_some_and(|db| db.parsed_severity() == Some(tokio_postgres::error::Severity::Error));
    error && !client.is_closed()
}

/// Whether [`group_sql`] writes the group as the checkpoints would be written one after another.
fn at_once(jobs: &[&Job]) -> bool {
    let mut runs: Vec<&str> = jobs.iter().map(|job| job.run_id.as_str()).collect();
    runs.sort_unstable();
    let distinct = runs.windows(2).all(|w| w[0] != w[1]);
    // The new entry's index counts the entries that are being removed in the same statement
    // as still there: harmless, but unlike the embedded store's numbering.
    // A creation without a record (which the engine never writes) is checked by the
    // statement-per-part paths.
    distinct
        && jobs.iter().all(|job| {
            (job.buffer.is_none() || (!job.clear_inbox && job.consumed.is_empty()))
                && (job.fence != Fence::Create || job.row.is_some())
        })
}

/// The group as one statement ([`group_sql`]), which commits on its own (no `BEGIN`): the
/// round trip and the WAL flush of the floor's one-row `INSERT`, with more rows.
async fn write_at_once(
    client: &Client,
    st: &WriteStatements,
    jobs: &[&Job],
) -> Result<Vec<bool>, tokio_postgres::Error> {
    let shape = Shape::of(jobs);
    if let [job] = jobs
        && single(job)
    {
        return write_single(client, st, job, Shape(shape.0 | Shape::SINGLE)).await;
    }
    let statement = st.group(client, shape).await?;
    let n = jobs.len();
    // In run id order: the order in which the rows are most likely locked (see `group_sql`).
    let mut sorted = jobs.to_vec();
    sorted.sort_unstable_by(|a, b| a.run_id.cmp(&b.run_id));
    let run_ids: Vec<&str> = sorted.iter().map(|job| job.run_id.as_str()).collect();
    let tokens: Vec<Option<i64>> = sorted
        .iter()
        .map(|job| match job.fence {
            Fence::Lease(token) => Some(to_db(token)),
            _ => None,
        })
        .collect();
    let fresh: Vec<bool> = sorted
        .iter()
        .map(|job| job.fence == Fence::Create)
        .collect();
    let rows: Vec<Option<&RunRow>> = sorted.iter().map(|job| job.row.as_ref()).collect();
    let workflows: Vec<Option<&str>> = rows
        .iter()
        .map(|r| r.map(|r| r.workflow.as_str()))
        .collect();
    let seqs: Vec<Option<i64>> = rows.iter().map(|r| r.map(|r| r.seq)).collect();
    let records: Vec<Option<&[u8]>> = rows
        .iter()
        .map(|r| r.map(|r| r.record.as_slice()))
        .collect();
    let purgeables: Vec<Option<bool>> = rows.iter().map(|r| r.map(|r| r.purgeable)).collect();
    let readies: Vec<Option<bool>> = rows.iter().map(|r| r.map(|r| r.ready)).collect();
    let timers: Vec<Option<i64>> = rows.iter().map(|r| r.and_then(|r| r.timer_ms)).collect();
    let waits: Vec<Option<&[u8]>> = rows
        .iter()
        .map(|r| r.and_then(|r| r.wait.as_deref()))
        .collect();
    let grant_owners: Vec<Option<&str>> = sorted
        .iter()
        .map(|job| job.grant.as_ref().map(|(owner, _, _)| owner.as_str()))
        .collect();
    let grant_tokens: Vec<Option<i64>> = sorted
        .iter()
        .map(|job| job.grant.as_ref().map(|(_, token, _)| *token))
        .collect();
    let grant_expiries: Vec<Option<i64>> = sorted
        .iter()
        .map(|job| job.grant.as_ref().map(|(_, _, expires)| *expires))
        .collect();
    let clears: Vec<bool> = sorted.iter().map(|job| job.clear_inbox).collect();
    let buffers: Vec<Option<&[u8]>> = sorted.iter().map(|job| job.buffer.as_deref()).collect();
    let dedupe_keys: Vec<Option<&str>> = sorted
        .iter()
        .map(|job| job.dedupe.as_ref().map(|(key, _)| key.as_str()))
        .collect();
    let dedupe_ats: Vec<Option<i64>> = sorted
        .iter()
        .map(|job| job.dedupe.as_ref().map(|(_, at)| *at))
        .collect();
    let (mut consumed_runs, mut consumed_idx) = (Vec::new(), Vec::new());
    let (mut trace_runs, mut trace_pos, mut trace_events) = (Vec::new(), Vec::new(), Vec::new());
    for job in &sorted {
        for idx in &job.consumed {
            consumed_runs.push(job.run_id.as_str());
            consumed_idx.push(*idx);
        }
        for (pos, event) in (0_i64..).zip(&job.trace) {
            trace_runs.push(job.run_id.as_str());
            trace_pos.push(pos);
            trace_events.push(event.as_slice());
        }
    }
    // In the order of `group_sql`'s parameters.
    let mut params: Vec<&(dyn ToSql + Sync)> = Vec::with_capacity(20);
    params.push(&run_ids);
    if shape.named() {
        params.push(&tokens);
    }
    if shape.has(Shape::CREATE) {
        params.push(&fresh);
    }
    if shape.has(Shape::RECORD) {
        params.extend([
            &workflows as &(dyn ToSql + Sync),
            &seqs,
            &records,
            &purgeables,
            &readies,
            &timers,
            &waits,
        ]);
    }
    if shape.has(Shape::GRANT) {
        params.extend([
            &grant_owners as &(dyn ToSql + Sync),
            &grant_tokens,
            &grant_expiries,
        ]);
    }
    if shape.has(Shape::CLEAR) {
        params.push(&clears);
    }
    if shape.has(Shape::BUFFER) {
        params.push(&buffers);
    }
    if shape.has(Shape::DEDUPE) {
        params.extend([&dedupe_keys as &(dyn ToSql + Sync), &dedupe_ats]);
    }
    if shape.has(Shape::CONSUME) {
        params.extend([&consumed_runs as &(dyn ToSql + Sync), &consumed_idx]);
    }
    if shape.has(Shape::TRACE) {
        params.extend([
            &trace_runs as &(dyn ToSql + Sync),
            &trace_pos,
            &trace_events,
        ]);
    }
    let refused = client.query(&statement, &params).await?;
    let refused: Vec<String> = refused.iter().map(|row| row.get(0)).collect();
    debug_assert!(refused.len() <= n);
    Ok(jobs
        .iter()
        .map(|job| !refused.contains(&job.run_id))
        .collect())
}

/// [`write_at_once`] for a group of one checkpoint that [`single`] admits.
async fn write_single(
    client: &Client,
    st: &WriteStatements,
    job: &Job,
    shape: Shape,
) -> Result<Vec<bool>, tokio_postgres::Error> {
    let statement = st.group(client, shape).await?;
    let token = match job.fence {
        Fence::Lease(token) => Some(to_db(token)),
        _ => None,
    };
    let mut params: Vec<&(dyn ToSql + Sync)> = Vec::with_capacity(16);
    params.push(&job.run_id);
    if let Some(token) = &token {
        params.push(token);
    }
    if let Some(row) = &job.row {
        params.extend(row.params());
    }
    if shape.has(Shape::CONSUME) {
        params.push(&job.consumed);
    }
    if let Some(entry) = &job.buffer {
        params.push(entry);
    }
    if let Some((key, at_ms)) = &job.dedupe {
        params.extend([key as &(dyn ToSql + Sync), at_ms]);
    }
    if shape.has(Shape::TRACE) {
        params.push(&job.trace);
    }
    let written = client.query(&statement, &params).await?;
    Ok(vec![!written.is_empty()])
}

/// [`write`] as a pipelined transaction of a statement per part.
///
/// The statements are pipelined: one round trip to the server for a group without leases
/// (`BEGIN`, the run locks, every write and `COMMIT` sent at once), two with leases (the fence
/// check must answer before the writes are chosen). A failed statement aborts the transaction,
/// and the `COMMIT` sent behind it then rolls it back.
async fn write_pipelined(
    client: &mut Client,
    st: &WriteStatements,
    jobs: &[&Job],
) -> Result<Vec<bool>, StoreError> {
    let op = "committing a checkpoint";
    let client: &Client = client;
    let written: Vec<&str> = jobs.iter().map(|job| job.run_id.as_str()).collect();
    let mut leased: Vec<&str> = jobs
        .iter()
        .filter(|job| matches!(job.fence, Fence::Lease(_) | Fence::Create))
        .map(|job| job.run_id.as_str())
        .collect();
    leased.sort_unstable();
    leased.dedup();
    let mut first: Vec<Pending<'_>> = vec![
        Box::pin(async move { client.batch_execute("BEGIN").await.map(|()| Vec::new()) }),
        Box::pin(async {
            client
                .execute(&st.serialize, &[&written])
                .await
                .map(|_| Vec::new())
        }),
        Box::pin(async {
            client
                .execute(&st.lock_rows, &[&written])
                .await
                .map(|_| Vec::new())
        }),
    ];
    let accepted: Vec<bool> = if leased.is_empty() {
        vec![true; jobs.len()]
    } else {
        first.push(Box::pin(async {
            client.query(&st.fences, &[&leased]).await
        }));
        let rows = match pipeline(first).await {
            Ok(mut answers) => answers.pop().unwrap_or_default(),
            Err(e) => {
                // The transaction is open (and aborted): end it before the next group.
                let _ = client.batch_execute("ROLLBACK").await;
                return Err(backend(op, e));
            }
        };
        first = Vec::new();
        let current: HashMap<String, Option<i64>> =
            rows.iter().map(|row| (row.get(0), row.get(1))).collect();
        let mut check = Fences::new(&current);
        jobs.iter().map(|job| check.admits(job)).collect()
    };
    let mut writes = first;
    for (job, ok) in jobs.iter().zip(&accepted) {
        if *ok {
            statements(client, st, job, &mut writes);
        }
    }
    writes.push(Box::pin(async move {
        client.batch_execute("COMMIT").await.map(|()| Vec::new())
    }));
    pipeline(writes).await.map_err(|e| backend(op, e))?;
    Ok(accepted)
}

/// A statement in flight, answering with its rows (none for a write).
type Pending<'a> =
    Pin<Box<dyn Future<Output = Result<Vec<Row>, tokio_postgres::Error>> + Send + 'a>>;

/// Awaits every statement, polling them in order each time: tokio-postgres sends a request at
/// its future's first poll, so the server receives them in this order, back to back. Answers
/// the first error (the later ones only say that the transaction is aborted), or every answer.
async fn pipeline(mut pending: Vec<Pending<'_>>) -> Result<Vec<Vec<Row>>, tokio_postgres::Error> {
    let mut answers: Vec<Option<Result<Vec<Row>, tokio_postgres::Error>>> =
        pending.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut waiting = false;
        for (future, answer) in pending.iter_mut().zip(answers.iter_mut()) {
            if answer.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(result) => *answer = Some(result),
                    Poll::Pending => waiting = true,
                }
            }
        }
        if waiting {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    answers.into_iter().flatten().collect()
}

/// The statements of one checkpoint, in the order [`apply`] runs them.
fn statements<'a>(
    client: &'a Client,
    st: &'a WriteStatements,
    job: &'a Job,
    out: &mut Vec<Pending<'a>>,
) {
    let run_id = &job.run_id;
    if job.clear_inbox {
        out.push(Box::pin(async move {
            client
                .execute(&st.clear_inbox, &[run_id])
                .await
                .map(|_| Vec::new())
        }));
    }
    if let Some((statement, params)) = job.upsert(st) {
        out.push(Box::pin(async move {
            client.execute(statement, &params).await.map(|_| Vec::new())
        }));
    }
    if !job.consumed.is_empty() {
        out.push(Box::pin(async move {
            client
                .execute(&st.consume, &[run_id, &job.consumed])
                .await
                .map(|_| Vec::new())
        }));
    }
    if let Some(entry) = &job.buffer {
        out.push(Box::pin(async move {
            client
                .execute(&st.buffer, &[run_id, entry])
                .await
                .map(|_| Vec::new())
        }));
    }
    if let Some((key, at_ms)) = &job.dedupe {
        out.push(Box::pin(async move {
            client
                .execute(&st.dedupe, &[run_id, key, at_ms])
                .await
                .map(|_| Vec::new())
        }));
    }
    if !job.trace.is_empty() {
        out.push(Box::pin(async move {
            client
                .execute(&st.trace, &[run_id, &job.trace])
                .await
                .map(|_| Vec::new())
        }));
    }
}

/// [`write`] one statement at a time, for a group with a purge (it must read the run before it
/// decides, and a refused purge fails the transaction); purges are rare.
async fn write_in_turns(
    client: &mut Client,
    st: &WriteStatements,
    jobs: &[&Job],
) -> Result<Vec<bool>, StoreError> {
    let op = "committing a checkpoint";
    let txn = client.transaction().await.map_err(|e| backend(op, e))?;
    let every = || {
        jobs.iter()
            .flat_map(|job| std::iter::once(*job).chain(&job.others))
    };
    let written: Vec<&str> = every().map(|job| job.run_id.as_str()).collect();
    txn.execute(&st.serialize, &[&written])
        .await
        .map_err(|e| backend(op, e))?;
    txn.execute(&st.lock_rows, &[&written])
        .await
        .map_err(|e| backend(op, e))?;
    let mut leased: Vec<&str> = every()
        .filter(|job| matches!(job.fence, Fence::Lease(_) | Fence::Create))
        .map(|job| job.run_id.as_str())
        .collect();
    let mut current: HashMap<String, Option<i64>> = HashMap::new();
    if !leased.is_empty() {
        leased.sort_unstable();
        leased.dedup();
        // The rows stay locked until the commit, so no claim can take a run over between
        // this check and the write.
        for row in txn
            .query(&st.fences, &[&leased])
            .await
            .map_err(|e| backend(op, e))?
        {
            current.insert(row.get(0), row.get(1));
        }
    }
    let mut accepted = Vec::with_capacity(jobs.len());
    let mut check = Fences::new(&current);
    for job in jobs {
        // A checkpoint and the runs it creates are written together or not at all.
        let ok = check.admits_all(std::iter::once(*job).chain(&job.others));
        if ok {
            apply(&txn, st, job).await?;
            for other in &job.others {
                apply(&txn, st, other).await?;
            }
        }
        accepted.push(ok);
    }
    txn.commit().await.map_err(|e| backend(op, e))?;
    Ok(accepted)
}

/// The fence check of a group, against the locked rows of its runs (`current`: run id to lease
/// token, for the runs that exist).
struct Fences<'a> {
    current: &'a HashMap<String, Option<i64>>,
    /// Runs created by checkpoints of the group admitted so far.
    created: std::collections::HashSet<&'a str>,
}

impl<'a> Fences<'a> {
    fn new(current: &'a HashMap<String, Option<i64>>) -> Self {
        Fences {
            current,
            created: std::collections::HashSet::new(),
        }
    }

    /// Whether `job`'s fence admits it: its lease is the run's, or the new run's id is free.
    fn admits(&mut self, job: &'a Job) -> bool {
        self.admits_all(std::iter::once(job))
    }

    /// Whether every one of `jobs` is admitted (then the runs they create count as taken).
    fn admits_all(&mut self, jobs: impl Iterator<Item = &'a Job> + Clone) -> bool {
        let ok = jobs.clone().all(|job| match job.fence {
            Fence::Lease(token) => {
                self.current.get(&job.run_id).copied().flatten() == Some(to_db(token))
            }
            Fence::Create => {
                !self.current.contains_key(&job.run_id)
                    && !self.created.contains(job.run_id.as_str())
            }
            _ => true,
        });
        if ok {
            self.created.extend(
                jobs.filter(|job| job.fence == Fence::Create)
                    .map(|job| job.run_id.as_str()),
            );
        }
        ok
    }
}

async fn apply(txn: &Transaction<'_>, st: &WriteStatements, job: &Job) -> Result<(), StoreError> {
    let op = "writing a checkpoint";
    let e = |e| backend(op, e);
    let run_id = &job.run_id;
    if job.purge {
        let row = txn
            .query_opt(&st.purgeable, &[run_id])
            .await
            .map_err(|e| backend("purging a run", e))?;
        match row.map(|row| row.get::<_, bool>(0)) {
            None => {}
            Some(false) => {
                return Err(StoreError::NotPurgeable {
                    run_id: run_id.clone(),
                });
            }
            Some(true) => {
                txn.execute(&st.purge, &[run_id])
                    .await
                    .map_err(|e| backend("purging a run", e))?;
            }
        }
        // A purge with a record replaces the run (an erasure): the rest of the checkpoint is
        // written as for a new run, in the same transaction.
        if job.row.is_none() {
            return Ok(());
        }
    }
    if job.clear_inbox {
        txn.execute(&st.clear_inbox, &[run_id]).await.map_err(e)?;
    }
    if let Some((statement, params)) = job.upsert(st) {
        txn.execute(statement, &params).await.map_err(e)?;
    }
    if !job.consumed.is_empty() {
        txn.execute(&st.consume, &[run_id, &job.consumed])
            .await
            .map_err(e)?;
    }
    if let Some(entry) = &job.buffer {
        txn.execute(&st.buffer, &[run_id, entry]).await.map_err(e)?;
    }
    if let Some((key, at_ms)) = &job.dedupe {
        txn.execute(&st.dedupe, &[run_id, key, at_ms])
            .await
            .map_err(e)?;
    }
    if !job.trace.is_empty() {
        txn.execute(&st.trace, &[run_id, &job.trace])
            .await
            .map_err(e)?;
    }
    Ok(())
}
