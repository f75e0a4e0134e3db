//! The final check: the store and the ledger against what a crash-free execution gives.
//!
//! Opens the store with no workflow registered, so that nothing resumes and nothing runs while
//! it is read, then for every run of the plan: it exists, it completed with the expected
//! output, its waits consumed exactly the expected signals in order (none twice, none lost, no
//! duplicate or late one); and for the ledger: every expected effect was applied exactly once,
//! nothing else was applied, and every key always carried the same effect.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use workflow_runtime::{Engine, EngineError, RunStatus, TraceEvent, TraceKind};

use crate::driver::Report;
use crate::ledger::{self, Event};
use crate::worker::STORE;
use crate::workload::{RunPlan, expected};

/// Checks the store and the ledger in `dir` against `plans`, adding figures and violations to
/// `report`.
///
/// # Errors
/// If the store or the ledger cannot be read at all.
pub fn check(dir: &Path, plans: &[RunPlan], report: &mut Report) -> Result<(), String> {
    check_in(dir, None, plans, report)
}

/// [`check`] for multi-worker mode: the runs are in the PostgreSQL database at `url`, the
/// ledger in `dir`.
///
/// # Errors
/// As [`check`].
pub fn check_shared(
    dir: &Path,
    url: &str,
    plans: &[RunPlan],
    report: &mut Report,
) -> Result<(), String> {
    check_in(dir, Some(url), plans, report)
}

fn check_in(
    dir: &Path,
    url: Option<&str>,
    plans: &[RunPlan],
    report: &mut Report,
) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let traces = rt.block_on(read_traces(dir, url, plans))?;
    let mut expected_effects: HashSet<String> = HashSet::new();
    for (plan, trace) in plans.iter().zip(&traces) {
        let want = expected(plan);
        expected_effects.extend(want.effects.iter().cloned());
        let Some((status, trace)) = trace else {
            report
                .violations
                .push(format!("{}: missing from the store", plan.run_id));
            continue;
        };
        count(trace, report);
        if *status != RunStatus::Completed {
            report
                .violations
                .push(format!("{}: status {status}", plan.run_id));
        }
        check_run(plan, &want.output, &want.received, trace, report);
    }
    check_ledger(dir, &expected_effects, report)
}

/// Every run's status and trace, `None` for a run missing from the store.
type Runs = Vec<Option<(RunStatus, Vec<TraceEvent>)>>;

async fn read_traces(dir: &Path, url: Option<&str>, plans: &[RunPlan]) -> Result<Runs, String> {
    let engine = match url {
        None => Engine::open(dir.join(STORE)).await,
        Some(url) => {
            let url = url.to_owned();
            let store = tokio::task::spawn_blocking(move || workflow_postgres::PgStore::open(&url))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| format!("opening the database for the check: {e}"))?;
            Engine::builder().open_store(store).await
        }
    }
    .map_err(|e| format!("opening the store for the check: {e}"))?;
    let mut out = Vec::with_capacity(plans.len());
    for plan in plans {
        // Unfinished runs of a workflow this engine does not know report `Incompatible`;
        // finished ones their stored status.
        let read = engine
            .status(&plan.run_id)
            .and_then(|status| Ok((status, engine.trace(&plan.run_id)?)));
        match read {
            Ok(found) => out.push(Some(found)),
            Err(EngineError::UnknownRun { .. }) => out.push(None),
            Err(e) => return Err(format!("{}: {e}", plan.run_id)),
        }
    }
    engine.shutdown().await;
    Ok(out)
}

/// Adds a run's transitions to the totals: every commit of a run moves its checkpoint seq,
/// except a retried attempt, a buffered signal and a refused duplicate, which commit at the
/// same seq.
fn count(trace: &[TraceEvent], report: &mut Report) {
    let checkpoints: HashSet<u64> = trace.iter().map(|e| e.checkpoint).collect();
    let same_seq = trace
        .iter()
        .filter(|e| {
            matches!(
                e.kind,
                TraceKind::StepAttemptFailed { .. }
                    | TraceKind::SignalBuffered { .. }
                    | TraceKind::SignalDuplicate { .. }
            )
        })
        .count();
    report.transitions += checkpoints.len() + same_seq;
    report.trace_events += trace.len();
    report.retried_attempts += trace
        .iter()
        .filter(|e| matches!(e.kind, TraceKind::StepAttemptFailed { .. }))
        .count();
}

