//! The driver: starts a worker process, feeds it the workload (starts and signals), kills it
//! with SIGKILL at seeded moments, restarts it on the same directory and re-sends whatever was
//! not acknowledged, until every run finished; then checks the store and the ledger.

use std::fmt;
use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use crate::check;
use crate::fault::Fault;
use crate::worker::Outage;
use crate::workload::{self, PlannedSignal, Rng, Role, RunPlan};
use workflow_runtime::testing::DiskFault;

/// What a torture run does.
#[derive(Debug, Clone)]
pub struct Config {
    /// Seeds the workload and the kill schedule.
    pub seed: u64,
    /// How many runs the workload has.
    pub runs: usize,
    /// How many times to kill the worker (the workload may finish a little before).
    pub kills: usize,
    /// Also kill at exact points (before a commit, after a commit, after an effect and before
    /// its checkpoint), in about half of the worker's lives.
    pub exact_faults: bool,
    /// How many runs are in flight at once.
    pub window: usize,
    /// The data directory; it must be empty or missing.
    pub dir: PathBuf,
    /// The worker executable: this crate's `torture` binary.
    pub worker: PathBuf,
    /// How long without any message from the worker counts as stuck.
    pub stall: Duration,
    /// Print each kill to stderr.
    pub verbose: bool,
    /// Power-loss mode: workers open the store through [`PowerLossDisk`](workflow_runtime::testing::PowerLossDisk), so every death loses
    /// the unsynced writes, and about two lives in three end in a power cut at a store
    /// operation (mid-commit included) that writes a torn, reordered part of them.
    pub power_loss: bool,
    /// With `power_loss`, workers whose disk acknowledges syncs it did not make: the check
    /// must then report lost work. Proves the check is not blind to power loss; never set it
    /// when measuring the engine.
    pub lying_sync: bool,
    /// Full-disk mode (implies `power_loss`): in most lives the device fails at a seeded store
    /// operation (no space, or syncs that fail and lose their writes) for a seeded while and
    /// then heals; the worker must refuse what it cannot commit with the device's error and
    /// resume by itself afterwards. Some lives are killed during the outage.
    pub full_disk: bool,
    /// Run workers whose ledger does not de-duplicate, as if the steps ignored their
    /// idempotency keys: the check must then report doubled effects. Proves the check is not
    /// blind; never set it when measuring the engine.
    pub forget_keys: bool,
}

/// How many times the worker died, by cause.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Kills {
    /// SIGKILL from the driver at a random moment while the workload ran.
    pub random: usize,
    /// SIGKILL from the driver while the worker was opening the store and resuming runs.
    pub startup: usize,
    /// The worker killed itself just before a commit.
    pub before_commit: usize,
    /// The worker killed itself just after a commit.
    pub after_commit: usize,
    /// The worker killed itself after an effect and before its step's checkpoint.
    pub after_effect: usize,
    /// The power-loss layer cut the power at a store operation.
    pub power_cut: usize,
    /// SIGKILL from the driver while the device was failing (full-disk mode).
    pub during_outage: usize,
}

impl Kills {
    /// Every kill.
    pub fn total(&self) -> usize {
        self.random
            + self.startup
            + self.before_commit
            + self.after_commit
            + self.after_effect
            + self.power_cut
            + self.during_outage
    }
}

/// What the power cuts at a store operation let reach the file, read back from the workers'
/// log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CutStats {
    /// Cuts that lost every unsynced write.
    pub lose_all: usize,
    /// Cuts that wrote the oldest unsynced writes, in order, up to a point.
    pub prefix: usize,
    /// Cuts that wrote a random subset of them in a random order.
    pub shuffled: usize,
    /// Cuts that tore one write (only a prefix of it, at a sector, reached the file).
    pub torn: usize,
    /// Unsynced writes at the cuts, and how many of them reached the file.
    pub pending_writes: usize,
    /// See `pending_writes`.
    pub applied_writes: usize,
}

