//! Multi-worker torture: several worker processes in shared mode on one PostgreSQL database
//! (a throwaway cluster of its own), fed the same seeded workload as the single-worker
//! torture. Every request goes to a random live worker, which starts the run or sends the
//! signal through the shared store whether or not it ends up driving that run. The driver
//! SIGKILLs random workers (restarting each at once), and stops the database server at once
//! and starts it again once per torture run. At the end the same check runs: every run
//! finished with its crash-free outcome, every effect once in the (shared) ledger, no
//! acknowledged signal lost.
//!
//! ```text
//! cargo run -p torture -- --workers 3 --runs 300 --kills 30 --seed 7
//! ```

use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use workflow_postgres::testing::TestCluster;

use crate::check;
use crate::driver::{Msg, Report};
use crate::workload::{self, Rng, Role, RunPlan};

/// What a multi-worker torture run does.
#[derive(Debug, Clone)]
pub struct MultiConfig {
    /// Seeds the workload, the kill schedule and the database restart.
    pub seed: u64,
    /// How many runs the workload has.
    pub runs: usize,
    /// How many workers to kill in all.
    pub kills: usize,
    /// Worker processes at once.
    pub workers: usize,
    /// How many runs are in flight at once.
    pub window: usize,
    /// Stop the database server at once and start it again, once, mid-run.
    pub restart_database: bool,
    /// The data directory (the shared ledger, the workers' log); empty or missing.
    pub dir: PathBuf,
    /// The worker executable: this crate's `torture` binary.
    pub worker: PathBuf,
    /// How long without any progress counts as stuck.
    pub stall: Duration,
    /// Print each kill to stderr.
    pub verbose: bool,
}

#[derive(Debug, Default)]
struct RunState {
    start_sent: bool,
    started: bool,
    done: bool,
    /// The worker whose result wait reports `done`, once a start was acknowledged.
    watcher: Option<u64>,
    /// The run must be started (or re-attached) again at this time.
    start_at: Option<Instant>,
    next: usize,
    inflight: Option<u64>,
    ready_at: Option<Instant>,
    resend: bool,
    errors: u32,
}

#[derive(Debug, Clone, Copy)]
enum Request {
    Start(usize),
    Signal(usize),
}

struct Worker {
    life: u64,
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    ready: bool,
}

struct Multi<'a> {
    cfg: &'a MultiConfig,
    url: String,
    plans: Vec<RunPlan>,
    runs: Vec<RunState>,
    rng: Rng,
    report: Report,
    workers: Vec<Worker>,
    inflight: HashMap<u64, (u64, Request)>,
    next_req: u64,
    next_run: usize,
    lives: u64,
    events: u64,
    gap: u64,
    next_kill: u64,
    restart_at: Option<u64>,
    tx: Sender<(u64, Msg)>,
}

/// Runs the multi-worker torture and its check.
///
/// # Errors
/// If the database or a worker cannot be started at all; whatever the engine does wrong is a
/// violation in the report instead.
pub fn drive_multi(cfg: &MultiConfig) -> Result<Report, String> {
    let began = Instant::now();
    std::fs::create_dir_all(&cfg.dir).map_err(|e| format!("{}: {e}", cfg.dir.display()))?;
    // A cluster of its own: restarting it must not disturb anyone else's.
    let cluster = TestCluster::start().map_err(|e| format!("the PostgreSQL cluster: {e}"))?;
    let url = cluster.create_database();
    let plans = workload::plan(cfg.seed, cfg.runs);
    let events: u64 = plans.iter().map(|p| p.signals.len() as u64 + 2).sum();
    let gap = (events / (cfg.kills as u64 + 1)).max(1);
    let mut rng = Rng::derive(cfg.seed, u64::MAX);
    let restart_at = cfg
        .restart_database
        .then(|| rng.range(events / 4, events / 2 + 1));
    let next_kill = rng.range(1, 2 * gap);
    let (tx, rx) = mpsc::channel();
    let mut m = Multi {
        cfg,
        url: url.clone(),
        runs: plans.iter().map(|_| RunState::default()).collect(),
        plans,
        rng,
        report: Report {
            seed: cfg.seed,
            runs: cfg.runs,
            workers: cfg.workers,
            ..Report::default()
        },
        workers: Vec::new(),
        inflight: HashMap::new(),
        next_req: 0,
        next_run: 0,
        lives: 0,
        events: 0,
        gap,
        next_kill,
        restart_at,
        tx,
    };
    for i in 0..cfg.workers {
        let w = m.spawn(&format!("w{i}"))?;
        m.workers.push(w);
    }
    m.run(&rx, &cluster)?;
    m.stop_all(&rx);
    let mut report = m.report;
    if let Err(e) = check::check_shared(&cfg.dir, &url, &m.plans, &mut report) {
        report.violations.push(format!("the check failed: {e}"));
    }
    report.elapsed = began.elapsed();
    drop(cluster);
    Ok(report)
}

