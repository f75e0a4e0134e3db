//! `torture`: the crash-torture driver, and (as `torture worker ..`) the worker it kills.
//!
//! ```text
//! torture [--runs N] [--kills N] [--seed N] [--exact-faults] [--workers N] [--window N] [--dir PATH] [--keep] [--quiet]
//! ```
//!
//! With `--workers N`, N worker processes share one PostgreSQL database (a throwaway cluster,
//! restarted once mid-run) and are killed at random; see `torture::multi`.
//!
//! Prints kills survived, runs, transitions and violations, and exits with 1 on any violation
//! (2 on a usage or setup error). The data directory (a fresh one under the system's temporary
//! directory unless `--dir` names one) is removed after a clean run unless `--keep` is given.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use torture::fault::Fault;
use torture::worker::{self, WorkerArgs};
use torture::{Config, MultiConfig, drive, drive_multi};

const USAGE: &str = "usage: torture [--runs N] [--kills N] [--seed N] [--exact-faults] [--power-loss] [--full-disk] [--workers N] [--window N] [--dir PATH] [--keep] [--quiet]
       torture worker --dir PATH --seed N --runs N [--fault before-commit:N|after-commit:N|after-effect:N|power-cut:N] [--forget-keys] [--power-loss [--lying-sync] [--outage no-space|failing-sync:OPS:MS]]";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = if args.first().is_some_and(|a| a == "worker") {
        parse_worker(&args[1..]).and_then(|w| worker::run(&w))
    } else {
        return torture(&args);
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("torture worker: {e}");
            ExitCode::from(2)
        }
    }
}

fn value<'a>(it: &mut impl Iterator<Item = &'a String>, flag: &str) -> Result<&'a String, String> {
    it.next()
        .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))
}

fn number<T: std::str::FromStr>(s: &str, flag: &str) -> Result<T, String> {
    s.parse()
        .map_err(|_| format!("{flag}: `{s}` is not a number\n{USAGE}"))
}

fn parse_worker(args: &[String]) -> Result<WorkerArgs, String> {
    let mut w = WorkerArgs {
        dir: PathBuf::new(),
        seed: 0,
        runs: 0,
        fault: None,
        forget_keys: false,
        power_loss: false,
        lying_sync: false,
        outage: None,
        pg: None,
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        if flag == "--forget-keys" {
            w.forget_keys = true;
            continue;
        }
        if flag == "--power-loss" {
            w.power_loss = true;
            continue;
        }
        if flag == "--lying-sync" {
            w.lying_sync = true;
            continue;
        }
        let v = value(&mut it, flag)?;
        match flag.as_str() {
            "--dir" => w.dir = PathBuf::from(v),
            "--seed" => w.seed = number(v, flag)?,
            "--runs" => w.runs = number(v, flag)?,
            "--fault" => w.fault = Some(v.parse::<Fault>()?),
            "--outage" => w.outage = Some(v.parse::<worker::Outage>()?),
            "--pg" => {
                let name = w.pg.take().map(|(_, n)| n).unwrap_or_default();
                w.pg = Some((v.clone(), name));
            }
            "--name" => {
                let url = w.pg.take().map(|(u, _)| u).unwrap_or_default();
                w.pg = Some((url, v.clone()));
            }
            _ => return Err(format!("unknown argument `{flag}`\n{USAGE}")),
        }
    }
    if w.dir.as_os_str().is_empty() {
        return Err(format!("--dir is required\n{USAGE}"));
    }
    Ok(w)
}

fn torture(args: &[String]) -> ExitCode {
    let worker = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => {
            eprintln!("torture: cannot find my own executable: {e}");
            return ExitCode::from(2);
        }
    };
    let mut cfg = Config {
        seed: 7,
        runs: 500,
        kills: 60,
        exact_faults: false,
        window: 48,
        dir: PathBuf::new(),
        worker,
        stall: Duration::from_secs(60),
        verbose: true,
        forget_keys: false,
        power_loss: false,
        lying_sync: false,
        full_disk: false,
    };
    let mut keep = false;
    let mut workers = 0usize;
    let parsed = (|| -> Result<(), String> {
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            match flag.as_str() {
                "--exact-faults" => cfg.exact_faults = true,
                "--power-loss" => cfg.power_loss = true,
                // Device failures need the layer that injects them.
                "--full-disk" => {
                    cfg.full_disk = true;
                    cfg.power_loss = true;
                }
                "--keep" => keep = true,
                "--quiet" => cfg.verbose = false,
                "--runs" => cfg.runs = number(value(&mut it, flag)?, flag)?,
                "--kills" => cfg.kills = number(value(&mut it, flag)?, flag)?,
                "--seed" => cfg.seed = number(value(&mut it, flag)?, flag)?,
                "--window" => cfg.window = number(value(&mut it, flag)?, flag)?,
                "--workers" => workers = number(value(&mut it, flag)?, flag)?,
                "--dir" => cfg.dir = PathBuf::from(value(&mut it, flag)?),
                "-h" | "--help" => return Err(String::new()),
                _ => return Err(format!("unknown argument `{flag}`\n{USAGE}")),
            }
        }
        Ok(())
    })();
    match parsed {
        Ok(()) => {}
        Err(e) if e.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    }
    if cfg.dir.as_os_str().is_empty() {
        cfg.dir =
            std::env::temp_dir().join(format!("torture-seed{}-{}", cfg.seed, std::process::id()));
    }
    if cfg.dir.join(worker::STORE).exists() {
        eprintln!(
            "torture: {} already holds a store; give an empty directory",
            cfg.dir.display()
        );
        return ExitCode::from(2);
    }
    eprintln!(
        "torture: seed {}, {} runs, {} kills{}, data in {}",
        cfg.seed,
        cfg.runs,
        cfg.kills,
        match (cfg.exact_faults, cfg.power_loss) {
            (_, true) if cfg.full_disk => {
                " (full disks and failing syncs, then recovery without a restart; power cuts: random, at exact points, and at store operations)"
            }
            (_, true) => " (power cuts: random, at exact points, and at store operations)",
            (true, false) => " (random and exact points)",
            (false, false) => "",
        },
        cfg.dir.display()
    );
    let driven = if workers > 0 {
        eprintln!(
            "torture: {workers} workers on one PostgreSQL database, random SIGKILLs, one database restart"
        );
        drive_multi(&MultiConfig {
            seed: cfg.seed,
            runs: cfg.runs,
            kills: cfg.kills,
            workers,
            window: cfg.window,
            restart_database: true,
            dir: cfg.dir.clone(),
            worker: cfg.worker.clone(),
            stall: cfg.stall,
            verbose: cfg.verbose,
        })
    } else {
        drive(&cfg)
    };
    match driven {
        Ok(report) => {
            println!("{report}");
            if report.violations.is_empty() {
                if !keep {
                    let _ = std::fs::remove_dir_all(&cfg.dir);
                }
                ExitCode::SUCCESS
            } else {
                eprintln!("torture: data kept in {}", cfg.dir.display());
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("torture: {e}");
            ExitCode::from(2)
        }
    }
}
