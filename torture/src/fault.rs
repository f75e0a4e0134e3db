//! Exact-point fault injection: the worker kills its own process with SIGKILL at a chosen
//! instant, to hit windows too narrow for a kill from outside.
//!
//! - `before-commit:N`: the engine's N-th commit of this process life never reaches the store
//!   (the engine's `Hooks::crash_at` with `CrashMoment::BeforeCommit`, and `Hooks::on_crash`
//!   to make the crash a real process death).
//! - `after-commit:N`: the N-th commit is durable, and the process dies before anything is
//!   acknowledged or started from it.
//! - `after-effect:N`: the N-th effect of this life is durable in the ledger, and the process
//!   dies before the step reports back, so the step's checkpoint never happens and the step
//!   runs again after the restart.
//! - `power-cut:N`: in power-loss mode ([`PowerLossDisk`](workflow_runtime::testing::PowerLossDisk)), the power goes just before the
//!   store's N-th write, resize or sync of this life: part of the unsynced writes reaches the
//!   file (reordered, one possibly torn), the rest is lost, and the process dies.

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};

use workflow_runtime::testing::{CrashMoment, Hooks};

/// Where a worker kills itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {
    /// Just before the engine's N-th commit.
    BeforeCommit(u64),
    /// Just after the engine's N-th commit is durable.
    AfterCommit(u64),
    /// Just after the N-th effect reached the ledger, before its step's checkpoint.
    AfterEffect(u64),
    /// Just before the store's N-th I/O operation, as a power cut ([`PowerLossDisk`](workflow_runtime::testing::PowerLossDisk)).
    PowerCut(u64),
}

impl Fault {
    /// The fault point's name, without its count.
    pub fn point(self) -> &'static str {
        match self {
            Fault::BeforeCommit(_) => "before-commit",
            Fault::AfterCommit(_) => "after-commit",
            Fault::AfterEffect(_) => "after-effect",
            Fault::PowerCut(_) => "power-cut",
        }
    }

    /// The engine hooks that arm this fault (none for an effect fault, which the ledger arms).
    pub fn hooks(self) -> Hooks {
        let mut hooks = Hooks::default();
        let moment = match self {
            Fault::BeforeCommit(n) => Some((n, CrashMoment::BeforeCommit)),
            Fault::AfterCommit(n) => Some((n, CrashMoment::AfterCommit)),
            Fault::AfterEffect(_) | Fault::PowerCut(_) => None,
        };
        if let Some((n, moment)) = moment {
            let point = self.point();
            hooks.crash_at(n, moment);
            hooks.on_crash(move || kill_self(point));
        }
        hooks
    }

    /// Arms the parts of the fault that live in this crate.
    pub fn arm(self) {
        if let Fault::AfterEffect(n) = self {
            EFFECTS_LEFT.store(n, Ordering::SeqCst);
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (Fault::BeforeCommit(n)
        | Fault::AfterCommit(n)
        | Fault::AfterEffect(n)
        | Fault::PowerCut(n)) = self;
        write!(f, "{}:{n}", self.point())
    }
}

impl FromStr for Fault {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || {
            format!(
                "`{s}`: expected before-commit:N, after-commit:N, after-effect:N or power-cut:N"
            )
        };
        let (point, n) = s.split_once(':').ok_or_else(bad)?;
        let n: u64 = n.parse().map_err(|_| bad())?;
        if n == 0 {
            return Err(bad());
        }
        match point {
            "before-commit" => Ok(Fault::BeforeCommit(n)),
            "after-commit" => Ok(Fault::AfterCommit(n)),
            "after-effect" => Ok(Fault::AfterEffect(n)),
            "power-cut" => Ok(Fault::PowerCut(n)),
            _ => Err(bad()),
        }
    }
}

/// Effects left before an armed `after-effect` fault fires; 0 when disarmed.
static EFFECTS_LEFT: AtomicU64 = AtomicU64::new(0);

/// Called by the ledger after an effect is durable.
pub(crate) fn after_effect() {
    let fire = EFFECTS_LEFT
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
            left.checked_sub(1)
        })
        .is_ok_and(|before| before == 1);
    if fire {
        kill_self("after-effect");
    }
}

/// Kills this process with SIGKILL: no destructor, flush or checkpoint runs after it, as in a
/// power cut or an OOM kill.
pub fn kill_self(point: &str) {
    eprintln!("fault injection: killing the worker at `{point}`");
    let pid = std::process::id().to_string();
    let _ = std::process::Command::new("kill")
        .args(["-9", &pid])
        .status();
    // Where `kill` is missing: abort() skips every destructor too.
    std::process::abort();
}
