//! The refund-review app: a durable workflow engine and its HTTP API in one binary, with a
//! command-line client and a narrated crash demo.
//!
//! `cargo run --example refund_review` runs the demo; `-- --help` lists the commands.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use examples::refund::agent::dollars;
use examples::refund::api::{
    DecisionRequest, DecisionResult, PendingReview, ReviewStatus, describe_outcome, escape_text,
};
use examples::refund::auth::{Role, issue_token, random_token};
use examples::refund::client::{Client, ClientError};
use examples::refund::domain::DecisionStatus;
use examples::refund::server::{ServeOptions, serve};
use examples::refund::worker::{Worker, wait_until};
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use workflow_admin::client::Client as AdminClient;
use workflow_runtime::{RunPage, RunStatus, format_time_ms};

const DEFAULT_DATA_DIR: &str = "refund-review-data";

/// refund_review: an AI-drafted refund waits for a human decision, durably.
///
/// With no command, runs a narrated demo in a temporary directory: it starts `serve` as a
/// child process, kills it with SIGKILL while a review waits, restarts it, shows refused
/// decisions (no token, over the approval limit, four eyes, a stale draft), approves twice and
/// shows that exactly one refund was paid.
///
/// Environment of `serve`: REFUND_REVIEW_CLOCK_OFFSET_SECS shifts its clock forward (tests use
/// it to let the 7-day window pass); REFUND_REVIEW_FAULT=after_payment kills it with SIGKILL
/// right after the payment provider paid and before the step's checkpoint (crash tests).
#[derive(Debug, Parser)]
#[command(name = "refund_review", version)]
struct Cli {
    /// The server's address; `serve --addr 127.0.0.1:0` picks a free port and prints it first.
    #[arg(
        long,
        global = true,
        env = "REFUND_REVIEW_ADDR",
        default_value = "127.0.0.1:7878"
    )]
    addr: String,
    /// The reviewer's bearer token (from `issue-token`); prefer the environment variable, which
    /// other users of the machine cannot read from the process list.
    #[arg(
        long,
        global = true,
        env = "REFUND_REVIEW_TOKEN",
        hide_env_values = true
    )]
    token: Option<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the engine and the HTTP API on --addr, resuming every review in flight.
    Serve(DataDir),
    /// Issue a bearer token for a reviewer; it is printed once and stored only as a hash.
    IssueToken {
        #[command(flatten)]
        data: DataDir,
        /// The reviewer id decisions will carry, like `ana`.
        #[arg(long)]
        reviewer: String,
        /// `reviewer` (approves up to a limit) or `manager` (approves any amount).
        #[arg(long, default_value = "reviewer")]
        role: Role,
        /// The approval limit in cents (reviewer default: 10000, i.e. $100.00).
        #[arg(long, value_name = "CENTS")]
        limit: Option<u64>,
    },
    /// Start reviewing a ticket (T-1001 .. T-1005, or any T-<n>); one open or paid review per
    /// ticket.
    Start {
        /// The ticket id.
        ticket_id: String,
        /// A run id of your own (default: review-<ticket>).
        #[arg(long)]
        run_id: Option<String>,
    },
    /// Approve the draft shown by `pending` (the drafted amount unless --amount).
    Approve {
        #[command(flatten)]
        target: Target,
        /// Pay this many cents instead of the drafted amount (at most the order total).
        #[arg(long, value_name = "CENTS")]
        amount: Option<u64>,
        /// A note for the record.
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Reject the draft shown by `pending`: nothing is paid.
    Reject {
        #[command(flatten)]
        target: Target,
        /// Why (required).
        #[arg(long)]
        reason: String,
    },
    /// Ask the agent to redraft, with a note (`make it $40`, `lower please`).
    RequestChanges {
        #[command(flatten)]
        target: Target,
        /// What to change (required).
        #[arg(long)]
        reason: String,
    },
    /// Where a review stands, and how it ended.
    Status {
        /// The run id.
        run_id: String,
        /// Print the server's JSON.
        #[arg(long)]
        json: bool,
    },
    /// The review's decision path, oldest event first.
    Trace {
        /// The run id.
        run_id: String,
        /// Print the server's JSON.
        #[arg(long)]
        json: bool,
    },
    /// Drafts waiting for a decision, with the wait id a decision must name.
    Pending {
        /// Print the server's JSON.
        #[arg(long)]
        json: bool,
    },
    /// Refunds paid and steps executed.
    Ledger {
        /// Print the server's JSON.
        #[arg(long)]
        json: bool,
    },
    /// Who the token belongs to.
    Whoami,
}