impl CutStats {
    /// Tallies the `power cut: CutReport { .. }` lines of a worker log.
    pub fn from_log(log: &str) -> CutStats {
        let mut stats = CutStats::default();
        let number = |line: &str, field: &str| -> usize {
            line.split(field)
                .nth(1)
                .and_then(|rest| rest.split([',', ' ']).find(|w| !w.is_empty()))
                .and_then(|n| n.parse().ok())
                .unwrap_or(0)
        };
        for line in log.lines().filter(|l| l.starts_with("power cut: ")) {
            if line.contains("mode: LoseAll") {
                stats.lose_all += 1;
            } else if line.contains("mode: Prefix") {
                stats.prefix += 1;
            } else if line.contains("mode: Shuffled") {
                stats.shuffled += 1;
            }
            if line.contains("torn: Some") {
                stats.torn += 1;
            }
            stats.pending_writes += number(line, "pending: ");
            stats.applied_writes += number(line, "applied: ");
        }
        stats
    }
}

/// The device failures of full-disk mode.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutageStats {
    /// Outages in which the device had no space.
    pub no_space: usize,
    /// Outages in which every sync failed and lost its writes.
    pub failing_sync: usize,
    /// Outages that ended with the worker alive, which then had to resume by itself.
    pub healed: usize,
    /// Starts and signals the worker refused with the device's error (then sent again).
    pub refused: usize,
    /// Store operations that failed in the outages that healed, from the workers' log.
    pub failed_operations: usize,
}

/// The signals the driver sent and what became of them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignalStats {
    /// Signals sent, re-sends included.
    pub sent: usize,
    /// Re-sends of a signal whose answer a kill swallowed, or that a failing device refused.
    pub resent: usize,
    /// Answered `delivered`: a wait consumed it at once.
    pub delivered: usize,
    /// Answered `buffered`: it arrived before its wait (an early signal).
    pub buffered: usize,
    /// Answered `duplicate`: its dedupe key was already accepted.
    pub duplicate: usize,
    /// Answered `finished`: the run was over.
    pub finished: usize,
}

impl SignalStats {
    /// Counts one answer to a signal of `role` and says whether that answer is allowed.
    /// `resent`: the signal is a re-send after a kill or a refusal swallowed the first answer.
    pub(crate) fn judge(&mut self, role: Role, resent: bool, answer: &str) -> bool {
        match answer {
            "delivered" => {
                self.delivered += 1;
                role == Role::Original
            }
            "buffered" => {
                self.buffered += 1;
                role == Role::Original
            }
            // An original only after a kill swallowed its first answer: it was stored then.
            "duplicate" => {
                self.duplicate += 1;
                role == Role::Duplicate || (role == Role::Original && resent)
            }
            // An original only if it was stored before a kill and the run then consumed it
            // and finished; the check sees whether it did.
            "finished" => {
                self.finished += 1;
                role == Role::Late || (role == Role::Original && resent)
            }
            _ => false,
        }
    }
}

