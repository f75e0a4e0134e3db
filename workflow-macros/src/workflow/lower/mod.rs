//! Lowering: splits the body at its suspension points into blocks, one enum variant each.
//!
//! A block is straight-line Rust code (kept verbatim) ending in a terminator: suspend at a
//! suspension point (its continuation is a new *resume* block, a persisted variant), jump to a
//! *join* block (loop heads and the code after an `if`/`match`/loop that suspends; hidden
//! variants that are never stored), or complete the run. `if`/`match` whose branches suspend
//! stay Rust `if`/`match` with each branch ending in its own terminator.

use std::collections::BTreeMap;

use proc_macro2::Span;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::visit_mut::VisitMut;
use syn::{Expr, Pat, Stmt, parse_quote, parse_quote_spanned};

use super::ir::{CursorInit, Ty};
use super::names::{self, Site};
use super::suspend::{Suspension, SuspensionKind, as_suspension, expr_suspends, stmt_suspends};
mod control;
mod eval;
mod naming;
mod rewrite;

use self::control::*;
use self::eval::*;
use self::naming::*;
use self::rewrite::jump_expr;
use super::vars::{
    self, Decl, DeclKind, JUMP_MACRO, Scope, TyInfo, let_bindings, pat_idents, typed_pattern_decls,
    upper_camel,
};

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum BlockKind {
    Start,
    Resume(usize),
    Join,
}

pub(crate) struct Block {
    pub(crate) kind: BlockKind,
    pub(crate) name: syn::Ident,
    /// The bindings in scope where the block begins.
    pub(crate) scope: Scope,
    pub(crate) nodes: Vec<Node>,
}

pub(crate) enum Node {
    Stmt(Stmt),
    Suspend {
        susp: usize,
        resume: usize,
    },
    Jump(usize),
    If {
        cond: Expr,
        then: Vec<Node>,
        els: Vec<Node>,
    },
    Match {
        expr: Expr,
        arms: Vec<(Pat, Vec<Node>)>,
    },
    Scope(Vec<Node>),
    /// `let mut cursor: Type = ..;`, the cursor of a suspending `for` loop.
    ForCursor {
        cursor: syn::Ident,
        ty: Ty,
        init: CursorInit,
    },
    Complete(Expr),
    /// The end of the body without a tail expression.
    FallOff {
        span: Span,
        diverges: bool,
    },
}

pub(crate) struct SuspInfo {
    pub(crate) susp: Suspension,
    pub(crate) tmp: syn::Ident,
    /// The type of `ctx.x(..).await`.
    pub(crate) full_ty: Ty,
    /// The type of `ctx.x(..).await?`.
    pub(crate) ok_ty: Option<Ty>,
}

#[derive(Clone)]
struct LoopCtx {
    label: Option<String>,
    head: usize,
    exit: usize,
    /// For `let v = loop { .. break x; }`: the index of the loop's value slot.
    value: Option<usize>,
    /// The loop a `let v = if/match/{..}` whose branches suspend is lowered as: a plain `break`
    /// or `continue` inside it means the enclosing loop.
    synthetic: bool,
}

/// The value of a `let v = loop { .. }` whose body suspends: each `break x` stores `x` in a
/// hidden local, which the loop's exit block binds to the `let`'s pattern.
struct LoopValue {
    tmp: syn::Ident,
    /// The type the value is known to have (written on the `let`, or seen at a `break`).
    ty: TyInfo,
}

#[derive(Clone, Copy)]
enum Cont {
    Jump(usize),
    FnEnd,
}

pub(crate) struct Lowerer {
    pub(crate) ctx: String,
    pub(crate) blocks: Vec<Block>,
    pub(crate) susps: Vec<SuspInfo>,
    pub(crate) decls: BTreeMap<String, Vec<Decl>>,
    pub(crate) errors: Vec<syn::Error>,
    loops: Vec<LoopCtx>,
    loop_values: Vec<LoopValue>,
    /// `break` values seen by the rewriter and not yet typed: (value slot, expression).
    pending_breaks: Vec<(usize, Expr)>,
    /// What names each suspension point, for [`names::assign`].
    sites: Vec<Site>,
    /// The enclosing constructs that qualify a state name, outermost first.
    quals: Vec<String>,
    /// The last [`Scope::level`] handed out.
    levels: usize,
    for_count: usize,
    fn_end: Span,
}