impl Multi<'_> {
    fn spawn(&mut self, name: &str) -> Result<Worker, String> {
        self.lives += 1;
        self.report.lives += 1;
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.cfg.dir.join("worker.log"))
            .map_err(|e| format!("worker.log: {e}"))?;
        let mut child = Command::new(&self.cfg.worker)
            .arg("worker")
            .arg("--dir")
            .arg(&self.cfg.dir)
            .args(["--seed", &self.cfg.seed.to_string()])
            .args(["--runs", &self.cfg.runs.to_string()])
            .args(["--pg", &self.url])
            .args(["--name", &format!("{name}.{}", self.lives)])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", self.cfg.worker.display()))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let stdin = child.stdin.take();
        let life = self.lives;
        crate::driver::forward_lines(stdout, self.tx.clone(), life);
        Ok(Worker {
            life,
            name: name.to_owned(),
            child,
            stdin,
            ready: false,
        })
    }

    fn finished(&self) -> bool {
        self.next_run == self.plans.len()
            && self
                .runs
                .iter()
                .zip(&self.plans)
                .all(|(r, p)| r.done && r.next == p.signals.len())
    }

    fn run(&mut self, rx: &Receiver<(u64, Msg)>, cluster: &TestCluster) -> Result<(), String> {
        let mut last_progress = Instant::now();
        while !self.finished() {
            match rx.recv_timeout(Duration::from_millis(5)) {
                Ok((life, Msg::Line(line))) => {
                    if self.on_line(life, &line) {
                        last_progress = Instant::now();
                    }
                }
                Ok((life, Msg::Eof)) => {
                    if let Some(at) = self.workers.iter().position(|w| w.life == life) {
                        let mut w = self.workers.remove(at);
                        let status = w.child.wait().map_err(|e| e.to_string())?;
                        self.violation(format!(
                            "worker {} (life {life}) exited by itself with {status}",
                            w.name
                        ));
                        self.orphan(life);
                        let fresh = self.spawn(&w.name)?;
                        self.workers.push(fresh);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return Err("channel closed".into()),
            }
            self.pump();
            if self.report.kills.random < self.cfg.kills && self.events >= self.next_kill {
                self.kill_one(rx)?;
                self.next_kill = self.events + self.rng.range(1, 2 * self.gap);
            }
            if self.restart_at.is_some_and(|at| self.events >= at) {
                self.restart_at = None;
                self.restart_database(cluster)?;
                last_progress = Instant::now();
            }
            if last_progress.elapsed() > self.cfg.stall {
                let left: Vec<&str> = self
                    .runs
                    .iter()
                    .zip(&self.plans)
                    .filter(|(r, p)| r.start_sent && !(r.done && r.next == p.signals.len()))
                    .map(|(_, p)| p.run_id.as_str())
                    .take(20)
                    .collect();
                self.violation(format!(
                    "stalled: no progress for {:?} with runs unfinished: {left:?}",
                    self.cfg.stall
                ));
                return Ok(());
            }
        }
        Ok(())
    }

    fn restart_database(&mut self, cluster: &TestCluster) -> Result<(), String> {
        cluster
            .halt()
            .map_err(|e| format!("stopping the database: {e}"))?;
        let down = Duration::from_millis(self.rng.range(100, 1_500));
        if self.cfg.verbose {
            eprintln!("database stopped for {down:?}");
        }
        std::thread::sleep(down);
        cluster
            .resume()
            .map_err(|e| format!("starting the database again: {e}"))?;
        self.report.database_restarts += 1;
        Ok(())
    }

    fn kill_one(&mut self, rx: &Receiver<(u64, Msg)>) -> Result<(), String> {
        if self.workers.is_empty() {
            return Ok(());
        }
        let at = self.rng.range(0, self.workers.len() as u64 - 1) as usize;
        let mut w = self.workers.remove(at);
        let _ = w.child.kill();
        w.child.wait().map_err(|e| e.to_string())?;
        self.report.kills.random += 1;
        if self.cfg.verbose {
            eprintln!(
                "kill {} of worker {} (life {}) after {} answers",
                self.report.kills.random, w.name, w.life, self.events
            );
        }
        // What it printed before it died still counts (answers it gave were given).
        loop {
            match rx.recv_timeout(Duration::from_secs(10)) {
                Ok((life, Msg::Line(line))) => {
                    self.on_line(life, &line);
                }
                Ok((life, Msg::Eof)) if life == w.life => break,
                Ok(_) => {}
                Err(_) => break,
            }
        }
        self.orphan(w.life);
        let fresh = self.spawn(&w.name)?;
        self.workers.push(fresh);
        Ok(())
    }

    /// A worker died: what it did not answer is sent again, and the runs it watched are
    /// re-attached through another worker.
    fn orphan(&mut self, life: u64) {
        let now = Instant::now();
        let lost: Vec<(u64, Request)> = self
            .inflight
            .iter()
            .filter(|(_, (l, _))| *l == life)
            .map(|(id, (_, r))| (*id, *r))
            .collect();
        for (id, req) in lost {
            self.inflight.remove(&id);
            match req {
                Request::Start(i) => self.runs[i].start_at = Some(now),
                Request::Signal(i) => {
                    let r = &mut self.runs[i];
                    if r.inflight == Some(id) {
                        r.inflight = None;
                        r.resend = true;
                        r.ready_at = Some(now);
                    }
                }
            }
        }
        for r in &mut self.runs {
            if r.watcher == Some(life) && !r.done {
                r.watcher = None;
                r.start_at = Some(now);
            }
        }
    }

    fn pick(&mut self) -> Option<usize> {
        let ready: Vec<usize> = (0..self.workers.len())
            .filter(|&i| self.workers[i].ready)
            .collect();
        if ready.is_empty() {
            return None;
        }
        let k = self.rng.range(0, ready.len() as u64 - 1) as usize;
        Some(ready[k])
    }

    fn request(&mut self, req: Request) -> bool {
        let Some(w) = self.pick() else { return false };
        self.next_req += 1;
        let id = self.next_req;
        let life = self.workers[w].life;
        self.inflight.insert(id, (life, req));
        let line = match req {
            Request::Start(i) => {
                self.runs[i].start_at = None;
                format!("start {id} {i}")
            }
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
        if let Some(stdin) = &mut self.workers[w].stdin {
            // A dead worker's pipe refuses the write; its end of output is noticed separately.
            let _ = writeln!(stdin, "{line}");
        }
        true
    }

    fn pump(&mut self) {
        let now = Instant::now();
        let active = self
            .runs
            .iter()
            .zip(&self.plans)
            .filter(|(r, p)| r.start_sent && !(r.done && r.next == p.signals.len()))
            .count();
        for i in 0..self.runs.len() {
            if self.runs[i].start_at.is_some_and(|at| at <= now) && !self.request(Request::Start(i))
            {
                return;
            }
        }
        for _ in active..self.cfg.window {
            if self.next_run == self.plans.len() {
                break;
            }
            let i = self.next_run;
            if !self.request(Request::Start(i)) {
                return;
            }
            self.next_run += 1;
            self.runs[i].start_sent = true;
        }
        for i in 0..self.runs.len() {
            let r = &self.runs[i];
            let Some(s) = self.plans[i].signals.get(r.next) else {
                continue;
            };
            let due = r.started
                && r.inflight.is_none()
                && r.ready_at.is_some_and(|at| now >= at)
                && (s.role != Role::Late || r.done);
            if due && !self.request(Request::Signal(i)) {
                return;
            }
        }
    }

    /// Handles a worker's line; whether it was progress.
    fn on_line(&mut self, life: u64, line: &str) -> bool {
        let words: Vec<&str> = line.splitn(4, ' ').collect();
        match words.as_slice() {
            ["ready", _pid] => {
                if let Some(w) = self.workers.iter_mut().find(|w| w.life == life) {
                    w.ready = true;
                }
                false
            }
            ["ack", req, answer @ ..] => {
                self.events += 1;
                let Ok(req) = req.parse::<u64>() else {
                    self.violation(format!("unreadable worker line `{line}`"));
                    return false;
                };
                match self.inflight.remove(&req) {
                    Some((_, Request::Start(i))) => self.on_started(i, life, &answer.join(" ")),
                    Some((_, Request::Signal(i))) => self.on_signal(i, req, &answer.join(" ")),
                    // Answered after the driver gave up on it (never: only deaths requeue).
                    None => false,
                }
            }
            ["done", index] => {
                self.events += 1;
                if let Ok(i) = index.parse::<usize>()
                    && let Some(r) = self.runs.get_mut(i)
                {
                    r.done = true;
                }
                true
            }
            ["failed", index, message @ ..] => {
                if let Ok(i) = index.parse::<usize>()
                    && let Some(r) = self.runs.get_mut(i)
                {
                    r.done = true;
                    let run = self.plans[i].run_id.clone();
                    self.violation(format!(
                        "{run}: failed without an output: {}",
                        message.join(" ")
                    ));
                }
                true
            }
            _ => {
                self.violation(format!("unreadable worker line `{line}`"));
                false
            }
        }
    }

    fn retry(&mut self, i: usize, what: &str, answer: &str) -> bool {
        self.report.retried_requests += 1;
        let r = &mut self.runs[i];
        r.errors += 1;
        if r.errors > 400 {
            let run = self.plans[i].run_id.clone();
            self.violation(format!("{run}: {what} keeps failing: {answer}"));
            return false;
        }
        false
    }

    fn on_started(&mut self, i: usize, life: u64, answer: &str) -> bool {
        if answer != "ok" {
            // The database was down, or a commit's outcome was unknown: a start is idempotent,
            // so it is sent again.
            self.runs[i].start_at = Some(Instant::now() + Duration::from_millis(50));
            return self.retry(i, "its start", answer);
        }
        let r = &mut self.runs[i];
        r.watcher = Some(life);
        if !r.started {
            r.started = true;
            r.ready_at = self.plans[i]
                .signals
                .first()
                .map(|s| Instant::now() + Duration::from_millis(s.delay_ms));
        }
        true
    }

    fn on_signal(&mut self, i: usize, req: u64, answer: &str) -> bool {
        if self.runs[i].inflight != Some(req) {
            return false;
        }
        let s = &self.plans[i].signals[self.runs[i].next];
        if answer.starts_with("error ") {
            // Unknown outcome (a commit whose connection dropped may have landed): sent again,
            // so `duplicate` and `finished` become fair answers, as after a kill.
            let r = &mut self.runs[i];
            r.inflight = None;
            r.resend = true;
            r.ready_at = Some(Instant::now() + Duration::from_millis(50));
            return self.retry(i, &format!("signal `{}`", s.name), answer);
        }
        let resend = self.runs[i].resend;
        let ok = self.report.signals.judge(s.role, resend, answer);
        if !ok {
            let what = format!(
                "{}: {:?} signal `{}` key {} payload {} (re-sent: {resend}) answered `{answer}`",
                self.plans[i].run_id, s.role, s.name, s.key, s.payload
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
        true
    }

    fn violation(&mut self, v: String) {
        if self.cfg.verbose {
            eprintln!("violation: {v}");
        }
        self.report.violations.push(v);
    }

    /// Ends every worker cleanly: end of input makes it shut its engine down.
    fn stop_all(&mut self, rx: &Receiver<(u64, Msg)>) {
        for w in &mut self.workers {
            drop(w.stdin.take());
        }
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut workers = std::mem::take(&mut self.workers);
        for w in &mut workers {
            loop {
                match w.child.try_wait() {
                    Ok(Some(status)) => {
                        if !status.success() {
                            self.violation(format!("worker {} exited with {status}", w.name));
                        }
                        break;
                    }
                    Ok(None) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    _ => {
                        self.violation(format!(
                            "worker {} did not exit within 30 s of its input ending",
                            w.name
                        ));
                        let _ = w.child.kill();
                        let _ = w.child.wait();
                        break;
                    }
                }
            }
        }
        while let Ok((life, Msg::Line(line))) = rx.recv_timeout(Duration::from_millis(100)) {
            self.on_line(life, &line);
        }
    }
}