/// What a torture run found.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// The seed.
    pub seed: u64,
    /// Runs in the workload.
    pub runs: usize,
    /// Worker deaths, by cause.
    pub kills: Kills,
    /// Worker processes started.
    pub lives: usize,
    /// Committed transitions of all runs, counted from their traces.
    pub transitions: usize,
    /// Trace events of all runs.
    pub trace_events: usize,
    /// Step attempts that failed and were retried, counted from the traces.
    pub retried_attempts: usize,
    /// Effects in the ledger.
    pub effects: usize,
    /// Requests the ledger de-duplicated: a step ran again under a key it had already used.
    pub deduplicated: usize,
    /// Signals.
    pub signals: SignalStats,
    /// What the power cuts at a store operation wrote (power-loss mode).
    pub cuts: CutStats,
    /// The device failures (full-disk mode).
    pub outages: OutageStats,
    /// Multi-worker mode: worker processes running at once.
    pub workers: usize,
    /// Multi-worker mode: times the database server was stopped at once and started again.
    pub database_restarts: usize,
    /// Multi-worker mode: starts and signals answered with an error (the database was down,
    /// or the run moved to another worker meanwhile) and sent again.
    pub retried_requests: usize,
    /// Everything that went wrong; empty when the engine kept every promise.
    pub violations: Vec<String>,
    /// Wall time of the whole run, the check included.
    pub elapsed: Duration,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let k = &self.kills;
        let s = &self.signals;
        writeln!(f, "seed {}: {} runs", self.seed, self.runs)?;
        writeln!(
            f,
            "kills survived: {} (random {}, during startup {}, before commit {}, after commit {}, after effect {}, power cuts at a store operation {}, during a device outage {}) over {} worker lives",
            k.total(),
            k.random,
            k.startup,
            k.before_commit,
            k.after_commit,
            k.after_effect,
            k.power_cut,
            k.during_outage,
            self.lives
        )?;
        writeln!(
            f,
            "transitions: {} ({} trace events, {} retried step attempts)",
            self.transitions, self.trace_events, self.retried_attempts
        )?;
        writeln!(
            f,
            "effects: {} applied, {} repeated requests de-duplicated by idempotency key (flaky retries and steps re-run after a kill)",
            self.effects, self.deduplicated
        )?;
        writeln!(
            f,
            "signals: {} sent ({} re-sent after a kill or a refusal): {} delivered, {} buffered early, {} duplicates refused, {} refused as late",
            s.sent, s.resent, s.delivered, s.buffered, s.duplicate, s.finished
        )?;
        let c = &self.cuts;
        if k.power_cut > 0 {
            writeln!(
                f,
                "power cuts: {} lost every unsynced write, {} wrote a prefix of them, {} a shuffled subset, {} tore a write; {} of {} unsynced writes reached the file",
                c.lose_all, c.prefix, c.shuffled, c.torn, c.applied_writes, c.pending_writes
            )?;
        }
        if self.workers > 0 {
            writeln!(
                f,
                "shared database: {} workers at once, {} database restarts, {} starts and signals answered with an error and sent again",
                self.workers, self.database_restarts, self.retried_requests
            )?;
        }
        let o = &self.outages;
        if o.no_space + o.failing_sync > 0 {
            writeln!(
                f,
                "device outages: {} ({} no space, {} failing syncs), {} healed with the worker alive and resumed without a restart ({} store operations failed in those); {} starts and signals refused with the device's error",
                o.no_space + o.failing_sync,
                o.no_space,
                o.failing_sync,
                o.healed,
                o.failed_operations,
                o.refused
            )?;
        }
        writeln!(f, "elapsed: {:.1} s", self.elapsed.as_secs_f64())?;
        write!(f, "violations: {}", self.violations.len())?;
        for v in self.violations.iter().take(50) {
            write!(f, "\n  - {v}")?;
        }
        if self.violations.len() > 50 {
            write!(f, "\n  ... and {} more", self.violations.len() - 50)?;
        }
        Ok(())
    }
}

/// Where a run stands, from the driver's side.
#[derive(Debug, Default)]
struct RunState {
    start_sent: bool,
    started: bool,
    done: bool,
    /// The next planned signal to send or to see acknowledged.
    next: usize,
    /// The request carrying signal `next`, if one is out.
    inflight: Option<u64>,
    /// When signal `next` may be sent.
    ready_at: Option<Instant>,
    /// Signal `next` was sent before and a kill swallowed the answer.
    resend: bool,
}

#[derive(Debug, Clone, Copy)]
enum Request {
    Start(usize),
    Signal(usize),
}

/// How the driver means to end a worker's life.
#[derive(Debug, Clone, Copy)]
enum KillPlan {
    /// Let it finish the workload.
    None,
    /// This long after spawning it, ready or not.
    Startup(Duration),
    /// After this many answers from it, plus a delay, to land inside whatever comes next.
    AfterEvents(u64, Duration),
    /// It kills itself at `fault`; after this many answers without dying, the driver does.
    Exact(Fault, u64),
}

struct Life {
    id: u64,
    child: Child,
    stdin: Option<ChildStdin>,
    plan: KillPlan,
    spawned: Instant,
    ready: bool,
    events: u64,
    kill_at: Option<Instant>,
    /// Kill this long after the device starts failing (full-disk mode).
    kill_in_outage: Option<Duration>,
    /// The device is failing now.
    in_outage: bool,
    /// The pending kill is the one during the outage.
    outage_kill: bool,
}