impl Lowerer {
    pub(crate) fn new(ctx: String, fn_end: Span) -> Self {
        Self {
            ctx,
            blocks: Vec::new(),
            susps: Vec::new(),
            decls: BTreeMap::new(),
            errors: Vec::new(),
            loops: Vec::new(),
            loop_values: Vec::new(),
            pending_breaks: Vec::new(),
            sites: Vec::new(),
            quals: Vec::new(),
            levels: 0,
            for_count: 0,
            fn_end,
        }
    }

    /// Lowers the body; the start block holds the parameters.
    pub(crate) fn lower_body(&mut self, params: &[(syn::Ident, syn::Type)], body: Vec<Stmt>) {
        let mut scope = Scope::default();
        for (ident, ty) in params {
            self.declare(
                Decl {
                    ident: ident.clone(),
                    ty: TyInfo::Known(Ty::Written(quote!(#ty))),
                    kind: DeclKind::Param,
                    shadows: false,
                    level: 0,
                },
                &mut scope,
            );
        }
        let start = self.new_block(BlockKind::Start, format_ident!("Start"), scope.clone());
        let nodes = self.lower_stmts(body, &mut scope, Cont::FnEnd);
        self.blocks[start].nodes = nodes;
        self.assign_names();
    }

    fn new_block(&mut self, kind: BlockKind, name: syn::Ident, scope: Scope) -> usize {
        self.blocks.push(Block {
            kind,
            name,
            scope,
            nodes: Vec::new(),
        });
        self.blocks.len() - 1
    }

    fn new_join(&mut self, scope: &Scope) -> usize {
        let name = format_ident!("__Block{}", self.blocks.len());
        self.new_block(BlockKind::Join, name, scope.clone())
    }

    fn err(&mut self, span: Span, msg: impl Into<String>) {
        self.errors.push(syn::Error::new(span, msg.into()));
    }

    fn declare(&mut self, mut decl: Decl, scope: &mut Scope) {
        // `let y = x;` has x's type; resolve now, while `x` means the binding in scope.
        decl.ty = self.resolve(decl.ty, scope);
        let name = decl.ident.to_string();
        decl.level = scope.level;
        decl.shadows = scope
            .current(&name)
            .is_some_and(|i| self.decls[&name][i].level != scope.level);
        let list = self.decls.entry(name.clone()).or_default();
        list.push(decl);
        let index = list.len() - 1;
        scope.push(name, index);
    }

    /// The scope of a source block nested in `scope`.
    fn nested(&mut self, scope: &Scope) -> Scope {
        self.levels += 1;
        scope.nested(self.levels)
    }

    fn declare_stmt(&mut self, stmt: &Stmt, scope: &mut Scope) {
        if let Stmt::Local(local) = stmt {
            let init = local.init.as_ref().map(|i| &*i.expr);
            let init_ty = init.and_then(|e| self.tmp_type(e));
            for d in let_bindings(&local.pat, init, init_ty) {
                self.declare(d, scope);
            }
        }
    }

    /// The type of `__wf_sN` or `__wf_sN?`, the hoisted value of a suspension point, or of
    /// `match __wf_sN { Ok(v) => v, .. }`, whose type is the `Ok` side.
    fn tmp_type(&self, e: &Expr) -> Option<TyInfo> {
        if let Expr::Match(m) = e
            && m.arms.iter().any(|a| is_ok_identity(&a.pat, &a.body))
            && let Some(TyInfo::Known(_)) = self.tmp_type(&m.expr)
        {
            let Expr::Path(p) = &*m.expr else { return None };
            let info = self
                .susps
                .iter()
                .find(|s| p.path.get_ident() == Some(&s.tmp))?;
            return info.ok_ty.clone().map(TyInfo::Known);
        }
        let (inner, q) = match e {
            Expr::Try(t) => (&*t.expr, true),
            other => (other, false),
        };
        let Expr::Path(p) = inner else { return None };
        let ident = p.path.get_ident()?;
        let info = self.susps.iter().find(|s| s.tmp == *ident)?;
        Some(if q {
            info.ok_ty.clone().map_or(TyInfo::Unknown, TyInfo::Known)
        } else {
            TyInfo::Known(info.full_ty.clone())
        })
    }

    fn lower_stmts(&mut self, stmts: Vec<Stmt>, scope: &mut Scope, cont: Cont) -> Vec<Node> {
        let mut out = Vec::new();
        let n = stmts.len();
        let mut last_diverges = false;
        for i in 0..n {
            let mut stmt = stmts[i].clone();
            let label = self.take_label(&mut stmt);
            let is_last = i + 1 == n;
            if !stmt_suspends(&stmt, &self.ctx) {
                if let Some(l) = label {
                    self.err(
                        l.span(),
                        "`#[state(..)]` names a suspension point, but this statement has none",
                    );
                }
                if is_last && let Stmt::Expr(e, None) = &stmt {
                    if let Cont::FnEnd = cont {
                        let e = self.rewrite_expr(e.clone());
                        out.push(Node::Complete(e));
                        return out;
                    }
                    stmt = Stmt::Expr(e.clone(), Some(Default::default()));
                }
                last_diverges = diverges(&stmt);
                self.declare_stmt(&stmt, scope);
                let stmt = self.rewrite_stmt(stmt);
                self.type_breaks(Some(scope));
                out.push(Node::Stmt(stmt));
                continue;
            }
            let rest = stmts[i + 1..].to_vec();
            if first_evaluated(&mut stmt, &self.ctx).is_some() {
                self.lower_suspend_first(stmt, label, rest, scope, cont, &mut out);
            } else {
                self.lower_suspending(stmt, label, is_last, rest, scope, cont, &mut out);
            }
            return out;
        }
        // After `return`/`break`/`continue` nothing runs; a jump there would only make the
        // target's locals look live here.
        out.push(match cont {
            _ if last_diverges => Node::FallOff {
                span: self.fn_end,
                diverges: true,
            },
            Cont::Jump(j) => Node::Jump(j),
            Cont::FnEnd => Node::FallOff {
                span: self.fn_end,
                diverges: false,
            },
        });
        out
    }

    /// A statement that begins with a suspension point: suspend there, and continue the
    /// statement (with the suspension's value in `__wf_sN`) and the `rest` in the resume block.
    fn lower_suspend_first(
        &mut self,
        mut stmt: Stmt,
        label: Option<syn::Ident>,
        rest: Vec<Stmt>,
        scope: &Scope,
        cont: Cont,
        out: &mut Vec<Node>,
    ) {
        let tmp_index = self.susps.len();
        let tmp = format_ident!("__wf_s{}", tmp_index);
        let tmp_expr: Expr = parse_quote!(#tmp);
        let Some(slot) = first_evaluated(&mut stmt, &self.ctx) else {
            unreachable!("checked by the caller")
        };
        let expr = std::mem::replace(slot, tmp_expr);
        let Some(Ok(susp)) = as_suspension(&expr, &self.ctx) else {
            // Malformed calls were reported by the body scan.
            out.push(Node::FallOff {
                span: expr.span(),
                diverges: true,
            });
            return;
        };
        if let SuspensionKind::Step { func, .. } = &susp.kind
            && let Some(local) = func.get_ident()
            && scope.contains(&local.to_string())
        {
            self.err(
                local.span(),
                format!(
                    "`ctx.step` must name a `#[function]` directly, and `{local}` is a \
                         local of the workflow; write the step's name: `{ctx}.step(my_step, \
                         input)`",
                    ctx = self.ctx
                ),
            );
        }
        let susp = self.rewrite_susp(susp);
        let resume = self.new_block(
            BlockKind::Resume(tmp_index),
            format_ident!("__Unnamed"),
            scope.clone(),
        );
        self.name_site(resume, &susp, label.as_ref(), binding_of(&stmt));
        // What follows a wait is told apart by the signal it waited for.
        let after = match &susp.kind {
            SuspensionKind::Wait { name, .. } => {
                signal_name(name).map(|s| format!("After{}", upper_camel(&s)))
            }
            _ => None,
        };
        let (full_ty, ok_ty) = self.susp_types(&susp);
        self.susps.push(SuspInfo {
            susp,
            tmp,
            full_ty,
            ok_ty,
        });
        out.push(Node::Suspend {
            susp: tmp_index,
            resume,
        });
        let rest = std::iter::once(stmt).chain(rest).collect();
        let mut rscope = scope.clone();
        let nodes = self.qualified(after, |lw| lw.lower_stmts(rest, &mut rscope, cont));
        self.blocks[resume].nodes = nodes;
    }

    /// A statement that suspends inside: a `let` whose value suspends, or an `if`, `match`,
    /// loop or block whose body does; the `rest` follows in a join block.
    #[allow(clippy::too_many_arguments)]
    fn lower_suspending(
        &mut self,
        stmt: Stmt,
        mut label: Option<syn::Ident>,
        is_last: bool,
        rest: Vec<Stmt>,
        scope: &mut Scope,
        cont: Cont,
        out: &mut Vec<Node>,
    ) {
        // A `while` whose condition suspends begins each iteration with that suspension:
        // the name is the condition's.
        let while_label = match &stmt {
            Stmt::Expr(Expr::While(w), _) if expr_suspends(&w.cond, &self.ctx) => label.take(),
            _ => None,
        };
        if let Some(l) = &label {
            self.err(
                l.span(),
                "`#[state(..)]` names the suspension point a statement begins with; put it on \
                 the statement that suspends",
            );
        }
        let stmt = match self.value_loop(stmt) {
            Ok(local) => {
                self.lower_value_loop(local, rest, scope, cont, out);
                return;
            }
            Err(stmt) => *stmt,
        };
        let Stmt::Expr(expr, semi) = stmt else {
            self.not_first(&stmt);
            out.push(Node::FallOff {
                span: stmt.span(),
                diverges: true,
            });
            return;
        };
        let tail_value = is_last && semi.is_none() && matches!(cont, Cont::FnEnd);
        // The rest of the list goes into a join block; it is lowered after the structure
        // so that blocks and loop cursors are numbered in source order.
        let (after, rest_into) = self.after_structure(tail_value, is_last, scope, cont);
        self.lower_structure(expr, semi, while_label, scope, after, out);
        if let Some((j, mut jscope)) = rest_into {
            let nodes = self.lower_stmts(rest, &mut jscope, cont);
            self.blocks[j].nodes = nodes;
        }
    }

    /// A `let` whose value suspends, as the `let v = loop` it is lowered as; any other
    /// statement back unchanged.
    fn value_loop(&mut self, stmt: Stmt) -> Result<syn::Local, Box<Stmt>> {
        let Stmt::Local(mut local) = stmt else {
            return Err(Box::new(stmt));
        };
        let Some(init) = local.init.as_mut().filter(|i| self.produces_value(&i.expr)) else {
            return Err(Box::new(Stmt::Local(local)));
        };
        if !matches!(&*init.expr, Expr::Loop(_)) {
            // `let v = if c { A; a } else { b };` is lowered as the loop
            // `'l: loop { if c { A; break 'l a } else { break 'l b } }`.
            let label = syn::Lifetime::new(
                &format!("'__wf_let{}", self.loop_values.len()),
                Span::call_site(),
            );
            let mut value = (*init.expr).clone();
            break_tails(&mut value, &label);
            *init.expr = parse_quote!(#label: loop { #value });
        }
        Ok(local)
    }

    /// Where control goes after a suspending structure: the function's end for a tail value,
    /// else a join block, which holds the statements after it when there are any.
    fn after_structure(
        &mut self,
        tail_value: bool,
        is_last: bool,
        scope: &Scope,
        cont: Cont,
    ) -> (Cont, Option<(usize, Scope)>) {
        if tail_value {
            return (Cont::FnEnd, None);
        }
        if !is_last {
            let j = self.new_join(scope);
            return (Cont::Jump(j), Some((j, scope.clone())));
        }
        let after = match cont {
            Cont::Jump(j) => Cont::Jump(j),
            Cont::FnEnd => {
                let j = self.new_join(scope);
                self.blocks[j].nodes = vec![Node::FallOff {
                    span: self.fn_end,
                    diverges: false,
                }];
                Cont::Jump(j)
            }
        };
        (after, None)
    }

    /// An `if`, `match`, loop or block whose body suspends, continuing at `after`.
    fn lower_structure(
        &mut self,
        expr: Expr,
        semi: Option<syn::Token![;]>,
        while_label: Option<syn::Ident>,
        scope: &mut Scope,
        after: Cont,
        out: &mut Vec<Node>,
    ) {
        match expr {
            Expr::If(e) => {
                let node = self.lower_if(e, scope, after);
                out.push(node);
            }
            Expr::Match(m) => {
                let node = self.lower_match(m, scope, after);
                out.push(node);
            }
            Expr::Loop(l) => self.lower_loop(l, None, scope, after, out),
            Expr::While(w) => self.lower_while(w, while_label, scope, after, out),
            Expr::ForLoop(f) => self.lower_for(f, scope, after, out),
            Expr::Block(b) if b.label.is_none() => {
                let mut bscope = self.nested(scope);
                let nodes = self.lower_stmts(b.block.stmts, &mut bscope, after);
                out.push(Node::Scope(nodes));
            }
            other => {
                self.not_first(&Stmt::Expr(other, semi));
                out.push(Node::FallOff {
                    span: self.fn_end,
                    diverges: true,
                });
            }
        }
    }

    /// `SameAs(x)` becomes the type of the binding `x` means in `scope` (already resolved
    /// when it was declared).
    pub(super) fn resolve(&self, ty: TyInfo, scope: &Scope) -> TyInfo {
        match ty {
            TyInfo::SameAs(name) => scope
                .current(&name)
                .map_or(TyInfo::Unknown, |i| self.decls[&name][i].ty.clone()),
            other => other,
        }
    }

    pub(super) fn susp_types(&self, susp: &Suspension) -> (Ty, Option<Ty>) {
        match &susp.kind {
            SuspensionKind::Step { func, .. } => (
                Ty::StepResult(func.clone()),
                Some(Ty::StepOutput(func.clone())),
            ),
            SuspensionKind::Wait { ty, .. } | SuspensionKind::WaitAny { ty, .. } => {
                (Ty::WaitResult(quote!(#ty)), Some(Ty::Written(quote!(#ty))))
            }
            SuspensionKind::Sleep { .. } => (Ty::Written(quote!(())), None),
            SuspensionKind::Child {
                workflow,
                detached: false,
                ..
            } => (
                Ty::ChildResult(workflow.clone()),
                Some(Ty::ChildOutput(workflow.clone())),
            ),
            SuspensionKind::Child { .. } => (Ty::Written(quote!(::std::string::String)), None),
            SuspensionKind::FanOutChildren { workflow, .. } => {
                (Ty::Vec(Box::new(Ty::ChildResult(workflow.clone()))), None)
            }
            SuspensionKind::Join { steps, all } => {
                let funcs = steps.iter().map(|(f, _)| f.clone());
                if *all {
                    (Ty::Tuple(funcs.map(Ty::StepResult).collect()), None)
                } else {
                    let outs = Ty::Tuple(funcs.map(Ty::StepOutput).collect());
                    (Ty::StepResultOf(Box::new(outs.clone())), Some(outs))
                }
            }
            SuspensionKind::FanOut { func, all, .. } => {
                if *all {
                    (Ty::Vec(Box::new(Ty::StepResult(func.clone()))), None)
                } else {
                    let outs = Ty::Vec(Box::new(Ty::StepOutput(func.clone())));
                    (Ty::StepResultOf(Box::new(outs.clone())), Some(outs))
                }
            }
        }
    }
}
