//! The workflow's state graph as Mermaid text: one node per stored variant (the start and each
//! suspension point), an edge wherever the body can go from one to the next, and edges to the
//! end where it can return (a tail value, `return`, or `?`). Join blocks (loop heads, code after
//! a branch) are never stored, so edges pass through them.

use std::collections::BTreeSet;
use std::fmt::Write;

use proc_macro2::{TokenStream, TokenTree};
use quote::ToTokens;

use super::ir;
use super::lower::{Block, BlockKind, Node, SuspInfo};
use super::suspend::SuspensionKind;
use super::vars::Uses;

/// Where one block's code can go: resume blocks through a suspension, join blocks through a
/// jump, and whether it can end the run.
#[derive(Default)]
struct Exits {
    suspends: BTreeSet<usize>,
    jumps: BTreeSet<usize>,
    ends: bool,
}

fn may_return(tokens: TokenStream) -> bool {
    tokens.into_iter().any(|t| match t {
        TokenTree::Punct(p) => p.as_char() == '?',
        // The rewritten `return x` and `?` complete the run through the reserved call.
        TokenTree::Ident(i) => i == "return" || i == ir::COMPLETE,
        TokenTree::Group(g) => may_return(g.stream()),
        TokenTree::Literal(_) => false,
    })
}

fn exits(nodes: &[Node], out: &mut Exits) {
    for n in nodes {
        match n {
            Node::Stmt(s) => {
                out.jumps.extend(Uses::of_stmt(s).jumps);
                out.ends |= may_return(s.to_token_stream());
            }
            Node::Suspend { resume, .. } => {
                out.suspends.insert(*resume);
            }
            Node::Jump(b) => {
                out.jumps.insert(*b);
            }
            Node::If { cond, then, els } => {
                out.jumps.extend(Uses::of_expr(cond).jumps);
                out.ends |= may_return(cond.to_token_stream());
                exits(then, out);
                exits(els, out);
            }
            Node::Match { expr, arms } => {
                out.jumps.extend(Uses::of_expr(expr).jumps);
                out.ends |= may_return(expr.to_token_stream());
                for (_, body) in arms {
                    exits(body, out);
                }
            }
            Node::Scope(inner) => exits(inner, out),
            Node::ForCursor { init, .. } => {
                for e in init.exprs() {
                    out.jumps.extend(Uses::of_expr(e).jumps);
                    out.ends |= may_return(e.to_token_stream());
                }
            }
            Node::Complete(_) => out.ends = true,
            Node::FallOff { diverges, .. } => out.ends |= !diverges,
        }
    }
}

/// The label of a stored variant: what the run is suspended on there.
fn label(block: &Block, susps: &[SuspInfo]) -> String {
    let what = match block.kind {
        BlockKind::Start => return "start".to_owned(),
        BlockKind::Join => return "join".to_owned(),
        BlockKind::Resume(s) => &susps[s].susp.kind,
    };
    let text = match what {
        SuspensionKind::Step { func, .. } => {
            let name = func
                .segments
                .last()
                .map_or_else(String::new, |s| s.ident.to_string());
            format!("step {name}")
        }
        SuspensionKind::Wait { name, .. } => match &**name {
            syn::Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Str(s),
                ..
            }) => format!("wait {}", s.value()),
            _ => "wait".to_owned(),
        },
        SuspensionKind::Sleep { .. } => "sleep".to_owned(),
        SuspensionKind::Join { steps, .. } => {
            let names: Vec<String> = steps
                .iter()
                .map(|(f, _)| {
                    f.segments
                        .last()
                        .map_or_else(String::new, |s| s.ident.to_string())
                })
                .collect();
            format!("steps {} in parallel", names.join(" + "))
        }
        SuspensionKind::FanOut { func, .. } => {
            let name = func
                .segments
                .last()
                .map_or_else(String::new, |s| s.ident.to_string());
            format!("fan-out of step {name}")
        }
        SuspensionKind::WaitAny { names, .. } => {
            let names: Vec<String> = names.iter().map(syn::LitStr::value).collect();
            format!("wait {}", names.join(" | "))
        }
        SuspensionKind::Child {
            workflow, detached, ..
        } => {
            let name = workflow
                .segments
                .last()
                .map_or_else(String::new, |s| s.ident.to_string());
            if *detached {
                format!("start child {name}")
            } else {
                format!("child {name}")
            }
        }
        SuspensionKind::FanOutChildren { workflow, .. } => {
            let name = workflow
                .segments
                .last()
                .map_or_else(String::new, |s| s.ident.to_string());
            format!("children {name}")
        }
    };
    // Mermaid labels end at a quote or a newline.
    text.replace(['"', '\n'], " ")
}

/// The Mermaid `stateDiagram-v2` of the reachable blocks.
pub(crate) fn mermaid(blocks: &[Block], susps: &[SuspInfo], reachable: &[bool]) -> String {
    let own: Vec<Exits> = blocks
        .iter()
        .map(|b| {
            let mut e = Exits::default();
            exits(&b.nodes, &mut e);
            e
        })
        .collect();
    let mut out = String::from("stateDiagram-v2\n");
    let stored = |i: usize| reachable[i] && blocks[i].kind != BlockKind::Join;
    for (_, b) in blocks.iter().enumerate().filter(|(i, _)| stored(*i)) {
        let _ = writeln!(out, "    {}: {}", b.name, label(b, susps));
    }
    for (i, b) in blocks.iter().enumerate().filter(|(i, _)| stored(*i)) {
        if b.kind == BlockKind::Start {
            let _ = writeln!(out, "    [*] --> {}", b.name);
        }
        // Follows jumps through join blocks to the stored variants and ends they lead to.
        let mut targets = BTreeSet::new();
        let mut ends = false;
        let mut seen = BTreeSet::new();
        let mut stack = vec![i];
        while let Some(j) = stack.pop() {
            if !seen.insert(j) {
                continue;
            }
            targets.extend(own[j].suspends.iter().copied());
            ends |= own[j].ends;
            stack.extend(
                own[j]
                    .jumps
                    .iter()
                    .copied()
                    .filter(|k| blocks.get(*k).is_some_and(|b| b.kind == BlockKind::Join)),
            );
        }
        for t in targets {
            let _ = writeln!(out, "    {} --> {}", b.name, blocks[t].name);
        }
        if ends {
            let _ = writeln!(out, "    {} --> [*]", b.name);
        }
    }
    out
}