/// What a worker's stdout reader sends the driver.
pub(crate) enum Msg {
    /// One line the worker printed.
    Line(String),
    /// The worker's stdout closed (it exited or was killed).
    Eof,
}

struct Driver<'a> {
    cfg: &'a Config,
    plans: Vec<RunPlan>,
    runs: Vec<RunState>,
    rng: Rng,
    gap: u64,
    report: Report,
    inflight: std::collections::HashMap<u64, Request>,
    next_req: u64,
    next_run: usize,
    tx: Sender<(u64, Msg)>,
    lives: u64,
    /// Workers in a row that died by themselves before they were ready.
    failed_starts: u32,
    /// Starts refused by a failing device, to send again at the time given.
    retry_starts: Vec<(usize, Instant)>,
}

/// Runs the whole torture: the workload under kills, then the check.
///
/// # Errors
/// If the directory cannot be created or the worker cannot be started at all; everything the
/// engine does wrong is a violation in the report instead.
pub fn drive(cfg: &Config) -> Result<Report, String> {
    let began = Instant::now();
    std::fs::create_dir_all(&cfg.dir).map_err(|e| format!("{}: {e}", cfg.dir.display()))?;
    let plans = workload::plan(cfg.seed, cfg.runs);
    let events: usize = plans.iter().map(|p| p.signals.len() + 2).sum();
    let (tx, rx) = mpsc::channel();
    let mut d = Driver {
        cfg,
        runs: plans.iter().map(|_| RunState::default()).collect(),
        plans,
        // Stream u64::MAX: the runs use streams 0, 1, 2...
        rng: Rng::derive(cfg.seed, u64::MAX),
        gap: (events / (cfg.kills + 1)).max(1) as u64,
        report: Report {
            seed: cfg.seed,
            runs: cfg.runs,
            ..Report::default()
        },
        inflight: Default::default(),
        next_req: 0,
        next_run: 0,
        tx,
        lives: 0,
        failed_starts: 0,
        retry_starts: Vec::new(),
    };
    d.run(&rx)?;
    if cfg.power_loss {
        let log = std::fs::read_to_string(cfg.dir.join("worker.log")).unwrap_or_default();
        d.report.cuts = CutStats::from_log(&log);
        d.report.outages.failed_operations = log
            .lines()
            .filter_map(|l| l.strip_prefix("outage healed: "))
            .filter_map(|l| {
                l.split(", ")
                    .nth(1)?
                    .split(' ')
                    .next()?
                    .parse::<usize>()
                    .ok()
            })
            .sum();
    }
    if let Err(e) = check::check(&cfg.dir, &d.plans, &mut d.report) {
        d.report.violations.push(format!("the check failed: {e}"));
    }
    d.report.elapsed = began.elapsed();
    Ok(d.report)
}

