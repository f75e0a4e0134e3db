//! The refund-review app: a durable workflow engine and its HTTP API in one binary, with a
//! command-line client and a narrated crash demo.
//!
//! `cargo run --example refund_review` runs the demo; `-- --help` lists the commands.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use examples::refund::agent::dollars;
use examples::refund::client::{Client, ClientError};
use examples::refund::server::{ServeOptions, serve};
use examples::refund::worker::{Worker, wait_until};
use serde_json::{Value, json};
use workflow_runtime::format_time_ms;

const DEFAULT_ADDR: &str = "127.0.0.1:7878";
const DEFAULT_DATA_DIR: &str = "refund-review-data";

const HELP: &str = "\
refund_review: an AI-drafted refund waits for a human decision, durably.

Usage: refund_review [--data-dir DIR] [--addr ADDR] [COMMAND]

With no command, runs a narrated demo in a temporary directory: it starts `serve` as a child
process, kills it with SIGKILL while a review waits, restarts it, approves twice and shows
that exactly one refund was paid.

Commands:
  serve                              run the engine and the HTTP API on ADDR
  start <ticket-id> [--run-id ID]    start reviewing a ticket (T-1001 .. T-1005, or any T-<n>)
  approve <run-id> --reviewer ID [--amount CENTS] [--reason TEXT]
  reject <run-id> --reviewer ID --reason TEXT
  request-changes <run-id> --reviewer ID --reason TEXT
                                     decisions also take [--dedupe-key KEY] [--wait-id ID]
  status <run-id>                    where a review stands, and its outcome
  trace <run-id> [--json]            the review's decision path
  pending [--json]                   reviews waiting for a decision
  ledger [--json]                    refunds paid and steps executed

Options:
  --data-dir DIR   where `serve` keeps its store and ledgers (default: ./refund-review-data)
  --addr ADDR      the server's address (default: 127.0.0.1:7878, or $REFUND_REVIEW_ADDR);
                   `serve --addr 127.0.0.1:0` picks a free port and prints it first
  -h, --help       this text

Environment of `serve`: REFUND_REVIEW_CLOCK_OFFSET_SECS shifts its clock forward (tests use it
to let the 7-day window pass); REFUND_REVIEW_FAULT=after_payment kills it with SIGKILL right
after the payment provider paid and before the step's checkpoint (crash tests).";

/// Parsed command line: positional words and `--name value` options.
struct Args {
    words: Vec<String>,
    opts: HashMap<String, String>,
    flags: Vec<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut words = Vec::new();
    let mut opts = HashMap::new();
    let mut flags = Vec::new();
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "-h" | "--help" | "--json" => flags.push(a),
            s if s.starts_with("--") => {
                let name = s.trim_start_matches("--").to_owned();
                let known = [
                    "data-dir",
                    "addr",
                    "run-id",
                    "reviewer",
                    "amount",
                    "reason",
                    "dedupe-key",
                    "wait-id",
                ];
                if !known.contains(&name.as_str()) {
                    return Err(format!("unknown option `{s}`; see `refund_review --help`"));
                }
                let v = it.next().ok_or_else(|| format!("`{s}` needs a value"))?;
                opts.insert(name, v);
            }
            _ => words.push(a),
        }
    }
    Ok(Args { words, opts, flags })
}

impl Args {
    fn opt(&self, name: &str) -> Option<&str> {
        self.opts.get(name).map(String::as_str)
    }

    fn flag(&self, name: &str) -> bool {
        self.flags.iter().any(|f| f == name)
    }

    fn addr(&self) -> String {
        self.opt("addr")
            .map(str::to_owned)
            .or_else(|| std::env::var("REFUND_REVIEW_ADDR").ok())
            .unwrap_or_else(|| DEFAULT_ADDR.into())
    }

