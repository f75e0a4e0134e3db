//! Benchmarks of the workflow engine, each beside the raw redb floor it is compared against,
//! measured in the same process. See `BENCHMARKS.md` at the workspace root.
//!
//! ```sh
//! cargo run --release -p bench -- all          # every workload, then a Markdown table
//! cargo run --release -p bench -- w1           # or one: floor, shapes, w1, w2, w3, w4, codec, fanout
//! cargo run --release -p bench -- w3 --parked 20000 --reps 3
//! cargo run --release -p bench -- w3scale      # W3's open at 10k, 100k and 1M parked runs
//! cargo run --release -p bench -- w1probe      # where W1's step time goes beyond the floor
//! cargo run --release -p bench -- pg           # W1-W3 on PostgreSQL (starts a throwaway server)
//! cargo run --release -p bench -- pg --workers 3   # and W1, W2 with three worker processes
//! ```
//!
//! Options: `--reps N` (repetitions whose median is reported, default 5), `--dir PATH` (where
//! the store files go, default the system temporary directory; put it on the disk you want to
//! measure), `--parked N` (W3's parked runs, default 100000), `--signalled N` (W3's runs
//! signalled after the restart, default 2000), `--ks A,B,C` (W4's history lengths, default
//! 10,1000,10000), `--scales A,B,C` (`w3scale`'s parked runs, default 10000,100000,1000000;
//! not part of `all`: the million-run store takes a minute to create and 2 GB of disk),
//! `--workers N` (`pg` only: W1 and W2 also with N worker processes sharing
//! the database, default 1), `--statements` (`pg` only: restarts the server with
//! `pg_stat_statements` and prints what the engines ran in each W1 and shared W2 repetition),
//! `--w1-only` (`pg` only: stops after W1, its WAL per step and its interleaved floor).
//!
//! Every store is committed at the engine's default durability: redb's `Immediate`, an fsync
//! per commit; PostgreSQL with `synchronous_commit = on` (`pg` is not part of `all`: it needs
//! the server binaries that `scripts/pg-test-cluster` finds or installs).

mod codec;
mod fanout;
mod floor;
mod flows;
mod pg;
mod stats;
mod w1;
mod w1probe;
mod w2;
mod w3;
mod w4;

use std::path::{Path, PathBuf};

use stats::Row;

const USAGE: &str = "usage: bench <all|floor|shapes|w1|w1mem|w1probe|w2|w3|w3scale|w4|codec|fanout|pg> \\
                     [--reps N] [--dir PATH] [--parked N] [--signalled N] [--ks 10,1000,10000] \\
                     [--scales 10000,100000,1000000] [--workers N] [--statements] [--w1-only]";

struct Opts {
    reps: usize,
    dir: PathBuf,
    parked: u64,
    signalled: u64,
    ks: Vec<u64>,
    scales: Vec<u64>,
    workers: usize,
    statements: bool,
}

fn parse(args: &[String]) -> Result<Opts, String> {
    let mut o = Opts {
        reps: 5,
        dir: std::env::temp_dir(),
        parked: 100_000,
        signalled: 2_000,
        ks: vec![10, 1_000, 10_000],
        scales: vec![10_000, 100_000, 1_000_000],
        workers: 1,
        statements: false,
    };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        if flag == "--statements" {
            o.statements = true;
            continue;
        }
        if flag == "--w1-only" {
            pg::W1_ONLY.store(true, std::sync::atomic::Ordering::Relaxed);
            continue;
        }
        let value = it.next().ok_or_else(|| format!("`{flag}` needs a value"))?;
        let num = |v: &str| v.parse::<u64>().map_err(|e| format!("`{flag} {v}`: {e}"));
        match flag.as_str() {
            "--reps" => o.reps = usize::try_from(num(value)?.max(1)).unwrap_or(1),
            "--dir" => o.dir = PathBuf::from(value),
            "--parked" => o.parked = num(value)?,
            "--signalled" => o.signalled = num(value)?,
            "--workers" => o.workers = usize::try_from(num(value)?.max(1)).unwrap_or(1),
            "--ks" => {
                o.ks = value.split(',').map(num).collect::<Result<Vec<_>, _>>()?;
            }
            "--scales" => {
                o.scales = value.split(',').map(num).collect::<Result<Vec<_>, _>>()?;
            }
            other => return Err(format!("unknown option `{other}`")),
        }
    }
    if o.ks.is_empty() {
        return Err("`--ks` needs at least one length".into());
    }
    Ok(o)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(cmd) = args.first() else {
        eprintln!("{USAGE}");
        std::process::exit(2);
    };
    if cmd == "__child" {
        w3::child_main(&args[1..]);
        return;
    }
    if cmd == "__pg_worker" {
        pg::worker_main(&args[1..]);
        return;
    }
    let opts = match parse(&args[1..]) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}\n{USAGE}");
            std::process::exit(2);
        }
    };
    const WORKLOADS: [&str; 13] = [
        "all", "floor", "shapes", "w1", "w1mem", "w1probe", "w2", "w3", "w3scale", "w4", "codec",
        "fanout", "pg",
    ];
    if !WORKLOADS.contains(&cmd.as_str()) {
        eprintln!("unknown workload `{cmd}`\n{USAGE}");
        std::process::exit(2);
    }
    // Removed with every store file in it when dropped at the end of `main`; created only once
    // the command is known, since `exit` would skip the drop.
    let work = tempfile::Builder::new()
        .prefix("workflow-bench-")
        .tempdir_in(&opts.dir)
        .expect("a working directory");
    let rows = run(cmd, &opts, work.path());
    stats::print_table(&rows);
}

