//! Crash torture for the workflow engine: proof by repetition that nothing is lost and nothing
//! is done twice.
//!
//! A [driver](driver::drive) runs a seeded [workload](workload::plan) of runs of three
//! [workflows](flows) (effects recorded in a durable [ledger] under their idempotency keys,
//! signal waits with and without timeouts, sleeps, loops, retried flaky steps) in a
//! [worker] process, kills that process with SIGKILL at seeded moments (at random, or
//! at an exact [fault] point: before a commit, after a commit, after an effect and before its
//! checkpoint), restarts it on the same directory and re-sends every start and signal it did
//! not acknowledge, duplicates and early signals included. At the end, the [check] compares
//! the store and the ledger with what a crash-free execution gives, computed from the seed by
//! a pure function ([`workload::expected`]).
//!
//! ```text
//! cargo run --release -p torture -- --runs 500 --kills 60 --seed 7 --exact-faults
//! ```

pub mod check;
pub mod driver;
pub mod fault;
pub mod flows;
pub mod ledger;
pub mod multi;
pub mod worker;
pub mod workload;

pub use driver::{Config, CutStats, Kills, OutageStats, Report, SignalStats, drive};
pub use multi::{MultiConfig, drive_multi};