    fn arg(&self, i: usize, what: &str) -> Result<&str, String> {
        self.words
            .get(i)
            .map(String::as_str)
            .ok_or_else(|| format!("missing {what}; see `refund_review --help`"))
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let args = parse_args()?;
    if args.flag("-h") || args.flag("--help") {
        println!("{HELP}");
        return Ok(());
    }
    let Some(cmd) = args.words.first().cloned() else {
        return demo();
    };
    let client = Client::new(&args.addr());
    let json_out = args.flag("--json");
    let show = |v: &Value| println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
    match cmd.as_str() {
        "serve" => {
            let addr: SocketAddr = args
                .addr()
                .parse()
                .map_err(|e| format!("bad --addr `{}`: {e}", args.addr()))?;
            let data_dir = PathBuf::from(args.opt("data-dir").unwrap_or(DEFAULT_DATA_DIR));
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            rt.block_on(serve(ServeOptions { data_dir, addr }))
        }
        "start" => {
            let v = client
                .start(args.arg(1, "the ticket id")?, args.opt("run-id"))
                .map_err(err)?;
            println!(
                "started {} ({})",
                v["run_id"].as_str().unwrap_or("?"),
                status_line(&v["status"])
            );
            Ok(())
        }
        "approve" | "reject" | "request-changes" => {
            let run_id = args.arg(1, "the run id")?;
            let reviewer = args
                .opt("reviewer")
                .ok_or("a decision needs --reviewer ID")?;
            let status = match cmd.as_str() {
                "approve" => "approved",
                "reject" => "rejected",
                _ => "request_changes",
            };
            let mut body = json!({ "status": status, "reviewer_id": reviewer, "reason": args.opt("reason").unwrap_or("") });
            if let Some(a) = args.opt("amount") {
                let cents: u64 = a
                    .parse()
                    .map_err(|_| format!("--amount is a whole number of cents, not `{a}`"))?;
                body["approved_amount_cents"] = json!(cents);
            }
            if let Some(k) = args.opt("dedupe-key") {
                body["dedupe_key"] = json!(k);
            }
            if let Some(w) = args.opt("wait-id") {
                body["wait_id"] = json!(w);
            }
            let v = client.decide(run_id, &body).map_err(err)?;
            println!(
                "{status} for {run_id}: signal {}",
                v["signal"].as_str().unwrap_or("?")
            );
            Ok(())
        }
        "status" => {
            let v = client.status(args.arg(1, "the run id")?).map_err(err)?;
            if json_out {
                show(&v);
            } else {
                println!(
                    "{}: {}",
                    v["run_id"].as_str().unwrap_or("?"),
                    status_line(&v["status"])
                );
                if !v["outcome"].is_null() {
                    println!("outcome: {}", outcome_line(&v["outcome"]));
                }
            }
            Ok(())
        }
        "trace" => {
            let events = client.trace(args.arg(1, "the run id")?).map_err(err)?;
            if json_out {
                show(&serde_json::to_value(&events).unwrap_or_default());
            } else {
                for e in events {
                    println!("{e}");
                }
            }
            Ok(())
        }
        "pending" => {
            let pending = client.pending().map_err(err)?;
            if json_out {
                show(&serde_json::to_value(&pending).unwrap_or_default());
            } else if pending.is_empty() {
                println!("no review is waiting for a decision");
            } else {
                for p in pending {
                    println!("{}", pending_line(&p));
                }
            }
            Ok(())
        }
        "ledger" => {
            let l = client.ledgers().map_err(err)?;
            if json_out {
                show(&json!({ "payments": l.payments, "steps": l.steps }));
            } else {
                println!("refunds paid: {}", l.refunds_paid());
                for p in &l.payments {
                    println!(
                        "  {:?} {} {} key={} receipt={}",
                        p.event,
                        p.ticket_id,
                        dollars(p.amount_cents),
                        p.idempotency_key,
                        p.receipt_id
                    );
                }
                println!("step executions: {}", l.steps.len());
            }
            Ok(())
        }
        other => Err(format!(
            "unknown command `{other}`; see `refund_review --help`"
        )),
    }
}

fn err(e: ClientError) -> String {
    e.to_string()
}

fn status_line(v: &Value) -> String {
    match v["status"].as_str() {
        Some("waiting") => format!(
            "waiting for `{}` (wait {}) until {}",
            v["signal"].as_str().unwrap_or("?"),
            v["wait_id"].as_str().unwrap_or("?"),
            format_time_ms(v["deadline_ms"].as_u64().unwrap_or(0))
        ),
        Some("failed") => format!("failed: {}", v["message"].as_str().unwrap_or("?")),
        Some("incompatible") => format!("incompatible: {}", v["reason"].as_str().unwrap_or("?")),
        Some(s) => s.to_owned(),
        None => v.to_string(),
    }
}

fn outcome_line(v: &Value) -> String {
    match v["outcome"].as_str() {
        Some("refunded") => format!(
            "refunded {} (receipt {}, approved by {})",
            dollars(v["amount_cents"].as_u64().unwrap_or(0)),
            v["receipt_id"].as_str().unwrap_or("?"),
            v["reviewer_id"].as_str().unwrap_or("?")
        ),
        Some("not_approved") => format!(
            "not approved by {}: {}",
            v["reviewer_id"].as_str().unwrap_or("?"),
            v["reason"].as_str().unwrap_or("")
        ),
        Some("timed_out") => "timed out: nobody decided within 7 days; nothing paid".to_owned(),
        _ => v.to_string(),
    }
}

fn pending_line(p: &workflow_runtime::PendingWait) -> String {
    let m = &p.metadata;
    format!(
        "{} (wait {}): ticket {} for {}, {} [{}], decide by {}\n    {}",
        p.run_id,
        p.wait_id,
        m["ticket_id"].as_str().unwrap_or("?"),
        m["customer"].as_str().unwrap_or("?"),
        dollars(m["amount_cents"].as_u64().unwrap_or(0)),
        m["rule"].as_str().unwrap_or("?"),
        format_time_ms(p.deadline_ms),
        m["rationale"].as_str().unwrap_or("")
    )
}

fn demo() -> Result<(), String> {
    let dir = std::env::temp_dir().join(format!("refund-review-demo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let result = demo_in(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn demo_in(dir: &std::path::Path) -> Result<(), String> {
    println!(
        "Refund review: an AI agent drafts a refund, a human decides, the worker crashes in between."
    );
    println!("Data directory (store + ledgers): {}\n", dir.display());

    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut worker = Worker::spawn(&exe, dir, &[])?;
    println!(
        "1. Worker started (refund_review serve, pid {}) on {}",
        worker.pid(),
        worker.addr()
    );
    let client = worker.client();

    let run = "review-T-1001";
    client.start("T-1001", Some(run)).map_err(err)?;
    println!(
        "2. Ticket T-1001 (\"The blender arrived with a cracked jug.\"): review `{run}` started"
    );
    let pending = wait_until("the review to wait for a decision", || {
        client.pending().ok()?.into_iter().find(|p| p.run_id == run)
    })?;
    println!(
        "3. The agent loaded the ticket and the customer and drafted a refund; the run now waits:"
    );
    println!("   {}", pending_line(&pending));

    let pid = worker.pid();
    worker.kill9();
    println!("\n4. kill -9 {pid}: the worker died while the review was waiting (no shutdown ran)");

    let worker = Worker::spawn(&exe, dir, &[])?;
    let client = worker.client();
    let status = client.status(run).map_err(err)?;
    println!(
        "5. Worker restarted (pid {}) on {}",
        worker.pid(),
        worker.addr()
    );
    println!(
        "   {run} resumed from its checkpoint: {}",
        status_line(&status["status"])
    );

    let approval = json!({
        "status": "approved",
        "reviewer_id": "rev-ana",
        "reason": "photo of the cracked jug attached",
        "dedupe_key": "rev-ana-approve-T-1001",
        "wait_id": pending.wait_id,
    });
    let first = client.decide(run, &approval).map_err(err)?;
    println!(
        "\n6. rev-ana approves ({}): signal {}",
        dollars(pending.metadata["amount_cents"].as_u64().unwrap_or(0)),
        first["signal"].as_str().unwrap_or("?")
    );
    let second = client.decide(run, &approval).map_err(err)?;
    println!(
        "   The approval is sent again (a double click): signal {}, nothing changes",
        second["signal"].as_str().unwrap_or("?")
    );

    let done = wait_until("the review to finish", || {
        let s = client.status(run).ok()?;
        (!s["outcome"].is_null()).then_some(s)
    })?;
    match client.decide(
        run,
        &json!({ "status": "approved", "reviewer_id": "rev-bob" }),
    ) {
        Err(e) => println!("   A late approval from rev-bob: refused ({e})"),
        Ok(v) => println!("   A late approval from rev-bob: {v}"),
    }
    println!("\n7. Outcome: {}", outcome_line(&done["outcome"]));
    let ledgers = client.ledgers().map_err(err)?;
    println!(
        "   Payment ledger: {} refund(s) paid",
        ledgers.refunds_paid()
    );
    for p in &ledgers.payments {
        println!(
            "     {:?} {} key={}",
            p.event,
            dollars(p.amount_cents),
            p.idempotency_key
        );
    }
    let counts: Vec<String> = [
        "load_ticket",
        "load_customer",
        "draft_refund_recommendation",
        "issue_refund_once",
    ]
    .iter()
    .map(|s| format!("{s} x{}", ledgers.executions(run, s)))
    .collect();
    println!("   Steps executed: {}", counts.join(", "));

    println!("\n8. Trace of {run}:");
    for e in client.trace(run).map_err(err)? {
        println!("   {e}");
    }
    drop(worker);
    if ledgers.refunds_paid() != 1 {
        return Err(format!(
            "expected exactly one refund, the ledger shows {}",
            ledgers.refunds_paid()
        ));
    }
    println!(
        "\nDone: the worker was killed mid-review, resumed from its checkpoint, and paid exactly once."
    );
    Ok(())
}
