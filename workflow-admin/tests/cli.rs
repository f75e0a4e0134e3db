//! The `workflow-admin` binary against a served admin API.

mod support;

use std::process::Command;

use support::{TOKEN, serve};
use workflow_runtime::RunStatus;

struct Out {
    ok: bool,
    stdout: String,
    stderr: String,
}

async fn cli(base: &str, args: &[&str]) -> Out {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_workflow-admin"));
    cmd.env("WORKFLOW_ADMIN_URL", base)
        .env("WORKFLOW_ADMIN_TOKEN", TOKEN)
        .args(args);
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    Out {
        ok: out.status.success(),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_subcommand_works() {
    let s = serve().await;
    let b = s.base.as_str();
    for (id, amount) in [("a", 10), ("b", 13), ("c", 20)] {
        s.engine.start(support::order, id, amount).await.unwrap();
    }
    workflow_runtime::testing::settle(&s.engine).await;

    let out = cli(b, &["runs", "--waiting-for", "approve"]).await;
    assert!(out.ok, "{}", out.stderr);
    assert!(out.stdout.starts_with("RUN"), "{}", out.stdout);
    assert_eq!(out.stdout.lines().count(), 4, "{}", out.stdout);
    assert!(out.stdout.contains("waiting (approve)"), "{}", out.stdout);

    let out = cli(b, &["--json", "runs", "--limit", "1"]).await;
    let page: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(page["next"], "a");

    let out = cli(b, &["signal", "a", "approve", "true", "--dedupe-key", "k"]).await;
    assert_eq!(out.stdout, "delivered\n", "{}", out.stderr);
    let out = cli(b, &["signal", "b", "approve", "true"]).await;
    assert!(out.ok, "{}", out.stderr);
    workflow_runtime::testing::settle(&s.engine).await;

    let out = cli(b, &["show", "a"]).await;
    assert!(out.stdout.contains("status   completed"), "{}", out.stdout);
    let out = cli(b, &["trace", "b", "--kind", "failed"]).await;
    assert_eq!(out.stdout.lines().count(), 1, "{}", out.stdout);
    let out = cli(b, &["retry", "b"]).await;
    assert!(out.ok, "{}", out.stderr);
    let out = cli(b, &["cancel", "c", "--reason", "asked"]).await;
    assert!(
        out.stdout.starts_with("c: cancelled (asked)"),
        "{}",
        out.stdout
    );
    assert_eq!(
        s.engine.status("c").unwrap(),
        RunStatus::Cancelled {
            reason: "asked".into()
        }
    );
    workflow_runtime::testing::settle(&s.engine).await;
    let out = cli(b, &["terminate", "b", "--reason", "give up"]).await;
    // b failed again at once (its amount is unlucky), so it cannot be terminated.
    assert!(!out.ok);
    let out = cli(b, &["purge", "c"]).await;
    assert_eq!(out.stdout, "purged c\n", "{}", out.stderr);
    let out = cli(b, &["purge", "--older-than-secs", "0"]).await;
    assert_eq!(out.stdout, "purged 2 run(s)\n", "{}", out.stderr);
    let out = cli(b, &["diagram", "order"]).await;
    assert!(
        out.stdout.starts_with("stateDiagram-v2\n"),
        "{}",
        out.stdout
    );
    let out = cli(b, &["diagram", "order", "--format", "dot"]).await;
    assert!(
        out.stdout.starts_with("digraph \"order\" {\n"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.ends_with("}\n"), "{}", out.stdout);
    let out = cli(
        b,
        &["diagram", "order", "--format", "svg", "--current", "Start"],
    )
    .await;
    assert!(out.stdout.starts_with("<svg "), "{}", out.stdout);
    assert!(
        out.stdout
            .contains("data-state=\"Start\" data-current=\"true\""),
        "{}",
        out.stdout
    );
    s.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_one_line() {
    let s = serve().await;
    let b = s.base.as_str();
    s.engine.start(support::order, "a", 1).await.unwrap();
    for args in [
        &["show", "nope"][..],
        &["retry", "a"],
        &["signal", "a", "approve", "{not json"],
        &["terminate", "a"],
        &["purge"],
    ] {
        let out = cli(b, args).await;
        assert!(!out.ok, "{args:?}");
        assert_eq!(out.stdout, "", "{args:?}");
        let lines: Vec<&str> = out.stderr.lines().collect();
        assert!(
            lines.len() == 1 || lines[0].starts_with("error:"),
            "{args:?}: {}",
            out.stderr
        );
        assert!(lines[0].starts_with("error:"), "{args:?}: {}", out.stderr);
    }
    let out = cli(b, &["show", "nope"]).await;
    assert_eq!(
        out.stderr,
        "error: no run with id `nope` exists (unknown_run, HTTP 404)\n"
    );
    let out = cli("http://127.0.0.1:1", &["runs"]).await;
    assert!(
        out.stderr.starts_with("error: cannot reach the admin API"),
        "{}",
        out.stderr
    );
    assert_eq!(out.stderr.lines().count(), 1);
    s.engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_subcommand_has_help() {
    for sub in [
        "runs",
        "show",
        "trace",
        "signal",
        "cancel",
        "terminate",
        "retry",
        "purge",
        "diagram",
    ] {
        let out = cli("http://127.0.0.1:1", &[sub, "--help"]).await;
        assert!(out.ok, "{sub}: {}", out.stderr);
        assert!(
            out.stdout.contains("Usage: workflow-admin"),
            "{sub}: {}",
            out.stdout
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedules_are_listed_paused_and_resumed_from_the_cli() {
    let s = serve().await;
    let b = s.base.as_str();
    let daily = workflow_runtime::Schedule::cron("0 6 * * *").unwrap();
    s.engine
        .schedule(support::order, "daily", daily, 7)
        .await
        .unwrap();

    let out = cli(b, &["schedules"]).await;
    assert!(out.ok, "{}", out.stderr);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", out.stdout);
    assert!(lines[0].starts_with("SCHEDULE"), "{}", out.stdout);
    assert!(lines[1].starts_with("daily"), "{}", out.stdout);
    assert!(lines[1].contains("cron `0 6 * * *`"), "{}", out.stdout);
    assert!(lines[1].contains("T06:00:00.000Z"), "{}", out.stdout);

    let out = cli(b, &["pause-schedule", "daily"]).await;
    assert!(out.ok, "{}", out.stderr);
    assert!(out.stdout.contains("paused"), "{}", out.stdout);
    assert!(s.engine.schedule_info("daily").unwrap().unwrap().paused);
    let out = cli(b, &["resume-schedule", "daily"]).await;
    assert!(out.stdout.contains("next "), "{}", out.stdout);
    let out = cli(b, &["pause-schedule", "nope"]).await;
    assert!(!out.ok);
    assert!(
        out.stderr.contains("no schedule has the id `nope`"),
        "{}",
        out.stderr
    );
}
