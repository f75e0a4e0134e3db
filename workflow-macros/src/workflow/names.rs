//! Stored state names: one per suspension point, derived from the code so that a state written
//! days ago still means the same suspension point after a deploy.
//!
//! The rules (documented in the README, "Naming rules"):
//! 1. `#[state(Name)]` on the statement is the name.
//! 2. Otherwise the *base* name: the step's name in UpperCamelCase (`charge` → `Charge`),
//!    `Awaiting` + the signal's name, or `Sleeping`. A base that no other suspension point
//!    shares (and that no `#[state]` takes) is the name, so a workflow whose suspension points
//!    are all distinct keeps the names it always had.
//! 3. Suspension points sharing a base are told apart by their *qualifiers*, innermost first:
//!    the local the statement binds or assigns (`let receipt = ctx.step(charge, ..)` →
//!    `ChargeReceipt`), then the enclosing constructs: the variant a `match` arm matches
//!    (`Approve`), a loop label (`'retry` → `Retry`), a signal waited for earlier in the same
//!    block (`AfterDecision`). Each takes the fewest qualifiers (at least one) that set its name
//!    apart from every other point of its group at the same depth.
//! 4. Points nothing tells apart keep the base (or their full name) and each but the first is
//!    refused with its own applicable `#[state(..)]` hint.
//!
//! A name depends only on its own statement, its enclosing constructs and which other points
//! share its base: renaming an unrelated local changes nothing, and swapping two calls swaps
//! their names with them. The names are part of the layout fingerprint, so any change to
//! them (a binding renamed, a second call of a step added) is detected as a layout change.

use std::collections::{BTreeMap, BTreeSet};

use proc_macro2::Span;

/// One suspension point to name.
pub(crate) struct Site {
    /// The resume block the name is given to.
    pub(crate) block: usize,
    /// From `#[state(Name)]`.
    pub(crate) explicit: Option<String>,
    pub(crate) base: String,
    /// UpperCamelCase qualifiers, innermost first.
    pub(crate) quals: Vec<String>,
    pub(crate) span: Span,
}

impl Site {
    /// The base with the first `k` qualifiers (all of them when there are fewer).
    fn name_at(&self, k: usize) -> String {
        let mut s = self.base.clone();
        for q in self.quals.iter().take(k) {
            s.push_str(q);
        }
        s
    }
}

/// The name of every site, in order; collisions are reported into `errors`. `reserved` names
/// (the start state) are never given to a suspension point.
pub(crate) fn assign(
    sites: &[Site],
    reserved: &[&str],
    errors: &mut Vec<syn::Error>,
) -> Vec<String> {
    let explicit: BTreeSet<&str> = sites
        .iter()
        .filter_map(|s| s.explicit.as_deref())
        .chain(reserved.iter().copied())
        .collect();
    let mut groups: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, s) in sites.iter().enumerate() {
        if s.explicit.is_none() {
            groups.entry(s.base.as_str()).or_default().push(i);
        }
    }
    let mut names: Vec<String> = sites
        .iter()
        .map(|s| s.explicit.clone().unwrap_or_default())
        .collect();
    for (base, members) in &groups {
        if members.len() == 1 && !explicit.contains(base) {
            names[members[0]] = (*base).to_owned();
            continue;
        }
        for &i in members {
            let site = &sites[i];
            let depth = site.quals.len();
            let chosen = (1..=depth).find(|&k| {
                let mine = site.name_at(k);
                !explicit.contains(mine.as_str())
                    && members
                        .iter()
                        .all(|&j| j == i || sites[j].name_at(k) != mine)
            });
            names[i] = site.name_at(chosen.unwrap_or(depth));
        }
    }
    report_collisions(sites, &names, reserved, errors);
    names
}

/// Refuses every site whose name an earlier site (or a reserved name) already holds, with a
/// hint no other site has and that no other name takes.
fn report_collisions(
    sites: &[Site],
    names: &[String],
    reserved: &[&str],
    errors: &mut Vec<syn::Error>,
) {
    let all: BTreeSet<&str> = names
        .iter()
        .map(String::as_str)
        .chain(reserved.iter().copied())
        .collect();
    let mut holder: BTreeMap<&str, Option<Span>> = reserved.iter().map(|r| (*r, None)).collect();
    let mut hinted: BTreeSet<String> = BTreeSet::new();
    // Explicit names claim theirs first: a derived name that meets one is the one to change.
    let order = (0..sites.len())
        .filter(|&i| sites[i].explicit.is_some())
        .chain((0..sites.len()).filter(|&i| sites[i].explicit.is_none()));
    for i in order {
        let name = names[i].as_str();
        let Some(first) = holder.get(name).copied() else {
            holder.insert(name, Some(sites[i].span));
            continue;
        };
        let hint = (2..)
            .map(|n| format!("{name}{n}"))
            .find(|h| !all.contains(h.as_str()) && !hinted.contains(h))
            .expect("an unused numbered name exists");
        hinted.insert(hint.clone());
        let Some(first) = first else {
            errors.push(syn::Error::new(
                sites[i].span,
                format!(
                    "this suspension point would be stored as the state `{name}`, which is the \
                     name of the run's first state; give it its own stable name with \
                     `#[state({hint})]` on its statement"
                ),
            ));
            continue;
        };
        let other = match line_of(first) {
            Some(line) => format!("the other one is on line {line}"),
            None => "the other one comes earlier in the body".to_owned(),
        };
        let why = if sites[i].explicit.is_some() {
            format!("`#[state({name})]` names two suspension points")
        } else {
            format!(
                "two suspension points would both be stored as the state `{name}`, and nothing \
                 in the code tells them apart (a local bound by the statement, a `match` arm, a \
                 loop label or an earlier signal wait would)"
            )
        };
        errors.push(syn::Error::new(
            sites[i].span,
            format!(
                "{why}; give this one its own stable name with `#[state({hint})]` on its \
                 statement ({other})"
            ),
        ));
    }
}

/// The line a span starts on, where the compiler can tell (inside a macro invocation).
pub(crate) fn line_of(span: Span) -> Option<usize> {
    proc_macro::is_available().then(|| span.unwrap().line())
}
