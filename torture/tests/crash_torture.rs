//! The crash torture, short: a few hundred runs in a worker process killed with SIGKILL a few
//! times (at random moments, and at exact points: before a commit, after a commit, after an
//! effect and before its checkpoint), then checked against the crash-free outcome. The long
//! run is `cargo run --release -p torture -- --runs 500 --kills 60 --seed 7 --exact-faults`.

use std::path::PathBuf;
use std::time::Duration;

use torture::{Config, drive};

fn config(dir: &tempfile::TempDir, seed: u64, runs: usize, kills: usize) -> Config {
    Config {
        seed,
        runs,
        kills,
        exact_faults: false,
        window: 32,
        dir: dir.path().join("data"),
        worker: PathBuf::from(env!("CARGO_BIN_EXE_torture")),
        stall: Duration::from_secs(60),
        verbose: false,
        forget_keys: false,
        power_loss: false,
        lying_sync: false,
        full_disk: false,
    }
}

#[test]
fn random_kills_lose_nothing_and_do_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let report = drive(&config(&dir, 5, 200, 6)).unwrap();
    println!("{report}");
    assert!(report.violations.is_empty(), "{report}");
    assert!(report.kills.total() > 0, "{report}");
    assert_eq!(report.kills.before_commit + report.kills.after_commit, 0);
    assert!(report.transitions > 1_000, "{report}");
}

#[test]
fn kills_at_exact_points_lose_nothing_and_do_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = Config {
        exact_faults: true,
        ..config(&dir, 11, 200, 10)
    };
    let report = drive(&cfg).unwrap();
    println!("{report}");
    assert!(report.violations.is_empty(), "{report}");
    assert!(report.kills.total() > 0, "{report}");
}

/// The check is not blind: with a ledger that does not de-duplicate (steps that ignore their
/// idempotency key), the effects of steps that ran twice show up as violations.
#[test]
fn steps_that_ignore_the_idempotency_key_are_caught() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = Config {
        forget_keys: true,
        ..config(&dir, 5, 60, 2)
    };
    let report = drive(&cfg).unwrap();
    assert!(
        report
            .violations
            .iter()
            .any(|v| v.starts_with("ledger:") && v.contains("applied 2 times")),
        "{report}"
    );
}

/// Power loss: every death loses the unsynced writes, and most lives end in a power cut at a
/// store operation (mid-commit included) that writes a torn, reordered part of them. Nothing
/// acknowledged may be lost and nothing done twice.
#[test]
fn power_cuts_lose_nothing_acknowledged_and_do_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = Config {
        power_loss: true,
        exact_faults: true,
        ..config(&dir, 3, 200, 20)
    };
    let report = drive(&cfg).unwrap();
    println!("{report}");
    assert!(report.violations.is_empty(), "{report}");
    assert!(report.kills.power_cut > 0, "{report}");
}

/// The check is not blind to power loss: a disk that acknowledges syncs it did not make loses
/// acknowledged work at the next cut, and the check reports it.
#[test]
fn a_disk_that_lies_about_sync_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = Config {
        power_loss: true,
        lying_sync: true,
        ..config(&dir, 3, 200, 20)
    };
    let report = drive(&cfg).unwrap();
    println!("{report}");
    assert!(!report.violations.is_empty(), "{report}");
}

/// Full disks and failing syncs: in most worker lives the device fails for a while at a seeded
/// store operation (some lives are killed during the outage, others end in a power cut). The
/// worker refuses what it cannot commit with the device's error, the driver sends it again,
/// and once the device heals the same worker resumes by itself: nothing acknowledged lost,
/// nothing done twice, every run finished.
#[test]
fn device_outages_are_survived_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = Config {
        power_loss: true,
        full_disk: true,
        ..config(&dir, 4, 150, 12)
    };
    let report = drive(&cfg).unwrap();
    println!("{report}");
    assert!(report.violations.is_empty(), "{report}");
    assert!(report.outages.healed > 0, "{report}");
    assert!(report.outages.refused > 0, "{report}");
}

/// Three worker processes in shared mode on one PostgreSQL database (a cluster of the test's
/// own), workers killed at random and the database server stopped at once and started again
/// mid-run: every run finishes with its crash-free outcome, every effect once, no
/// acknowledged signal lost. The long run is
/// `cargo run --release -p torture -- --workers 3 --runs 400 --kills 40 --seed 7`.
#[test]
fn three_workers_on_one_database_survive_kills_and_a_database_restart() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = torture::MultiConfig {
        seed: 9,
        runs: 60,
        kills: 5,
        workers: 3,
        window: 16,
        restart_database: true,
        dir: dir.path().join("data"),
        worker: PathBuf::from(env!("CARGO_BIN_EXE_torture")),
        stall: Duration::from_secs(60),
        verbose: false,
    };
    let report = torture::drive_multi(&cfg).unwrap();
    println!("{report}");
    assert!(report.violations.is_empty(), "{report}");
    assert!(report.kills.random > 0, "{report}");
    assert_eq!(report.database_restarts, 1, "{report}");
    assert!(report.transitions > 300, "{report}");
}
