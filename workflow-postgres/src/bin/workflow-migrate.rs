//! `workflow-migrate`: copy every run of one store into another, between the embedded file
//! store and PostgreSQL, in either direction.
//!
//! ```text
//! workflow-migrate --from file:shop.db --to postgres://app@db.internal/workflows
//! workflow-migrate --from postgres://app@db.internal/workflows --to file:shop-back.db
//! ```
//!
//! Stop every engine on both stores first (a PostgreSQL source on which a worker holds a live
//! lease is refused). The source is only read. A destination that holds
//! runs is refused unless `--allow-non-empty` is given; with it, runs already there and
//! identical are skipped (so an interrupted copy is resumed by running the command again), and
//! a run that differs stops the copy, overwriting nothing.

use std::process::ExitCode;

use workflow_postgres::PgStore;
use workflow_runtime::store::{CopyOptions, FileStore, Store, copy_runs};

const USAGE: &str = "\
usage: workflow-migrate --from STORE --to STORE [--allow-non-empty] [--batch N]

Copies every run (state, pending waits and timers, buffered signals, dedupe keys, traces,
results of ended runs) from one store into another. Stop every engine on both stores first.

STORE is one of:
  file:PATH                      the embedded store file (created if missing)
  postgres://USER@HOST/DATABASE  a PostgreSQL database (its schema is created if missing)

options:
  --from STORE         the store to read (only read)
  --to STORE           the store to write
  --allow-non-empty    write into a destination that already holds runs: identical runs are
                       skipped, a run that differs stops the copy (resumes an interrupted copy)
  --batch N            runs written per round of commits (default 256)
  -h, --help           print this help
";

struct Args {
    from: String,
    to: String,
    allow_non_empty: bool,
    batch: Option<usize>,
}

fn parse(mut args: impl Iterator<Item = String>) -> Result<Option<Args>, String> {
    let (mut from, mut to, mut allow_non_empty, mut batch) = (None, None, false, None);
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => {
                (flag.to_owned(), Some(value.to_owned()))
            }
            _ => (arg, None),
        };
        match flag.as_str() {
            "-h" | "--help" => return Ok(None),
            "--allow-non-empty" => allow_non_empty = true,
            "--batch" => {
                let value = inline
                    .or_else(|| args.next())
                    .ok_or("`--batch` needs a number of runs")?;
                match value.parse::<usize>() {
                    Ok(n) if n > 0 => batch = Some(n),
                    _ => return Err(format!("`--batch {value}`: expected a number above 0")),
                }
            }
            "--from" | "--to" => {
                let value = inline.or_else(|| args.next()).ok_or_else(|| {
                    format!("`{flag}` needs a store (file:PATH or postgres://...)")
                })?;
                let slot = if flag == "--from" { &mut from } else { &mut to };
                if slot.replace(value).is_some() {
                    return Err(format!("`{flag}` is given twice"));
                }
            }
            other => return Err(format!("unexpected argument `{other}`")),
        }
    }
    Ok(Some(Args {
        from: from.ok_or("`--from` is missing")?,
        to: to.ok_or("`--to` is missing")?,
        allow_non_empty,
        batch,
    }))
}

/// A store named on the command line, opened.
enum Opened {
    File(FileStore),
    Postgres(PgStore),
}

impl Opened {
    /// Opens the store `spec` names; a source file must exist (opening creates a missing one,
    /// and a mistyped source path would copy nothing).
    fn open(spec: &str, source: bool) -> Result<(Opened, String), String> {
        if let Some(path) = spec.strip_prefix("file:") {
            if path.is_empty() {
                return Err("`file:` needs a path, as in file:shop.db".to_owned());
            }
            if source && !std::path::Path::new(path).exists() {
                return Err(format!("there is no store file at `{path}`"));
            }
            let store = FileStore::open(path).map_err(|e| chain(&e))?;
            Ok((Opened::File(store), format!("file {path}")))
        } else if spec.starts_with("postgres://") || spec.starts_with("postgresql://") {
            let store = PgStore::open(spec).map_err(|e| chain(&e))?;
            if source {
                refuse_live_leases(spec)?;
            }
            let label = store.database().to_owned();
            Ok((Opened::Postgres(store), label))
        } else {
            Err(format!(
                "`{spec}` names no store: write file:PATH or postgres://USER@HOST/DATABASE"
            ))
        }
    }

    fn store(&self) -> &dyn Store {
        match self {
            Opened::File(store) => store,
            Opened::Postgres(store) => store,
        }
    }
}

/// Refuses a PostgreSQL source on which a worker holds a live lease: it is driving runs, which
/// would be copied as they were when read while they move on in the source.
fn refuse_live_leases(url: &str) -> Result<(), String> {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("starting a runtime: {e}"))?;
    let row = runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
        let driver = tokio::spawn(connection);
        let row = client
            .query_one(
                "SELECT count(*), min(lease_owner), max(lease_expires_ms) FROM runs
                 WHERE lease_owner IS NOT NULL AND lease_expires_ms > $1",
                &[&now_ms],
            )
            .await;
        drop(client);
        let _ = driver.await;
        row
    });
    let row = row.map_err(|e| format!("checking the source's leases: {}", chain(&e)))?;
    let leased: i64 = row.get(0);
    if leased > 0 {
        let owner: String = row.get(1);
        let until: i64 = row.get(2);
        return Err(format!(
            "the source has {leased} run(s) leased by a live worker (`{owner}`, among others \
             maybe), the last lease until {until} ms since the Unix epoch: stop every worker \
             first, then run this again once their leases have lapsed"
        ));
    }
    Ok(())
}

/// An error with its causes, one per line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        out.push_str(&format!("\n  caused by: {cause}"));
        source = cause.source();
    }
    out
}

fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(Some(args)) => args,
        Ok(None) => {
            print!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("error: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match migrate(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn migrate(args: &Args) -> Result<(), String> {
    let (from, from_label) =
        Opened::open(&args.from, true).map_err(|e| format!("opening the source: {e}"))?;
    let (to, to_label) =
        Opened::open(&args.to, false).map_err(|e| format!("opening the destination: {e}"))?;
    println!("copying runs from {from_label} to {to_label}");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("starting a runtime: {e}"))?;
    let mut options = CopyOptions::default().allow_non_empty(args.allow_non_empty);
    if let Some(batch) = args.batch {
        options = options.batch(batch);
    }
    let copied = runtime.block_on(copy_runs(from.store(), to.store(), options));
    // Closing commits nothing new (every copy was acknowledged) but releases the file lock and
    // the connections before the process reports.
    let closed = runtime.block_on(async {
        let a = from.store().close().await;
        let b = to.store().close().await;
        a.and(b)
    });
    let report = copied.map_err(|e| chain(&e))?;
    closed.map_err(|e| format!("closing the stores: {}", chain(&e)))?;
    println!("{report}");
    Ok(())
}