fn check_run(
    plan: &RunPlan,
    output: &serde_json::Value,
    received: &[(String, u64)],
    trace: &[TraceEvent],
    report: &mut Report,
) {
    let run = &plan.run_id;
    let v = &mut report.violations;
    let finished: Vec<&TraceEvent> = trace
        .iter()
        .filter(|e| {
            matches!(
                e.kind,
                TraceKind::Completed { .. } | TraceKind::Failed { .. }
            )
        })
        .collect();
    match finished.as_slice() {
        [] => {
            let last = trace.last().map(ToString::to_string).unwrap_or_default();
            v.push(format!("{run}: stuck, never finished; last event: {last}"));
        }
        [e] => match &e.kind {
            TraceKind::Completed { output: got } if got == output => {}
            TraceKind::Completed { output: got } => {
                v.push(format!("{run}: output {got}, expected {output}"));
            }
            other => v.push(format!("{run}: {other:?}, expected output {output}")),
        },
        many => v.push(format!("{run}: finished {} times", many.len())),
    }
    let got: Vec<(String, u64)> = trace
        .iter()
        .filter_map(|e| match &e.kind {
            TraceKind::SignalReceived {
                dedupe_key,
                payload,
                ..
            } => Some((
                dedupe_key.clone().unwrap_or_default(),
                payload.as_u64().unwrap_or(u64::MAX),
            )),
            _ => None,
        })
        .collect();
    if got != received {
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for (key, _) in &got {
            *seen.entry(key).or_default() += 1;
        }
        let twice: Vec<&&str> = seen
            .iter()
            .filter(|(_, n)| **n > 1)
            .map(|(k, _)| k)
            .collect();
        let lost: Vec<&String> = received
            .iter()
            .map(|(k, _)| k)
            .filter(|k| !seen.contains_key(k.as_str()))
            .collect();
        v.push(format!(
            "{run}: consumed signals {got:?}, expected {received:?} (consumed twice: {twice:?}, lost: {lost:?})"
        ));
    }
    // A buffered signal is accepted once: a second acceptance of its key would be a duplicate
    // let through.
    let mut accepted: HashSet<String> = HashSet::new();
    for e in trace {
        let key = match &e.kind {
            TraceKind::SignalBuffered { dedupe_key, .. } => dedupe_key.clone(),
            TraceKind::SignalReceived {
                dedupe_key,
                from_inbox: false,
                ..
            } => dedupe_key.clone(),
            _ => None,
        };
        if let Some(key) = key
            && !accepted.insert(key.clone())
        {
            v.push(format!("{run}: signal key {key} accepted twice"));
        }
    }
}

fn check_ledger(dir: &Path, expected: &HashSet<String>, report: &mut Report) -> Result<(), String> {
    let entries = ledger::read(&dir.join(ledger::FILE), false).map_err(|e| e.to_string())?;
    let v = &mut report.violations;
    let mut tags_by_key: HashMap<&str, &str> = HashMap::new();
    let mut applied: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for e in &entries {
        match tags_by_key.insert(&e.key, &e.tag) {
            Some(tag) if tag != e.tag => v.push(format!(
                "ledger: key {} carried `{tag}` and then `{}`",
                e.key, e.tag
            )),
            _ => {}
        }
        match e.event {
            Event::Applied => {
                report.effects += 1;
                applied.entry(&e.tag).or_default().push(&e.key);
            }
            Event::Deduplicated => report.deduplicated += 1,
        }
    }
    let mut keys_applied: HashMap<&str, usize> = HashMap::new();
    for keys in applied.values() {
        for k in keys {
            *keys_applied.entry(k).or_default() += 1;
        }
    }
    for (key, n) in keys_applied {
        if n > 1 {
            v.push(format!("ledger: key {key} applied {n} times"));
        }
    }
    for (tag, keys) in &applied {
        if keys.len() > 1 {
            v.push(format!(
                "ledger: effect `{tag}` applied {} times, under keys {keys:?}",
                keys.len()
            ));
        }
        if !expected.contains(*tag) {
            v.push(format!("ledger: effect `{tag}` applied but never expected"));
        }
    }
    let mut missing: Vec<&String> = expected
        .iter()
        .filter(|t| !applied.contains_key(t.as_str()))
        .collect();
    missing.sort();
    for tag in missing {
        v.push(format!("ledger: expected effect `{tag}` never applied"));
    }
    Ok(())
}
