//! Liveness: which locals each block needs, computed backwards to a fixpoint (loops make the
//! block graph cyclic). Names are over-approximated (macro tokens, format strings), then
//! intersected with what is in scope where the block begins.

use std::collections::BTreeSet;

use syn::Expr;

use super::lower::{Block, BlockKind, Node, SuspInfo};
use super::suspend::SuspensionKind;
use super::vars::{Uses, pat_idents};

pub(crate) type Fields = Vec<BTreeSet<String>>;

fn susp_uses(info: &SuspInfo) -> Uses {
    let mut u = Uses::default();
    let exprs: Vec<&Expr> = match &info.susp.kind {
        SuspensionKind::Step { input, retry, .. } => {
            std::iter::once(&**input).chain(retry.as_deref()).collect()
        }
        SuspensionKind::Wait {
            name,
            timeout,
            metadata,
            ..
        } => vec![name, timeout, metadata],
        SuspensionKind::Sleep { duration } => vec![duration],
        SuspensionKind::WaitAny {
            timeout, metadata, ..
        } => vec![timeout, metadata],
        SuspensionKind::Join { steps, .. } => steps.iter().map(|(_, input)| input).collect(),
        SuspensionKind::FanOut { items, limit, .. } => vec![items, limit],
        SuspensionKind::Child { input, id, .. } => {
            std::iter::once(&**input).chain(id.as_deref()).collect()
        }
        SuspensionKind::FanOutChildren { items, .. } => vec![items],
    };
    for e in exprs {
        let x = Uses::of_expr(e);
        u.names.extend(x.names);
        u.jumps.extend(x.jumps);
    }
    u
}

fn live_nodes(nodes: &[Node], fields: &Fields, susps: &[SuspInfo]) -> BTreeSet<String> {
    let mut live = BTreeSet::new();
    for node in nodes.iter().rev() {
        live = match node {
            Node::Stmt(s) => {
                // An assignment `x = e;` does not end `x`'s liveness: every arm re-binds its
                // fields, so `x` must exist there to be assigned.
                let u = Uses::of_stmt(s);
                if let syn::Stmt::Local(l) = s {
                    let mut defs = Vec::new();
                    pat_idents(&l.pat, &mut defs);
                    for d in defs {
                        live.remove(&d.to_string());
                    }
                }
                live.extend(u.names);
                for j in u.jumps {
                    live.extend(fields[j].iter().cloned());
                }
                live
            }
            Node::Suspend { susp, resume } => {
                let mut l = susp_uses(&susps[*susp]).names;
                l.extend(fields[*resume].iter().cloned());
                l
            }
            Node::Jump(b) => fields[*b].clone(),
            Node::If { cond, then, els } => {
                let mut l = with_jumps(Uses::of_expr(cond), fields);
                l.extend(live_nodes(then, fields, susps));
                l.extend(live_nodes(els, fields, susps));
                l
            }
            Node::Match { expr, arms } => {
                let mut l = with_jumps(Uses::of_expr(expr), fields);
                for (pat, body) in arms {
                    let mut arm = live_nodes(body, fields, susps);
                    let mut defs = Vec::new();
                    pat_idents(pat, &mut defs);
                    for d in defs {
                        arm.remove(&d.to_string());
                    }
                    if let syn::Pat::Guard(g) = pat {
                        arm.extend(Uses::of_expr(&g.guard).names);
                    }
                    l.extend(arm);
                }
                l
            }
            Node::Scope(inner) => live_nodes(inner, fields, susps),
            Node::ForCursor { cursor, init, .. } => {
                live.remove(&cursor.to_string());
                for e in init.exprs() {
                    live.extend(with_jumps(Uses::of_expr(e), fields));
                }
                live
            }
            Node::Complete(e) => with_jumps(Uses::of_expr(e), fields),
            Node::FallOff { .. } => BTreeSet::new(),
        };
    }
    live
}

fn with_jumps(u: Uses, fields: &Fields) -> BTreeSet<String> {
    let mut l = u.names;
    for j in u.jumps {
        l.extend(fields[j].iter().cloned());
    }
    l
}

/// The fields of every block's variant.
pub(crate) fn fields(blocks: &[Block], susps: &[SuspInfo]) -> Fields {
    let mut fields: Fields = blocks
        .iter()
        .map(|b| {
            if b.kind == BlockKind::Start {
                b.scope.names().cloned().collect()
            } else {
                BTreeSet::new()
            }
        })
        .collect();
    loop {
        let mut changed = false;
        for (i, b) in blocks.iter().enumerate().rev() {
            if b.kind == BlockKind::Start {
                continue;
            }
            let live = live_nodes(&b.nodes, &fields, susps);
            let new: BTreeSet<String> = live.into_iter().filter(|n| b.scope.contains(n)).collect();
            if new != fields[i] {
                fields[i] = new;
                changed = true;
            }
        }
        if !changed {
            return fields;
        }
    }
}

/// Which blocks the start block can reach; only those become variants.
pub(crate) fn reachable(blocks: &[Block]) -> Vec<bool> {
    fn targets(nodes: &[Node], out: &mut Vec<usize>) {
        for n in nodes {
            match n {
                Node::Stmt(s) => out.extend(Uses::of_stmt(s).jumps),
                Node::Suspend { resume, .. } => out.push(*resume),
                Node::Jump(b) => out.push(*b),
                Node::If { cond, then, els } => {
                    out.extend(Uses::of_expr(cond).jumps);
                    targets(then, out);
                    targets(els, out);
                }
                Node::Match { expr, arms } => {
                    out.extend(Uses::of_expr(expr).jumps);
                    for (_, body) in arms {
                        targets(body, out);
                    }
                }
                Node::Scope(inner) => targets(inner, out),
                Node::ForCursor { init, .. } => {
                    for e in init.exprs() {
                        out.extend(Uses::of_expr(e).jumps);
                    }
                }
                Node::Complete(e) => out.extend(Uses::of_expr(e).jumps),
                Node::FallOff { .. } => {}
            }
        }
    }
    let mut seen = vec![false; blocks.len()];
    let mut stack: Vec<usize> = blocks
        .iter()
        .position(|b| b.kind == BlockKind::Start)
        .into_iter()
        .collect();
    while let Some(b) = stack.pop() {
        if std::mem::replace(&mut seen[b], true) {
            continue;
        }
        let mut out = Vec::new();
        targets(&blocks[b].nodes, &mut out);
        stack.extend(out.into_iter().filter(|t| !seen[*t]));
    }
    seen
}
