//! `workflow-admin`: operate the runs of a process that serves the admin API.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use serde_json::{Value, json};
use workflow_admin::client::{Client, ClientError, segment};

/// Operate durable workflow runs through a process's admin API.
#[derive(Parser)]
#[command(name = "workflow-admin", version)]
struct Cli {
    /// The admin API's base URL (with the mount prefix, if any).
    #[arg(
        long,
        env = "WORKFLOW_ADMIN_URL",
        default_value = "http://127.0.0.1:7070"
    )]
    url: String,
    /// The bearer token the API was configured with.
    #[arg(long, env = "WORKFLOW_ADMIN_TOKEN", hide_env_values = true)]
    token: String,
    /// Print the API's JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List runs, filtered, one page at a time.
    Runs {
        /// Only runs of this workflow.
        #[arg(long)]
        workflow: Option<String>,
        /// Only runs with this status (running, waiting, retrying, sleeping, completed, failed,
        /// incompatible, cancelled, terminated).
        #[arg(long)]
        status: Option<String>,
        /// Only runs waiting for this signal.
        #[arg(long)]
        waiting_for: Option<String>,
        /// Only runs at this workflow version.
        #[arg(long)]
        version: Option<u32>,
        /// Only runs whose id sorts after this one (the previous page's `next`).
        #[arg(long)]
        after: Option<String>,
        /// The most runs to list.
        #[arg(long)]
        limit: Option<usize>,
    },
    /// Show one run: status, state, pending command.
    Show {
        /// The run's id.
        run_id: String,
    },
    /// Show a run's trace.
    Trace {
        /// The run's id.
        run_id: String,
        /// Only these event kinds, comma-separated (step_completed,signal_received).
        #[arg(long)]
        kind: Option<String>,
    },
    /// Send a signal to a run.
    Signal {
        /// The run's id.
        run_id: String,
        /// The signal's name.
        name: String,
        /// The payload, as JSON.
        payload: String,
        /// A key that makes re-sending safe.
        #[arg(long)]
        dedupe_key: Option<String>,
        /// Answer only this wait.
        #[arg(long)]
        wait_id: Option<String>,
    },
    /// Cancel a run: the workflow sees the cancellation and may compensate.
    Cancel {
        /// The run's id.
        run_id: String,
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// End a run at once, running no more workflow code.
    Terminate {
        /// The run's id.
        run_id: String,
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// Run a failed run's failed step again.
    Retry {
        /// The run's id.
        run_id: String,
    },
    /// Purge one ended run, or every run that ended long enough ago.
    Purge {
        /// The run to purge.
        run_id: Option<String>,
        /// Purge runs that ended at least this many seconds ago instead.
        #[arg(long, conflicts_with = "run_id")]
        older_than_secs: Option<u64>,
    },
    /// Erase an ended run's payloads (data protection), or those of every run whose id
    /// starts with a prefix; status and times remain.
    Erase {
        /// The run to erase.
        run_id: Option<String>,
        /// Erase every run whose id starts with this instead (all must have ended).
        #[arg(long, conflicts_with = "run_id")]
        prefix: Option<String>,
    },
    /// List the schedules: what they start, when, their policies and progress.
    Schedules,
    /// Pause a schedule: no tick fires until it is resumed.
    PauseSchedule {
        /// The schedule's id.
        id: String,
    },
    /// Resume a paused schedule from its next tick.
    ResumeSchedule {
        /// The schedule's id.
        id: String,
    },
    /// Print a workflow's state diagram (Mermaid, Graphviz DOT or SVG).
    Diagram {
        /// The workflow's name.
        workflow: String,
        /// The output format.
        #[arg(long, value_enum, default_value_t = DiagramFormat::Mermaid)]
        format: DiagramFormat,
        /// With `--format svg`: highlight this state (a run's `state_name`, as `show` prints it).
        #[arg(long)]
        current: Option<String>,
    },
}

/// How `diagram` prints the graph.
#[derive(Clone, Copy, clap::ValueEnum)]
enum DiagramFormat {
    /// Mermaid `stateDiagram-v2` text.
    Mermaid,
    /// Graphviz DOT (`| dot -Tpng > diagram.png`).
    Dot,
    /// A standalone SVG picture.
    Svg,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let client = Client::new(&cli.url, &cli.token);
    match run(&client, cli.command, cli.json) {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(client: &Client, command: Command, as_json: bool) -> Result<String, ClientError> {
    let pretty = |v: &Value| format!("{}\n", serde_json::to_string_pretty(v).unwrap_or_default());
    let (value, table): (Value, fn(&Value) -> String) = match command {
        Command::Runs {
            workflow,
            status,
            waiting_for,
            version,
            after,
            limit,
        } => {
            let mut q = Vec::new();
            let mut add = |k: &str, v: Option<String>| {
                if let Some(v) = v {
                    q.push(format!("{k}={}", segment(&v)));
                }
            };
            add("workflow", workflow);
            add("status", status);
            add("waiting_for", waiting_for);
            add("version", version.map(|v| v.to_string()));
            add("after", after);
            add("limit", limit.map(|v| v.to_string()));
            let path = format!("/runs?{}", q.join("&"));
            (client.get(&path)?, runs_table)
        }
        Command::Show { run_id } => (client.get(&format!("/runs/{}", segment(&run_id)))?, show),
        Command::Trace { run_id, kind } => {
            let mut path = format!("/runs/{}/trace", segment(&run_id));
            if let Some(k) = kind {
                path.push_str(&format!("?kind={}", segment(&k)));
            }
            (client.get(&path)?, trace_table)
        }
        Command::Signal {
            run_id,
            name,
            payload,
            dedupe_key,
            wait_id,
        } => {
            let payload: Value = serde_json::from_str(&payload).map_err(|e| ClientError::Api {
                status: 0,
                code: "bad_payload".to_owned(),
                message: format!("the payload is not JSON: {e}"),
            })?;
            let body = json!({
                "name": name, "payload": payload, "dedupe_key": dedupe_key, "wait_id": wait_id
            });
            let path = format!("/runs/{}/signal", segment(&run_id));
            (client.post(&path, &body)?, |v| {
                format!("{}\n", v["outcome"].as_str().unwrap_or("?"))
            })
        }
        Command::Cancel { run_id, reason } => (
            client.post(
                &format!("/runs/{}/cancel", segment(&run_id)),
                &json!({ "reason": reason }),
            )?,
            status_line,
        ),
        Command::Terminate { run_id, reason } => (
            client.post(
                &format!("/runs/{}/terminate", segment(&run_id)),
                &json!({ "reason": reason }),
            )?,
            status_line,
        ),
        Command::Retry { run_id } => (
            client.post(&format!("/runs/{}/retry", segment(&run_id)), &json!({}))?,
            status_line,
        ),
        Command::Purge {
            run_id,
            older_than_secs,
        } => match (run_id, older_than_secs) {
            (Some(id), _) => (
                client.post(&format!("/runs/{}/purge", segment(&id)), &json!({}))?,
                |v| format!("purged {}\n", v["run_id"].as_str().unwrap_or("?")),
            ),
            (None, Some(secs)) => (
                client.post("/purge", &json!({ "older_than_secs": secs }))?,
                |v| format!("purged {} run(s)\n", v["purged"]),
            ),
            (None, None) => {
                return Err(ClientError::Api {
                    status: 0,
                    code: "usage".to_owned(),
                    message: "name a run, or give --older-than-secs".to_owned(),
                });
            }
        },
        Command::Erase { run_id, prefix } => match (run_id, prefix) {
            (Some(id), _) => (
                client.post(&format!("/runs/{}/erase", segment(&id)), &json!({}))?,
                |v| format!("erased {}\n", v["run_id"].as_str().unwrap_or("?")),
            ),
            (None, Some(prefix)) => (client.post("/erase", &json!({ "prefix": prefix }))?, |v| {
                format!(
                    "erased {} run(s)\n",
                    v["erased"].as_array().map_or(0, Vec::len)
                )
            }),
            (None, None) => {
                return Err(ClientError::Api {
                    status: 0,
                    code: "usage".to_owned(),
                    message: "name a run, or give --prefix".to_owned(),
                });
            }
        },
        Command::Schedules => (client.get("/schedules")?, schedules_table),
        Command::PauseSchedule { id } => (
            client.post(&format!("/schedules/{}/pause", segment(&id)), &json!({}))?,
            schedule_line,
        ),
        Command::ResumeSchedule { id } => (
            client.post(&format!("/schedules/{}/resume", segment(&id)), &json!({}))?,
            schedule_line,
        ),
        Command::Diagram {
            workflow,
            format,
            current,
        } => {
            let format = match format {
                DiagramFormat::Mermaid => "mermaid",
                DiagramFormat::Dot => "dot",
                DiagramFormat::Svg => "svg",
            };
            let mut path = format!("/workflows/{}/diagram?format={format}", segment(&workflow));
            if let Some(c) = current {
                path.push_str(&format!("&current={}", segment(&c)));
            }
            let mut text = client.get_text(&path)?;
            if !text.ends_with('\n') {
                text.push('\n');
            }
            return Ok(text);
        }
    };
    Ok(if as_json {
        pretty(&value)
    } else {
        table(&value)
    })
}

fn status_text(status: &Value) -> String {
    let kind = status["status"].as_str().unwrap_or("?");
    let detail = ["signal", "reason", "message", "step"]
        .iter()
        .find_map(|k| status[*k].as_str());
    match detail {
        Some(d) => format!("{kind} ({d})"),
        None => kind.to_owned(),
    }
}

fn status_line(v: &Value) -> String {
    format!(
        "{}: {}\n",
        v["run_id"].as_str().unwrap_or("?"),
        status_text(&v["status"])
    )
}

fn runs_table(v: &Value) -> String {
    let mut out = format!(
        "{:<24} {:<20} {:>3}  {}\n",
        "RUN", "WORKFLOW", "VER", "STATUS"
    );
    for r in v["runs"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "{:<24} {:<20} {:>3}  {}\n",
            r["run_id"].as_str().unwrap_or("?"),
            r["workflow"].as_str().unwrap_or("?"),
            r["version"],
            status_text(&r["status"])
        ));
    }
    if let Some(next) = v["next"].as_str() {
        out.push_str(&format!("more: --after {next}\n"));
    }
    out
}

fn schedule_line(s: &Value) -> String {
    let state = if s["paused"] == true {
        "paused".to_owned()
    } else {
        match s["next_ms"].as_u64() {
            Some(ms) => format!("next {}", workflow_runtime::format_time_ms(ms)),
            None => "done".to_owned(),
        }
    };
    format!(
        "{:<20} {:<20} {:<28} {:<32} started {} skipped {}\n",
        s["id"].as_str().unwrap_or("?"),
        s["workflow"].as_str().unwrap_or("?"),
        s["spec"].as_str().unwrap_or("?"),
        state,
        s["started"],
        s["skipped"]
    )
}

fn schedules_table(v: &Value) -> String {
    let mut out = format!(
        "{:<20} {:<20} {:<28} {:<32} PROGRESS\n",
        "SCHEDULE", "WORKFLOW", "WHEN", "STATE"
    );
    for s in v.as_array().into_iter().flatten() {
        out.push_str(&schedule_line(s));
    }
    out
}

fn show(v: &Value) -> String {
    format!(
        "run      {}\nworkflow {} v{}\nstatus   {}\nstate    {}\npending  {}\n",
        v["run_id"].as_str().unwrap_or("?"),
        v["workflow"].as_str().unwrap_or("?"),
        v["version"],
        status_text(&v["status"]),
        v["state_name"].as_str().unwrap_or("?"),
        v["pending"]
    )
}

fn trace_table(v: &Value) -> String {
    let mut out = String::new();
    for e in v.as_array().into_iter().flatten() {
        out.push_str(&format!(
            "#{:<4} {:<14} {:<20} {}\n",
            e["seq"],
            e["at_ms"],
            e["event"].as_str().unwrap_or("?"),
            e.get("step")
                .or_else(|| e.get("signal"))
                .or_else(|| e.get("reason"))
                .map(Value::to_string)
                .unwrap_or_default()
        ));
    }
    out
}