fn run(cmd: &str, o: &Opts, dir: &Path) -> Vec<Row> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    if cmd == "pg" {
        return rt.block_on(pg::run(
            o.reps,
            o.parked,
            o.signalled,
            o.workers,
            o.statements,
        ));
    }
    if cmd == "w3scale" {
        println!(
            "W3 at {:?} parked runs: clean reopen, time and memory",
            o.scales
        );
        return w3::scale(dir, o.reps, &o.scales);
    }
    let wants = |w: &str| cmd == "all" || cmd == w;
    let needs_latency = ["floor", "w4", "codec"].iter().any(|w| wants(w));
    let needs_throughput = ["floor", "w2", "w3"].iter().any(|w| wants(w));
    println!("floor: raw redb commits, {} repetitions", o.reps);
    let latency = needs_latency.then(|| floor::latency(dir, o.reps));
    let throughput = if needs_throughput {
        floor::throughput(dir, o.reps)
    } else {
        Vec::new()
    };
    let mut rows = Vec::new();
    if wants("floor") {
        rows.extend(floor::rows(latency.expect("measured above"), &throughput));
    } else if let Some(l) = latency {
        rows.extend(floor::rows(l, &[]));
    }
    if wants("shapes") {
        println!("shapes: commit latency of engine-shaped write sets (diagnostic)");
        rows.extend(floor::shapes(dir, o.reps));
    }
    if wants("w1") {
        println!("W1: 200 runs one after another, 10 no-op steps each");
        rows.extend(rt.block_on(w1::run(dir, o.reps)));
    }
    if cmd == "w1mem" {
        println!(
            "W1 on the in-memory backend only: 200 runs one after another, 10 no-op steps each"
        );
        rows.extend(rt.block_on(w1::run_memory(o.reps)));
    }
    if cmd == "w1probe" {
        println!("W1 probe: the step beside its commit, its write set replayed, the hand-off");
        rows.extend(rt.block_on(w1probe::run(dir, o.reps)));
    }
    if wants("w2") {
        println!("W2: 1000 concurrent runs, 3 steps, a signal wait, 1 step");
        rows.extend(rt.block_on(w2::run(dir, o.reps, &throughput)));
    }
    if wants("w3") {
        println!(
            "W3: {} parked runs; clean reopen; kill -9, restart, {} signalled",
            o.parked, o.signalled
        );
        rows.extend(w3::run(dir, o.reps, o.parked, o.signalled, &throughput));
    }
    if let Some(l) = latency
        && wants("w4")
    {
        println!("W4: histories of {:?} steps, reopen, signal", o.ks);
        rows.extend(rt.block_on(w4::run(dir, o.reps, &o.ks, l)));
    }
    if let Some(l) = latency
        && wants("codec")
    {
        println!("codec: the refund-like state and envelope");
        rows.extend(rt.block_on(codec::run(dir, o.reps, l)));
    }
    if wants("fanout") {
        println!("fan-out: one run, 1000 no-op steps at once");
        rows.extend(rt.block_on(fanout::run(dir, o.reps)));
    }
    rows
}