#[derive(Debug, Args)]
struct DataDir {
    /// Where `serve` keeps its store, ledgers and credentials.
    #[arg(long, default_value = DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
}

#[derive(Debug, Args)]
struct Target {
    /// The run id.
    run_id: String,
    /// The wait id of the draft you decide on, as `pending` shows it; a decision on any other
    /// draft is refused.
    #[arg(long = "wait")]
    wait_id: String,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", escape_text(&e));
            ExitCode::FAILURE
        }
    }
}

/// Logs to stderr (stdout carries the commands' output), filtered by `RUST_LOG` as a list of
/// `target=level` directives and a default level: for example `RUST_LOG=info` for every run's
/// milestones and step attempts, or `RUST_LOG=info,workflow_runtime=debug` for every
/// transition and group commit too. Without it, only errors (a run that failed, a result that
/// could not be recorded) are shown.
fn init_logging() {
    let filter = match std::env::var("RUST_LOG") {
        Ok(spec) => spec.parse::<Targets>().unwrap_or_else(|e| {
            eprintln!("warning: RUST_LOG=`{spec}` is not a list of `target=level`: {e}");
            Targets::new().with_default(LevelFilter::ERROR)
        }),
        Err(_) => Targets::new().with_default(LevelFilter::ERROR),
    };
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .with_writer(std::io::stderr),
        )
        .with(filter)
        .init();
}

fn print_json(v: &impl serde::Serialize) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