impl Driver<'_> {
    fn run(&mut self, rx: &Receiver<(u64, Msg)>) -> Result<(), String> {
        let mut life = self.spawn()?;
        let mut last_heard = Instant::now();
        loop {
            if self.finished() {
                break;
            }
            match rx.recv_timeout(Duration::from_millis(5)) {
                Ok((id, Msg::Line(line))) if id == life.id => {
                    last_heard = Instant::now();
                    self.on_line(&mut life, &line);
                }
                Ok((id, Msg::Eof)) if id == life.id => {
                    // It died without being killed by us: an exact fault, or a real crash.
                    let status = life.child.wait().map_err(|e| e.to_string())?;
                    self.died_by_itself(&life, status);
                    self.requeue();
                    // Dying at its own planned fault while opening (a power cut during
                    // recovery) is a kill survived, not a worker that cannot start.
                    let planned =
                        matches!(life.plan, KillPlan::Exact(..)) && status.signal() == Some(9);
                    self.failed_starts = if life.ready || planned {
                        0
                    } else {
                        self.failed_starts + 1
                    };
                    if self.failed_starts >= 3 {
                        self.violation(format!(
                            "the worker cannot start: {} lives in a row died before they were ready",
                            self.failed_starts
                        ));
                        return Ok(());
                    }
                    life = self.spawn()?;
                    last_heard = Instant::now();
                    continue;
                }
                Ok(_) | Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return Err("channel closed".into()),
            }
            if life.ready {
                self.pump(&mut life);
            }
            if life.kill_at.is_some_and(|at| Instant::now() >= at) {
                self.kill(&mut life, rx)?;
                life = self.spawn()?;
                last_heard = Instant::now();
                continue;
            }
            if last_heard.elapsed() > self.cfg.stall {
                let left: Vec<&str> = self
                    .runs
                    .iter()
                    .zip(&self.plans)
                    .filter(|(r, _)| r.start_sent && !r.done)
                    .map(|(_, p)| p.run_id.as_str())
                    .take(20)
                    .collect();
                self.report.violations.push(format!(
                    "stalled: nothing from the worker for {:?} with runs unfinished: {left:?}",
                    self.cfg.stall
                ));
                break;
            }
        }
        self.stop(life, rx)
    }

    fn finished(&self) -> bool {
        self.next_run == self.plans.len()
            && self
                .runs
                .iter()
                .zip(&self.plans)
                .all(|(r, p)| r.done && r.next == p.signals.len())
    }

    fn spawn(&mut self) -> Result<Life, String> {
        self.lives += 1;
        self.report.lives += 1;
        let plan = self.kill_plan();
        let fault = match plan {
            KillPlan::Exact(f, _) => Some(f),
            _ => None,
        };
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.cfg.dir.join("worker.log"))
            .map_err(|e| format!("worker.log: {e}"))?;
        let mut cmd = Command::new(&self.cfg.worker);
        cmd.arg("worker")
            .arg("--dir")
            .arg(&self.cfg.dir)
            .args(["--seed", &self.cfg.seed.to_string()])
            .args(["--runs", &self.cfg.runs.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log);
        if let Some(f) = fault {
            cmd.args(["--fault", &f.to_string()]);
        }
        if self.cfg.forget_keys {
            cmd.arg("--forget-keys");
        }
        if self.cfg.power_loss {
            cmd.arg("--power-loss");
        }
        if self.cfg.lying_sync {
            cmd.arg("--lying-sync");
        }
        let (outage, kill_in_outage) = self.outage_plan();
        if let Some(outage) = outage {
            cmd.args(["--outage", &outage.to_string()]);
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", self.cfg.worker.display()))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let stdin = child.stdin.take();
        let id = self.lives;
        forward_lines(stdout, self.tx.clone(), id);
        let spawned = Instant::now();
        Ok(Life {
            id,
            child,
            stdin,
            plan,
            spawned,
            ready: false,
            events: 0,
            kill_at: match plan {
                KillPlan::Startup(after) => Some(spawned + after),
                _ => None,
            },
            kill_in_outage,
            in_outage: false,
            outage_kill: false,
        })
    }

    /// Full-disk mode: in three lives in four the device fails at a seeded store operation for
    /// a seeded while, and again after as many operations once healed; in one of those lives
    /// in three the driver kills the worker during its first outage.
    fn outage_plan(&mut self) -> (Option<Outage>, Option<Duration>) {
        if !self.cfg.full_disk || self.finished() {
            return (None, None);
        }
        let gap = self.gap;
        let rng = &mut self.rng;
        if !rng.chance(3, 4) {
            return (None, None);
        }
        let fault = if rng.chance(1, 2) {
            DiskFault::NoSpace
        } else {
            DiskFault::FailingSync
        };
        let outage = Outage {
            fault,
            // A commit is a handful of store operations.
            after_ops: rng.range(2 * gap, 8 * gap),
            for_ms: rng.range(10, 400),
        };
        let kill = (self.report.kills.total() < self.cfg.kills && rng.chance(1, 3))
            .then(|| Duration::from_millis(rng.range(0, outage.for_ms)));
        (Some(outage), kill)
    }

    fn kill_plan(&mut self) -> KillPlan {
        if self.report.kills.total() >= self.cfg.kills || self.finished() {
            return KillPlan::None;
        }
        let gap = self.gap;
        let rng = &mut self.rng;
        // The first life half the time: a kill while the store file is being created.
        let startup = if self.lives == 1 { 2 } else { 8 };
        if rng.chance(1, startup) {
            return KillPlan::Startup(Duration::from_millis(rng.range(0, 40)));
        }
        // Full-disk mode leaves more lives to the outages.
        let cuts = if self.cfg.full_disk { 1 } else { 2 };
        if self.cfg.power_loss && rng.chance(cuts, 3) {
            // A group commit makes a handful of store operations (page writes, then one sync);
            // aim anywhere in the next few commits, mid-commit included.
            return KillPlan::Exact(Fault::PowerCut(rng.range(1, 6 * gap)), 4 * gap);
        }
        if self.cfg.exact_faults && rng.chance(1, 2) {
            let fault = match rng.range(0, 2) {
                0 => Fault::BeforeCommit(rng.range(1, 3 * gap)),
                1 => Fault::AfterCommit(rng.range(1, 3 * gap)),
                _ => Fault::AfterEffect(rng.range(1, gap)),
            };
            return KillPlan::Exact(fault, 4 * gap);
        }
        KillPlan::AfterEvents(
            rng.range(1, 2 * gap),
            Duration::from_millis(rng.range(0, 30)),
        )
    }

    fn send(&mut self, life: &mut Life, line: &str) {
        if let Some(stdin) = &mut life.stdin {
            // A dead worker's pipe refuses the write; its end of input is noticed separately.
            let _ = writeln!(stdin, "{line}");
        }
    }

    fn request(&mut self, life: &mut Life, req: Request) {
        self.next_req += 1;
        let id = self.next_req;
        self.inflight.insert(id, req);
        let line = match req {
            Request::Start(i) => format!("start {id} {i}"),
            Request::Signal(i) => {
                let s = &self.plans[i].signals[self.runs[i].next];
                self.runs[i].inflight = Some(id);
                self.report.signals.sent += 1;
                if self.runs[i].resend {
                    self.report.signals.resent += 1;
                }
                format!("signal {id} {i} {} {} {}", s.name, s.key, s.payload)
            }
        };
        self.send(life, &line);
    }

    /// Sends what is due: starts up to the window, then each run's next signal.
    fn pump(&mut self, life: &mut Life) {
        let active = self
            .runs
            .iter()
            .zip(&self.plans)
            .filter(|(r, p)| r.start_sent && !(r.done && r.next == p.signals.len()))
            .count();
        let now = Instant::now();
        let due: Vec<usize> = self
            .retry_starts
            .iter()
            .filter(|(_, at)| *at <= now)
            .map(|(i, _)| *i)
            .collect();
        self.retry_starts.retain(|(_, at)| *at > now);
        for i in due {
            self.request(life, Request::Start(i));
        }
        for _ in active..self.cfg.window {
            if self.next_run == self.plans.len() {
                break;
            }
            let i = self.next_run;
            self.next_run += 1;
            self.runs[i].start_sent = true;
            self.request(life, Request::Start(i));
        }
        let now = Instant::now();
        for i in 0..self.runs.len() {
            let r = &self.runs[i];
            let Some(s) = self.plans[i].signals.get(r.next) else {
                continue;
            };
            let due = r.started
                && r.inflight.is_none()
                && r.ready_at.is_some_and(|at| now >= at)
                && (s.role != Role::Late || r.done);
            if due {
                self.request(life, Request::Signal(i));
            }
        }
    }

    fn on_line(&mut self, life: &mut Life, line: &str) {
        let words: Vec<&str> = line.splitn(4, ' ').collect();
        match words.as_slice() {
            ["ready", _pid] => {
                life.ready = true;
                // Re-attach to every unfinished run; a start is idempotent.
                for i in 0..self.runs.len() {
                    if self.runs[i].start_sent && !self.runs[i].done {
                        self.request(life, Request::Start(i));
                    }
                }
            }
            ["ack", req, answer @ ..] => {
                self.event(life);
                let Ok(req) = req.parse::<u64>() else {
                    self.violation(format!("unreadable worker line `{line}`"));
                    return;
                };
                match self.inflight.remove(&req) {
                    Some(Request::Start(i)) => self.on_started(i, &answer.join(" ")),
                    Some(Request::Signal(i)) => self.on_signal(i, req, &answer.join(" ")),
                    None => self.violation(format!("answer to an unknown request: `{line}`")),
                }
            }
            ["outage", spec] => {
                match spec.parse::<Outage>().map(|o| o.fault) {
                    Ok(DiskFault::NoSpace) => self.report.outages.no_space += 1,
                    Ok(_) => self.report.outages.failing_sync += 1,
                    Err(e) => self.violation(format!("unreadable worker line `{line}`: {e}")),
                }
                life.in_outage = true;
                if let Some(after) = life.kill_in_outage
                    && life.kill_at.is_none()
                {
                    life.kill_at = Some(Instant::now() + after);
                    life.outage_kill = true;
                }
            }
            ["healed"] => {
                self.report.outages.healed += 1;
                life.in_outage = false;
            }
            ["done", index] => {
                self.event(life);
                if let Ok(i) = index.parse::<usize>()
                    && let Some(r) = self.runs.get_mut(i)
                {
                    r.done = true;
                }
            }
            ["failed", index, message @ ..] => {
                self.event(life);
                if let Ok(i) = index.parse::<usize>()
                    && let Some(r) = self.runs.get_mut(i)
                {
                    r.done = true;
                    let run = &self.plans[i].run_id;
                    let message = message.join(" ");
                    self.violation(format!("{run}: failed without an output: {message}"));
                }
            }
            _ => self.violation(format!("unreadable worker line `{line}`")),
        }
    }

    /// Counts an answer toward the kill trigger.
    fn event(&mut self, life: &mut Life) {
        life.events += 1;
        let trigger = match life.plan {
            KillPlan::AfterEvents(n, delay) if life.events == n => Some(delay),
            KillPlan::Exact(_, fallback) if life.events == fallback => Some(Duration::ZERO),
            _ => None,
        };
        if let Some(delay) = trigger
            && life.kill_at.is_none()
        {
            life.kill_at = Some(Instant::now() + delay);
        }
    }

    fn on_started(&mut self, i: usize, answer: &str) {
        if answer.starts_with("refused ") && self.cfg.full_disk {
            // Nothing acknowledged: the caller tries again, as a client of a full disk would.
            self.report.outages.refused += 1;
            self.retry_starts
                .push((i, Instant::now() + Duration::from_millis(10)));
            return;
        }
        if answer != "ok" {
            let run = &self.plans[i].run_id;
            self.violation(format!("{run}: start refused: {answer}"));
            return;
        }
        let r = &mut self.runs[i];
        if !r.started {
            r.started = true;
            r.ready_at = self.plans[i]
                .signals
                .first()
                .map(|s| Instant::now() + Duration::from_millis(s.delay_ms));
        }
    }

    fn on_signal(&mut self, i: usize, req: u64, answer: &str) {
        let r = &self.runs[i];
        if r.inflight != Some(req) {
            return;
        }
        if answer.starts_with("refused ") && self.cfg.full_disk {
            // Sent again; a refusal whose sync failed may have been stored after all, so the
            // re-send counts as one (`duplicate` and `finished` are then fair answers).
            self.report.outages.refused += 1;
            let r = &mut self.runs[i];
            r.inflight = None;
            r.resend = true;
            r.ready_at = Some(Instant::now() + Duration::from_millis(10));
            return;
        }
        let s: &PlannedSignal = &self.plans[i].signals[r.next];
        let ok = self.report.signals.judge(s.role, r.resend, answer);
        if !ok {
            let what = format!(
                "{}: {:?} signal `{}` key {} payload {} (re-sent: {}) answered `{answer}`",
                self.plans[i].run_id, s.role, s.name, s.key, s.payload, r.resend
            );
            self.violation(what);
        }
        let r = &mut self.runs[i];
        r.inflight = None;
        r.resend = false;
        r.next += 1;
        r.ready_at = self.plans[i]
            .signals
            .get(r.next)
            .map(|s| Instant::now() + Duration::from_millis(s.delay_ms));
    }

    fn violation(&mut self, v: String) {
        if self.cfg.verbose {
            eprintln!("violation: {v}");
        }
        self.report.violations.push(v);
    }

    /// After a worker died: every request it did not answer is sent again to the next one.
    fn requeue(&mut self) {
        self.inflight.clear();
        let now = Instant::now();
        for r in &mut self.runs {
            if r.inflight.take().is_some() {
                r.resend = true;
                r.ready_at = Some(now);
            }
        }
    }

    fn kill(&mut self, life: &mut Life, rx: &Receiver<(u64, Msg)>) -> Result<(), String> {
        // Child::kill sends SIGKILL.
        let _ = life.child.kill();
        life.child.wait().map_err(|e| e.to_string())?;
        let kills = &mut self.report.kills;
        let how = match life.plan {
            _ if life.outage_kill && life.in_outage => {
                kills.during_outage += 1;
                "during a device outage"
            }
            KillPlan::Startup(_) if !life.ready => {
                kills.startup += 1;
                "during startup"
            }
            _ => {
                kills.random += 1;
                "random"
            }
        };
        if self.cfg.verbose {
            eprintln!(
                "kill {} ({how}) after {} answers, {:?} into life {}",
                kills.total(),
                life.events,
                life.spawned.elapsed(),
                life.id
            );
        }
        self.drain(life, rx);
        self.requeue();
        Ok(())
    }

    /// Handles what the dead worker printed before it died, up to its end of output.
    fn drain(&mut self, life: &mut Life, rx: &Receiver<(u64, Msg)>) {
        loop {
            match rx.recv_timeout(Duration::from_secs(10)) {
                Ok((id, Msg::Line(line))) if id == life.id => self.on_line(life, &line),
                Ok((id, Msg::Eof)) if id == life.id => return,
                Ok(_) => {}
                Err(_) => return,
            }
        }
    }

    fn died_by_itself(&mut self, life: &Life, status: ExitStatus) {
        let killed = matches!(status.signal(), Some(9 | 6));
        let kills = &mut self.report.kills;
        match life.plan {
            KillPlan::Exact(fault, _) if killed => {
                match fault {
                    Fault::BeforeCommit(_) => kills.before_commit += 1,
                    Fault::AfterCommit(_) => kills.after_commit += 1,
                    Fault::AfterEffect(_) => kills.after_effect += 1,
                    Fault::PowerCut(_) => kills.power_cut += 1,
                }
                if self.cfg.verbose {
                    eprintln!(
                        "kill {} (exact, {fault}) after {} answers, {:?} into life {}",
                        kills.total(),
                        life.events,
                        life.spawned.elapsed(),
                        life.id
                    );
                }
            }
            _ => {
                let log =
                    std::fs::read_to_string(self.cfg.dir.join("worker.log")).unwrap_or_default();
                let tail: Vec<&str> = log.lines().rev().take(10).collect();
                self.violation(format!(
                    "worker life {} exited by itself with {status}; worker.log ends with {tail:?}",
                    life.id
                ));
            }
        }
    }

    /// Ends the last worker cleanly: end of input makes it shut the engine down.
    fn stop(&mut self, mut life: Life, rx: &Receiver<(u64, Msg)>) -> Result<(), String> {
        drop(life.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = life.child.try_wait().map_err(|e| e.to_string())? {
                if !status.success() {
                    self.violation(format!("the last worker exited with {status}"));
                }
                break;
            }
            if Instant::now() > deadline {
                self.violation(
                    "the last worker did not exit within 30 s of its input ending".into(),
                );
                let _ = life.child.kill();
                let _ = life.child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.drain(&mut life, rx);
        Ok(())
    }
}

/// Forwards a worker's stdout to the driver's channel line by line, tagged with the worker's
/// life, then an end-of-file marker: the driver tells a worker's last words from a later
/// life's first ones by that tag.
pub(crate) fn forward_lines(stdout: std::process::ChildStdout, tx: Sender<(u64, Msg)>, life: u64) {
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send((life, Msg::Line(line))).is_err() {
                return;
            }
        }
        let _ = tx.send((life, Msg::Eof));
    });
}