fn run(cli: Cli) -> Result<(), String> {
    let Some(command) = cli.command else {
        return demo();
    };
    let mut client = Client::new(&cli.addr);
    if let Some(t) = &cli.token {
        client = client.with_token(t.clone());
    }
    let decide = |target: Target, status, reason: String, amount| -> Result<(), String> {
        let req = DecisionRequest {
            status,
            wait_id: target.wait_id,
            reason,
            approved_amount_cents: amount,
        };
        let v = client.decide(&target.run_id, &req).map_err(err)?;
        let verb = match status {
            DecisionStatus::Approved => "approved",
            DecisionStatus::Rejected => "rejected",
            DecisionStatus::RequestChanges => "changes requested on",
        };
        println!(
            "{verb} {} as {}: {}",
            target.run_id,
            escape_text(&v.reviewer_id),
            match v.signal {
                DecisionResult::Delivered => "delivered",
                DecisionResult::Duplicate => "duplicate (already sent; nothing changed)",
            }
        );
        Ok(())
    };
    match command {
        Command::Serve(DataDir { data_dir }) => {
            let addr: SocketAddr = cli
                .addr
                .parse()
                .map_err(|e| format!("bad --addr `{}`: {e}", cli.addr))?;
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            rt.block_on(serve(ServeOptions { data_dir, addr }))
        }
        Command::IssueToken {
            data,
            reviewer,
            role,
            limit,
        } => {
            let token = issue_token(&data.data_dir, &reviewer, role, limit)?;
            eprintln!(
                "token for {reviewer} ({}); shown once, stored only as a hash in {}:",
                role_name(role),
                data.data_dir.display()
            );
            println!("{token}");
            Ok(())
        }
        Command::Start { ticket_id, run_id } => {
            let v = client.start(&ticket_id, run_id.as_deref()).map_err(err)?;
            let verb = if v.created {
                "started"
            } else {
                "already open:"
            };
            println!("{verb} {} ({})", v.run_id, status_line(&v.status));
            Ok(())
        }
        Command::Approve {
            target,
            amount,
            reason,
        } => decide(target, DecisionStatus::Approved, reason, amount),
        Command::Reject { target, reason } => {
            decide(target, DecisionStatus::Rejected, reason, None)
        }
        Command::RequestChanges { target, reason } => {
            decide(target, DecisionStatus::RequestChanges, reason, None)
        }
        Command::Status { run_id, json } => {
            let v = client.status(&run_id).map_err(err)?;
            if json {
                print_json(&v);
            } else {
                print_status(&v);
            }
            Ok(())
        }
        Command::Trace { run_id, json } => {
            let events = client.trace(&run_id).map_err(err)?;
            if json {
                print_json(&events);
            } else {
                for e in events {
                    println!("{}", escape_text(&e.to_string()));
                }
            }
            Ok(())
        }
        Command::Pending { json } => {
            let pending = client.pending().map_err(err)?;
            if json {
                print_json(&pending);
            } else if pending.is_empty() {
                println!("no review is waiting for a decision");
            } else {
                for p in pending {
                    println!("{}", pending_line(&p));
                }
            }
            Ok(())
        }
        Command::Ledger { json } => {
            let l = client.ledgers().map_err(err)?;
            if json {
                print_json(&serde_json::json!({ "payments": l.payments, "steps": l.steps }));
            } else {
                println!("refunds paid: {}", l.refunds_paid());
                for p in &l.payments {
                    println!(
                        "  {:?} {} {} key={} receipt={}",
                        p.event,
                        escape_text(&p.ticket_id),
                        dollars(p.amount_cents),
                        escape_text(&p.idempotency_key),
                        escape_text(&p.receipt_id)
                    );
                }
                println!("step executions: {}", l.steps.len());
            }
            Ok(())
        }
        Command::Whoami => {
            let me = client.whoami().map_err(err)?;
            println!(
                "{} ({}), approves up to {}",
                escape_text(&me.reviewer_id),
                role_name(me.role),
                limit_text(me.approval_limit_cents)
            );
            Ok(())
        }
    }
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Reviewer => "reviewer",
        Role::Manager => "manager",
    }
}

fn limit_text(cents: u64) -> String {
    if cents == u64::MAX {
        "any amount".to_owned()
    } else {
        dollars(cents)
    }
}

fn err(e: ClientError) -> String {
    e.to_string()
}

fn status_line(s: &RunStatus) -> String {
    match s {
        RunStatus::Waiting {
            wait_id,
            deadline_ms,
            ..
        } => format!(
            "waiting for a decision on wait {wait_id} until {}",
            format_time_ms(*deadline_ms)
        ),
        other => escape_text(&other.to_string()),
    }
}

fn print_status(v: &ReviewStatus) {
    match (&v.outcome, &v.error) {
        (Some(outcome), _) => println!("{}: {}", v.run_id, describe_outcome(outcome)),
        (None, Some(e)) => println!("{}: failed: {}", v.run_id, escape_text(e)),
        (None, None) => println!("{}: {}", v.run_id, status_line(&v.status)),
    }
}

fn pending_line(p: &PendingReview) -> String {
    let mut line = format!(
        "{} draft {} (wait {}): ticket {} for {}, {} of {} [{}], decide by {}\n    {}",
        p.run_id,
        p.draft,
        p.wait_id,
        escape_text(&p.ticket_id),
        escape_text(&p.customer),
        dollars(p.amount_cents),
        dollars(p.order_total_cents),
        escape_text(&p.rule),
        format_time_ms(p.deadline_ms),
        escape_text(&p.rationale)
    );
    if !p.changes_requested_by.is_empty() {
        let who: Vec<String> = p
            .changes_requested_by
            .iter()
            .map(|r| escape_text(r))
            .collect();
        line.push_str(&format!(
            "\n    changes requested by {}: another reviewer must approve",
            who.join(", ")
        ));
    }
    line
}

fn demo() -> Result<(), String> {
    let dir = std::env::temp_dir().join(format!("refund-review-demo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let result = demo_in(&dir);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// The runs waiting for a refund decision, as a table, through the mounted admin API.
fn waiting_table(admin: &AdminClient) -> Result<Vec<String>, String> {
    let page = admin
        .get("/runs?waiting_for=refund_decision")
        .map_err(|e| e.to_string())?;
    let page: RunPage = serde_json::from_value(page).map_err(|e| e.to_string())?;
    let rows: Vec<[String; 5]> = page
        .runs
        .iter()
        .map(|r| {
            let (status, deadline) = match &r.status {
                RunStatus::Waiting {
                    signal,
                    deadline_ms,
                    ..
                } => (
                    format!("waiting ({})", escape_text(signal)),
                    format_time_ms(*deadline_ms),
                ),
                other => (escape_text(&other.to_string()), String::new()),
            };
            [
                escape_text(&r.run_id),
                format!("{} v{}", escape_text(&r.workflow), r.version),
                status,
                format_time_ms(r.updated_ms),
                deadline,
            ]
        })
        .collect();
    let header = ["RUN", "WORKFLOW", "STATUS", "SINCE", "DECIDE BY"].map(str::to_owned);
    let mut widths = header.clone().map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    Ok(std::iter::once(&header)
        .chain(&rows)
        .map(|row| {
            let cells: Vec<String> = row
                .iter()
                .zip(widths)
                .map(|(c, w)| format!("{c:<w$}"))
                .collect();
            cells.join("  ").trim_end().to_owned()
        })
        .collect())
}

fn refused(r: Result<impl std::fmt::Debug, ClientError>) -> Result<String, String> {
    match r {
        Err(ClientError::Api {
            status, message, ..
        }) => Ok(format!("refused, HTTP {status}: {}", escape_text(&message))),
        Err(e) => Err(e.to_string()),
        Ok(v) => Err(format!("expected a refusal, got {v:?}")),
    }
}

fn signal_word(s: DecisionResult) -> &'static str {
    match s {
        DecisionResult::Delivered => "delivered",
        DecisionResult::Duplicate => "duplicate",
    }
}

fn approve(wait: &PendingReview) -> DecisionRequest {
    DecisionRequest {
        status: DecisionStatus::Approved,
        wait_id: wait.wait_id.clone(),
        reason: String::new(),
        approved_amount_cents: None,
    }
}

fn demo_in(dir: &Path) -> Result<(), String> {
    println!(
        "Refund review: an AI agent drafts a refund, a human decides, the worker crashes in between."
    );
    println!("Data directory (store + ledgers): {}\n", dir.display());

    let ana_token = issue_token(dir, "ana", Role::Reviewer, None)?;
    let max_token = issue_token(dir, "max", Role::Manager, None)?;
    let bob_token = issue_token(dir, "bob", Role::Reviewer, None)?;
    println!(
        "0. Tokens issued (stored hashed): ana and bob are reviewers (up to $100.00), max is a manager"
    );
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    // The operators' token for the admin API the worker mounts under /admin.
    let admin_token = random_token("adm_")?;
    let worker_env = [("REFUND_REVIEW_ADMIN_TOKEN", admin_token.as_str())];
    let mut worker = Worker::spawn(&exe, dir, &worker_env)?;
    println!(
        "1. Worker started (refund_review serve, pid {}) on {}",
        worker.pid(),
        worker.addr()
    );
    let ana = worker.client().with_token(ana_token.clone());

    let run = "review-T-1001";
    ana.start("T-1001", None).map_err(err)?;
    println!(
        "2. Ticket T-1001 (\"The blender arrived with a cracked jug.\"): review `{run}` started"
    );
    let first = wait_until("the review to wait for a decision", || {
        ana.pending().ok()?.into_iter().find(|p| p.run_id == run)
    })?;
    println!(
        "3. The agent loaded the ticket and the customer and drafted a refund; the run now waits:"
    );
    println!("   {}", pending_line(&first));

    let pid = worker.pid();
    worker.kill9();
    println!("\n4. kill -9 {pid}: the worker died while the review was waiting (no shutdown ran)");

    let worker = Worker::spawn(&exe, dir, &worker_env)?;
    let anonymous = worker.client();
    let ana = worker.client().with_token(ana_token);
    let max = worker.client().with_token(max_token);
    let bob = worker.client().with_token(bob_token);
    let status = ana.status(run).map_err(err)?;
    println!(
        "5. Worker restarted (pid {}) on {}",
        worker.pid(),
        worker.addr()
    );
    println!(
        "   {run} resumed from its checkpoint: {}",
        status_line(&status.status)
    );
    let admin = AdminClient::new(&format!("{}/admin", worker.addr()), &admin_token);
    println!(
        "   Operations: the reviews waiting for a decision, from the admin API mounted at \
         /admin (GET /admin/runs?waiting_for=refund_decision):"
    );
    for line in waiting_table(&admin)? {
        println!("     {line}");
    }

    println!(
        "\n6. An approval without a token: {}",
        refused(anonymous.decide(run, &approve(&first)))?
    );
    println!(
        "   ana approves {}: {}",
        dollars(first.amount_cents),
        refused(ana.decide(run, &approve(&first)))?
    );
    let changes = DecisionRequest {
        status: DecisionStatus::RequestChanges,
        wait_id: first.wait_id.clone(),
        reason: "make it $100, the base was not damaged".into(),
        approved_amount_cents: None,
    };
    let asked = ana.decide(run, &changes).map_err(err)?;
    println!(
        "   ana requests changes (\"{}\"): signal {}",
        changes.reason,
        signal_word(asked.signal)
    );
    let again = ana.decide(run, &changes).map_err(err)?;
    println!(
        "   ana's request is sent again (a double click): signal {}, no second redraft",
        signal_word(again.signal)
    );
    let second = wait_until("the redraft", || {
        ana.pending()
            .ok()?
            .into_iter()
            .find(|p| p.run_id == run && p.wait_id != first.wait_id)
    })?;
    println!("   The agent redrafted:\n   {}", pending_line(&second));
    println!(
        "   ana approves her own redraft: {}",
        refused(ana.decide(run, &approve(&second)))?
    );
    println!(
        "   max approves draft {}, the one he had open: {}",
        first.draft,
        refused(max.decide(run, &approve(&first)))?
    );

    let decided = max.decide(run, &approve(&second)).map_err(err)?;
    println!(
        "\n7. max approves draft {} ({}): signal {}",
        second.draft,
        dollars(second.amount_cents),
        signal_word(decided.signal)
    );
    let twice = max.decide(run, &approve(&second)).map_err(err)?;
    println!(
        "   The approval is sent again (a double click): signal {}, nothing changes",
        signal_word(twice.signal)
    );

    let done = wait_until("the review to finish", || {
        let s = max.status(run).ok()?;
        s.outcome.is_some().then_some(s)
    })?;
    println!(
        "   A late approval from bob: {}",
        refused(bob.decide(run, &approve(&second)))?
    );
    if let Some(outcome) = &done.outcome {
        println!("\n8. Outcome: {}", describe_outcome(outcome));
    }
    println!(
        "   A second review of T-1001: {}",
        refused(ana.start("T-1001", Some("another-review")))?
    );
    let ledgers = max.ledgers().map_err(err)?;
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
        "load_customer_for_ticket",
        "draft_refund_recommendation",
        "issue_refund_once",
    ]
    .iter()
    .map(|s| format!("{s} x{}", ledgers.executions(run, s)))
    .collect();
    println!("   Steps executed: {}", counts.join(", "));

    println!("\n9. Trace of {run}:");
    for e in max.trace(run).map_err(err)? {
        println!("   {}", escape_text(&e.to_string()));
    }
    drop(worker);
    if ledgers.refunds_paid() != 1 {
        return Err(format!(
            "expected exactly one refund, the ledger shows {}",
            ledgers.refunds_paid()
        ));
    }
    println!(
        "\nDone: the worker was killed mid-review, resumed from its checkpoint, refused every decision it should, and paid exactly once."
    );
    Ok(())
}
