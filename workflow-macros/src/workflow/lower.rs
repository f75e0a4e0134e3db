//! Lowering: splits the body at its suspension points into blocks, one enum variant each.
//!
//! A block is straight-line Rust code (kept verbatim) ending in a terminator: suspend at a
//! suspension point (its continuation is a new *resume* block, a persisted variant), jump to a
//! *join* block (loop heads and the code after an `if`/`match`/loop that suspends; hidden
//! variants that are never stored), or complete the run. `if`/`match` whose branches suspend
//! stay Rust `if`/`match` with each branch ending in its own terminator.

use std::collections::BTreeMap;

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::visit_mut::VisitMut;
use syn::{Expr, Pat, Stmt, parse_quote, parse_quote_spanned};

use super::names::{self, Site};
use super::suspend::{Suspension, SuspensionKind, as_suspension, expr_suspends, stmt_suspends};
use super::vars::{
    Decl, DeclKind, JUMP_MACRO, Scope, TyInfo, let_bindings, pat_idents, typed_pattern_decls,
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
    pub(crate) full_ty: TokenStream,
    /// The type of `ctx.x(..).await?`.
    pub(crate) ok_ty: Option<TokenStream>,
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
    pub(crate) krate: TokenStream,
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
    pub(crate) fn new(ctx: String, krate: TokenStream, fn_end: Span) -> Self {
        Self {
            ctx,
            krate,
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
                    ty: TyInfo::Known(quote!(#ty)),
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
            let mut label = self.take_label(&mut stmt);
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
            // A suspension point evaluated first in its statement: suspend here, and continue
            // the statement (with the suspension's value in `__wf_sN`) in the resume block.
            let tmp_index = self.susps.len();
            let tmp = format_ident!("__wf_s{}", tmp_index);
            let tmp_expr: Expr = parse_quote!(#tmp);
            if let Some(slot) = first_evaluated(&mut stmt, &self.ctx) {
                let expr = std::mem::replace(slot, tmp_expr);
                let Some(Ok(susp)) = as_suspension(&expr, &self.ctx) else {
                    // Malformed calls were reported by the body scan.
                    out.push(Node::FallOff {
                        span: expr.span(),
                        diverges: true,
                    });
                    return out;
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
                let mut rest = vec![stmt];
                rest.extend(stmts[i + 1..].iter().cloned());
                let mut rscope = scope.clone();
                let nodes = self.qualified(after, |lw| lw.lower_stmts(rest, &mut rscope, cont));
                self.blocks[resume].nodes = nodes;
                return out;
            }
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
            if let Stmt::Local(local) = &stmt
                && let Some(init) = &local.init
                && self.produces_value(&init.expr)
            {
                let Stmt::Local(mut local) = stmt else {
                    unreachable!("matched above")
                };
                let init = local.init.as_mut().expect("matched above");
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
                let rest = stmts[i + 1..].to_vec();
                self.lower_value_loop(local, rest, scope, cont, &mut out);
                return out;
            }
            let Stmt::Expr(expr, semi) = stmt else {
                self.not_first(&stmt);
                out.push(Node::FallOff {
                    span: stmt.span(),
                    diverges: true,
                });
                return out;
            };
            let tail_value = is_last && semi.is_none() && matches!(cont, Cont::FnEnd);
            // The rest of the list goes into a join block; it is lowered after the structure
            // so that blocks and loop cursors are numbered in source order.
            let mut rest_into = None;
            let after = if tail_value {
                Cont::FnEnd
            } else if is_last {
                match cont {
                    Cont::Jump(j) => Cont::Jump(j),
                    Cont::FnEnd => {
                        let j = self.new_join(scope);
                        self.blocks[j].nodes = vec![Node::FallOff {
                            span: self.fn_end,
                            diverges: false,
                        }];
                        Cont::Jump(j)
                    }
                }
            } else {
                let j = self.new_join(scope);
                rest_into = Some((j, scope.clone()));
                Cont::Jump(j)
            };
            match expr {
                Expr::If(e) => {
                    let node = self.lower_if(e, scope, after);
                    out.push(node);
                }
                Expr::Match(m) => {
                    let node = self.lower_match(m, scope, after);
                    out.push(node);
                }
                Expr::Loop(l) => self.lower_loop(l, None, scope, after, &mut out),
                Expr::While(w) => self.lower_while(w, while_label, scope, after, &mut out),
                Expr::ForLoop(f) => self.lower_for(f, scope, after, &mut out),
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
            if let Some((j, mut jscope)) = rest_into {
                let nodes = self.lower_stmts(stmts[i + 1..].to_vec(), &mut jscope, cont);
                self.blocks[j].nodes = nodes;
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

    /// A `while` whose body or condition suspends. A suspending condition is evaluated at
    /// every iteration, so it becomes the first statement of a loop:
    ///
    /// Input:  `while let Some(p) = ctx.step(f, c).await? { body }`
    /// Output: `loop { if let Some(p) = ctx.step(f, c).await? { body } else { break; } }`
    fn lower_while(
        &mut self,
        mut w: syn::ExprWhile,
        state: Option<syn::Ident>,
        scope: &Scope,
        after: Cont,
        out: &mut Vec<Node>,
    ) {
        if expr_suspends(&w.cond, &self.ctx) {
            if first_eval_expr(&mut w.cond, &self.ctx).is_none() {
                let cond = Stmt::Expr((*w.cond).clone(), None);
                let span = first_suspension_span(&cond, &self.ctx).unwrap_or_else(|| w.cond.span());
                self.err(
                    span,
                    format!(
                        "a `while` condition can suspend only as the first thing it evaluates \
                         (`while {ctx}.step(f, x).await? > n`); otherwise write `loop {{ let r = \
                         {ctx}.step(..).await?; if !(..) {{ break; }} .. }}`",
                        ctx = self.ctx
                    ),
                );
                out.push(Node::FallOff {
                    span: self.fn_end,
                    diverges: true,
                });
                return;
            }
            let span = w.while_token.span;
            let (cond, body) = (&w.cond, &w.body);
            let state = state.map(|s| quote!(#[state(#s)]));
            let test: Stmt = parse_quote_spanned!(span=> #state if #cond #body else { break; });
            let l = syn::ExprLoop {
                attrs: w.attrs,
                label: w.label,
                loop_token: syn::Token![loop](span),
                body: syn::Block {
                    brace_token: w.body.brace_token,
                    stmts: vec![test],
                },
            };
            self.lower_loop(l, None, scope, after, out);
            return;
        }
        let label = w.label.as_ref().map(|l| l.name.ident.to_string());
        let qual = label.as_deref().map(upper_camel);
        let exit = self.exit_block(after, scope);
        let head = self.new_join(scope);
        self.loops.push(LoopCtx {
            label,
            head,
            exit,
            value: None,
            synthetic: false,
        });
        let mut tscope = self.nested(scope);
        self.declare_cond(&w.cond, &mut tscope);
        let then = self.qualified(qual, |lw| {
            lw.lower_stmts(w.body.stmts, &mut tscope, Cont::Jump(head))
        });
        self.loops.pop();
        let cond = self.rewrite_expr(*w.cond);
        self.blocks[head].nodes = vec![Node::If {
            cond,
            then,
            els: vec![Node::Jump(exit)],
        }];
        out.push(Node::Jump(head));
    }

    /// A `loop` (or a `while` whose condition suspends, rewritten as one) whose body suspends:
    /// a join block at its head, `break` jumping to `after`'s block.
    fn lower_loop(
        &mut self,
        l: syn::ExprLoop,
        value: Option<usize>,
        scope: &Scope,
        after: Cont,
        out: &mut Vec<Node>,
    ) {
        let label = l.label.as_ref().map(|l| l.name.ident.to_string());
        let synthetic = label.as_deref().is_some_and(|l| l.starts_with("__wf"));
        let qual = label.as_deref().filter(|_| !synthetic).map(upper_camel);
        let exit = self.exit_block(after, scope);
        // A synthetic loop never repeats (every branch breaks), so it needs no head and its
        // body stays in the current block, where a hoisted scrutinee `__wf_sN` is bound.
        let head = if synthetic {
            exit
        } else {
            self.new_join(scope)
        };
        self.loops.push(LoopCtx {
            label,
            head,
            exit,
            value,
            synthetic,
        });
        let mut hscope = self.nested(scope);
        let nodes = self.qualified(qual, |lw| {
            lw.lower_stmts(l.body.stmts, &mut hscope, Cont::Jump(head))
        });
        self.loops.pop();
        if synthetic {
            out.push(Node::Scope(nodes));
        } else {
            self.blocks[head].nodes = nodes;
            out.push(Node::Jump(head));
        }
    }

    // Input:  let v = loop { let r = ctx.step(f, x).await?; if r > 3 { break r; } };  rest
    // Output: the loop's blocks, each `break r` becoming `{ let __wf_loopN = r; jump exit }`,
    //         and an exit join `let v = __wf_loopN; rest`.
    fn lower_value_loop(
        &mut self,
        mut local: syn::Local,
        rest: Vec<Stmt>,
        scope: &Scope,
        cont: Cont,
        out: &mut Vec<Node>,
    ) {
        let init = local.init.as_mut().expect("checked by the caller");
        let tmp = format_ident!("__wf_loop{}", self.loop_values.len());
        let Expr::Loop(l) = std::mem::replace(&mut *init.expr, parse_quote!(#tmp)) else {
            unreachable!("checked by the caller")
        };
        let written = match &local.pat {
            Pat::Type(pt) => super::vars::written_type(&pt.ty),
            _ => TyInfo::Unknown,
        };
        let slot = self.loop_values.len();
        self.loop_values.push(LoopValue {
            tmp: tmp.clone(),
            ty: written,
        });
        // `'__wf_let` loops stand for an `if`/`match`/block (see `lower_stmts`).
        let (what, how) = match &l.label {
            Some(lb) if lb.name.ident.to_string().starts_with("__wf") => {
                ("`if`/`match` whose branches suspend", "produce")
            }
            _ => ("`loop` that suspends", "`break` with"),
        };
        let exit = self.new_join(scope);
        // The suspension points inside are qualified by the local the value goes to.
        let qual = binding_of(&Stmt::Local(local.clone()));
        self.qualified(qual, |lw| {
            lw.lower_loop(l, Some(slot), scope, Cont::Jump(exit), out);
        });
        let ty = std::mem::replace(&mut self.loop_values[slot].ty, TyInfo::Unknown);
        let pat = &local.pat;
        match &ty {
            TyInfo::Known(_) => {}
            TyInfo::Reference => self.err(
                pat.span(),
                format!(
                    "this {what} produces a reference, which a checkpoint cannot store; {how} an \
                     owned value (e.g. `.clone()`, `.to_string()`)"
                ),
            ),
            _ => {
                let shown = match pat {
                    Pat::Ident(p) => p.ident.to_string(),
                    other => quote::ToTokens::to_token_stream(other).to_string(),
                };
                self.err(
                    pat.span(),
                    format!(
                        "cannot determine the type of `{shown}`, the value of a {what}: the \
                         state machine stores it on the way out; write `let {shown}: Type = ..`"
                    ),
                );
            }
        }
        let mut escope = scope.clone();
        self.declare(
            Decl {
                ident: tmp,
                ty,
                kind: DeclKind::Internal,
                shadows: false,
                level: 0,
            },
            &mut escope,
        );
        self.blocks[exit].scope.clone_from(&escope);
        let mut stmts = vec![Stmt::Local(local)];
        stmts.extend(rest);
        let nodes = self.lower_stmts(stmts, &mut escope, cont);
        self.blocks[exit].nodes = nodes;
    }

    /// Types the `break` values the rewriter saw, in the scope they were written in (`None`
    /// where it is not known: only hoisted suspension values are typed then).
    fn type_breaks(&mut self, scope: Option<&Scope>) {
        for (slot, value) in std::mem::take(&mut self.pending_breaks) {
            if matches!(self.loop_values[slot].ty, TyInfo::Known(_)) {
                continue;
            }
            let ty = match (self.tmp_type(&value), scope) {
                (Some(t), _) => t,
                (None, Some(scope)) => self.resolve(super::vars::infer(&value), scope),
                (None, None) => TyInfo::Unknown,
            };
            if !matches!(ty, TyInfo::Unknown | TyInfo::SameAs(_)) {
                self.loop_values[slot].ty = ty;
            }
        }
    }

    fn exit_block(&mut self, after: Cont, scope: &Scope) -> usize {
        match after {
            Cont::Jump(j) => j,
            Cont::FnEnd => {
                let j = self.new_join(scope);
                self.blocks[j].nodes = vec![Node::FallOff {
                    span: self.fn_end,
                    diverges: false,
                }];
                j
            }
        }
    }

    /// Whether a `let` initialiser whose body suspends can be lowered into a value slot: a
    /// `loop`, or an `if`/`match`/block whose condition does not suspend (a suspension there
    /// that is not evaluated first is refused by `lower_if`/`lower_match`).
    fn produces_value(&self, init: &Expr) -> bool {
        match init {
            Expr::Loop(_) => true,
            Expr::If(i) => !expr_suspends(&i.cond, &self.ctx),
            Expr::Match(m) => !expr_suspends(&m.expr, &self.ctx),
            Expr::Block(b) => b.label.is_none(),
            _ => false,
        }
    }

    fn not_first(&mut self, stmt: &Stmt) {
        let ctx = self.ctx.clone();
        let span = first_suspension_span(stmt, &ctx).unwrap_or_else(|| stmt.span());
        self.err(
            span,
            format!(
                "this suspension point is not the first thing its statement evaluates, so the \
                 workflow cannot stop here; bind it to a local first: `let r = {ctx}.step(..).await?;` \
                 and use `r`"
            ),
        );
    }

    fn declare_cond(&mut self, cond: &Expr, scope: &mut Scope) {
        struct Lets<'a>(&'a mut Vec<(Pat, Expr)>);
        impl<'ast> syn::visit::Visit<'ast> for Lets<'_> {
            fn visit_expr_let(&mut self, l: &'ast syn::ExprLet) {
                self.0.push(((*l.pat).clone(), (*l.expr).clone()));
            }
            fn visit_expr_closure(&mut self, _: &'ast syn::ExprClosure) {}
        }
        let mut lets = Vec::new();
        syn::visit::Visit::visit_expr(&mut Lets(&mut lets), cond);
        // In a chain (`let a = x && let b = a.y`) each scrutinee sees the bindings before it.
        for (pat, expr) in lets {
            let ty = self.scrutinee_type(&expr, scope);
            for d in typed_pattern_decls(&pat, &ty) {
                self.declare(d, scope);
            }
        }
    }

    /// What the type of a matched value (`if let` / `while let` / `match` scrutinee) is known
    /// to be: a hoisted suspension's value or a local or literal of known type.
    fn scrutinee_type(&self, e: &Expr, scope: &Scope) -> TyInfo {
        match self.tmp_type(e) {
            Some(t) => t,
            None => self.resolve(super::vars::infer(e), scope),
        }
    }

    fn lower_if(&mut self, e: syn::ExprIf, scope: &Scope, after: Cont) -> Node {
        if expr_suspends(&e.cond, &self.ctx) {
            self.not_first(&Stmt::Expr(Expr::If(e.clone()), None));
        }
        let mut tscope = self.nested(scope);
        self.declare_cond(&e.cond, &mut tscope);
        let then = self.lower_stmts(e.then_branch.stmts, &mut tscope, after);
        let mut escope = self.nested(scope);
        let els = match e.else_branch {
            None => self.lower_stmts(Vec::new(), &mut escope, after),
            Some((_, else_expr)) => match *else_expr {
                Expr::Block(b) if b.label.is_none() => {
                    self.lower_stmts(b.block.stmts, &mut escope, after)
                }
                other => self.lower_stmts(vec![Stmt::Expr(other, None)], &mut escope, after),
            },
        };
        let cond = self.rewrite_expr(*e.cond);
        Node::If { cond, then, els }
    }

    fn lower_match(&mut self, m: syn::ExprMatch, scope: &Scope, after: Cont) -> Node {
        if expr_suspends(&m.expr, &self.ctx) {
            self.not_first(&Stmt::Expr(Expr::Match(m.clone()), None));
        }
        let mut arms = Vec::new();
        let ty = self.scrutinee_type(&m.expr, scope);
        for arm in m.arms {
            let mut ascope = self.nested(scope);
            for d in typed_pattern_decls(&arm.pat, &ty) {
                self.declare(d, &mut ascope);
            }
            let body = match *arm.body {
                Expr::Block(b) if b.label.is_none() && b.attrs.is_empty() => b.block.stmts,
                other => vec![Stmt::Expr(other, None)],
            };
            let qual = arm_variant(&arm.pat);
            let nodes = self.qualified(qual, |lw| lw.lower_stmts(body, &mut ascope, after));
            let mut pat = arm.pat;
            self.rewrite_pat(&mut pat);
            arms.push((pat, nodes));
        }
        let expr = self.rewrite_expr(*m.expr);
        Node::Match { expr, arms }
    }

    fn lower_for(
        &mut self,
        f: syn::ExprForLoop,
        scope: &mut Scope,
        after: Cont,
        out: &mut Vec<Node>,
    ) {
        let krate = self.krate.clone();
        let var = match &*f.pat {
            Pat::Ident(pi) if pi.by_ref.is_none() && pi.subpat.is_none() => Some(pi.ident.clone()),
            Pat::Wild(_) => None,
            other => {
                self.err(
                    other.span(),
                    "a `for` loop that suspends takes a single name as its pattern; destructure \
                     inside the body: `for item in items { let (a, b) = item; .. }`",
                );
                None
            }
        };
        let cursor = format_ident!("__wf_for{}", self.for_count);
        self.for_count += 1;
        let iter = (*f.expr).clone();
        let (cursor_ty, elem_ty, init) = match &iter {
            Expr::Range(r) if r.start.is_some() && r.end.is_some() => {
                let (start, end) = (
                    r.start.as_deref().expect("checked"),
                    r.end.as_deref().expect("checked"),
                );
                let inclusive = matches!(r.limits, syn::RangeLimits::Closed(_));
                let idx = [start, end].into_iter().find_map(|b| {
                    match self.resolve(super::vars::infer(b), scope) {
                        TyInfo::Known(t) => Some(t),
                        _ => None,
                    }
                });
                let Some(idx) = idx else {
                    self.err(
                        iter.span(),
                        "cannot determine the integer type of this range, which a suspending `for` \
                         loop holds across suspension points; give a bound a type: `0u32..n` or \
                         `0..n as u64`",
                    );
                    return;
                };
                let (start, end) = (
                    self.rewrite_expr(start.clone()),
                    self.rewrite_expr(end.clone()),
                );
                (
                    quote!(#krate::RangeCursor<#idx>),
                    idx.clone(),
                    quote!(#krate::RangeCursor::<#idx>::new(#start, #end, #inclusive)),
                )
            }
            other => {
                let ty = match self.resolve(super::vars::infer(other), scope) {
                    TyInfo::Known(t) => t,
                    TyInfo::Reference => {
                        self.err(
                            other.span(),
                            "a `for` loop that suspends must own what it iterates, because the \
                             remaining items are stored in the checkpoint; iterate a clone: \
                             `for x in items.clone()`",
                        );
                        return;
                    }
                    _ => {
                        self.err(
                            other.span(),
                            "cannot determine the type of the collection this suspending `for` \
                             loop iterates; bind it to a local with a type first: `let items: \
                             Vec<Item> = ..;` and write `for item in items`",
                        );
                        return;
                    }
                };
                let elem = quote!(<#ty as ::core::iter::IntoIterator>::Item);
                let iter = self.rewrite_expr(other.clone());
                (
                    quote!(::std::collections::VecDeque<#elem>),
                    elem,
                    quote!(#krate::vec_cursor(#iter)),
                )
            }
        };
        out.push(Node::Stmt(
            parse_quote!(let mut #cursor: #cursor_ty = #init;),
        ));
        self.declare(
            Decl {
                ident: cursor.clone(),
                ty: TyInfo::Known(cursor_ty),
                kind: DeclKind::Internal,
                shadows: false,
                level: 0,
            },
            scope,
        );
        let exit = self.exit_block(after, scope);
        let head = self.new_join(scope);
        let label = f.label.as_ref().map(|l| l.name.ident.to_string());
        let qual = label.as_deref().map(upper_camel);
        let mut hscope = self.nested(scope);
        let bind: Pat = match &var {
            Some(v) => {
                self.declare(
                    Decl {
                        ident: v.clone(),
                        ty: TyInfo::Known(elem_ty),
                        kind: DeclKind::ForVar,
                        shadows: false,
                        level: 0,
                    },
                    &mut hscope,
                );
                let m = match &*f.pat {
                    Pat::Ident(pi) => pi.mutability,
                    _ => None,
                };
                parse_quote!(#m #v)
            }
            None => parse_quote!(_),
        };
        let jump = jump_expr(exit);
        let mut nodes = vec![Node::Stmt(parse_quote! {
            let #bind = match #krate::ForCursor::next_item(&mut #cursor) {
                ::core::option::Option::Some(__wf_item) => __wf_item,
                ::core::option::Option::None => #jump,
            };
        })];
        self.loops.push(LoopCtx {
            label,
            head,
            exit,
            value: None,
            synthetic: false,
        });
        nodes.extend(self.qualified(qual, |lw| {
            lw.lower_stmts(f.body.stmts, &mut hscope, Cont::Jump(head))
        }));
        self.loops.pop();
        self.blocks[head].nodes = nodes;
        out.push(Node::Jump(head));
    }

    /// `SameAs(x)` becomes the type of the binding `x` means in `scope` (already resolved
    /// when it was declared).
    fn resolve(&self, ty: TyInfo, scope: &Scope) -> TyInfo {
        match ty {
            TyInfo::SameAs(name) => scope
                .current(&name)
                .map_or(TyInfo::Unknown, |i| self.decls[&name][i].ty.clone()),
            other => other,
        }
    }

    fn susp_types(&self, susp: &Suspension) -> (TokenStream, Option<TokenStream>) {
        let krate = &self.krate;
        match &susp.kind {
            SuspensionKind::Step { func, .. } => {
                let out = quote_spanned!(func.span()=> <#func as #krate::Function>::Output);
                (
                    quote!(::core::result::Result<#out, #krate::StepError>),
                    Some(out),
                )
            }
            SuspensionKind::Wait { ty, .. } => (
                quote!(::core::result::Result<#ty, #krate::WaitError>),
                Some(quote!(#ty)),
            ),
            SuspensionKind::Sleep { .. } => (quote!(()), None),
        }
    }

    /// Records what names the resume block `block` of `susp`; [`names::assign`] decides.
    fn name_site(
        &mut self,
        block: usize,
        susp: &Suspension,
        label: Option<&syn::Ident>,
        binding: Option<String>,
    ) {
        let (base, span) = match (label, &susp.kind) {
            (Some(l), _) => (l.to_string(), l.span()),
            (None, SuspensionKind::Step { func, .. }) => {
                let last = func
                    .segments
                    .last()
                    .map(|s| s.ident.to_string())
                    .unwrap_or_default();
                (upper_camel(&last), susp.span)
            }
            (None, SuspensionKind::Wait { name, .. }) => match signal_name(name) {
                Some(s) => (format!("Awaiting{}", upper_camel(&s)), susp.span),
                None => {
                    self.err(
                        name.span(),
                        "the signal name is not a string literal, so the state cannot be named from \
                         it; name this suspension point with `#[state(AwaitingSomething)]` on its \
                         statement",
                    );
                    let placeholder = format!("__Unnamed{}", self.susps.len());
                    self.sites.push(Site {
                        block,
                        explicit: Some(placeholder.clone()),
                        base: placeholder,
                        quals: Vec::new(),
                        span: susp.span,
                    });
                    return;
                }
            },
            (None, SuspensionKind::Sleep { .. }) => ("Sleeping".to_owned(), susp.span),
        };
        let quals = binding
            .into_iter()
            .chain(self.quals.iter().rev().cloned())
            .collect();
        self.sites.push(Site {
            block,
            explicit: label.map(ToString::to_string),
            base,
            quals,
            span,
        });
    }

    /// Names every resume block (see [`names`]).
    fn assign_names(&mut self) {
        let names = names::assign(&self.sites, &["Start"], &mut self.errors);
        for (site, name) in self.sites.iter().zip(names) {
            self.blocks[site.block].name = syn::Ident::new(&name, site.span);
        }
    }

    /// Lowers `nodes` with `qual` naming the construct they are inside, for state names.
    fn qualified<T>(&mut self, qual: Option<String>, f: impl FnOnce(&mut Self) -> T) -> T {
        let pushed = qual.is_some();
        self.quals.extend(qual);
        let out = f(self);
        if pushed {
            self.quals.pop();
        }
        out
    }

    fn take_label(&mut self, stmt: &mut Stmt) -> Option<syn::Ident> {
        let is_state = |a: &syn::Attribute| a.path().is_ident("state");
        let attrs = match stmt {
            Stmt::Local(l) => &mut l.attrs,
            // The parser attaches the outer attributes of `#[state(X)] v = ..;` to its
            // leftmost operand, `v`.
            Stmt::Expr(Expr::Assign(a), _) if !a.attrs.iter().any(is_state) => {
                leftmost_attrs(&mut a.left)?
            }
            Stmt::Expr(e, _) => expr_attrs(e)?,
            _ => return None,
        };
        let pos = attrs.iter().position(is_state)?;
        let attr = attrs.remove(pos);
        match attr.parse_args::<syn::Ident>() {
            Ok(i) => Some(i),
            Err(_) => {
                self.err(
                    attr.span(),
                    "write `#[state(VariantName)]` with one identifier",
                );
                None
            }
        }
    }

    fn rewriter(&mut self) -> Rewriter<'_> {
        Rewriter {
            loops: &self.loops,
            values: &self.loop_values,
            breaks: &mut self.pending_breaks,
            depth: 0,
            inner_labels: Vec::new(),
            errors: &mut self.errors,
            krate: self.krate.clone(),
        }
    }

    fn rewrite_stmt(&mut self, mut s: Stmt) -> Stmt {
        self.rewriter().visit_stmt_mut(&mut s);
        s
    }

    fn rewrite_expr(&mut self, mut e: Expr) -> Expr {
        self.rewriter().visit_expr_mut(&mut e);
        self.type_breaks(None);
        e
    }

    fn rewrite_susp(&mut self, mut susp: Suspension) -> Suspension {
        match &mut susp.kind {
            SuspensionKind::Step { input, retry, .. } => {
                self.rewriter().visit_expr_mut(input);
                if let Some(retry) = retry {
                    self.rewriter().visit_expr_mut(retry);
                }
            }
            SuspensionKind::Wait {
                name,
                timeout,
                metadata,
                ..
            } => {
                self.rewriter().visit_expr_mut(name);
                self.rewriter().visit_expr_mut(timeout);
                self.rewriter().visit_expr_mut(metadata);
            }
            SuspensionKind::Sleep { duration } => self.rewriter().visit_expr_mut(duration),
        }
        susp
    }

    fn rewrite_pat(&mut self, p: &mut Pat) {
        if let Pat::Guard(g) = p {
            self.rewriter().visit_expr_mut(&mut g.guard);
        }
    }
}

/// Turns each way a value leaves `e` (an `if`/`match`/block tail) into `break 'label value`,
/// so that the value of a `let` whose branches suspend flows like a loop's.
fn break_tails(e: &mut Expr, label: &syn::Lifetime) {
    match e {
        Expr::If(i) if i.else_branch.is_some() => {
            break_block_tail(&mut i.then_branch, label);
            if let Some((_, els)) = &mut i.else_branch {
                break_tails(els, label);
            }
        }
        Expr::Match(m) => {
            for arm in &mut m.arms {
                break_tails(&mut arm.body, label);
            }
        }
        Expr::Block(b) if b.label.is_none() => break_block_tail(&mut b.block, label),
        Expr::Return(_) | Expr::Break(_) | Expr::Continue(_) => {}
        other => {
            let span = other.span();
            let mut value = std::mem::replace(other, Expr::PLACEHOLDER);
            // `#[state(..)]` on the value names the suspension point the `break` begins with.
            let attrs = expr_attrs(&mut value)
                .map(std::mem::take)
                .unwrap_or_default();
            *other = parse_quote_spanned!(span=> #(#attrs)* break #label #value);
        }
    }
}

fn break_block_tail(b: &mut syn::Block, label: &syn::Lifetime) {
    match b.stmts.last_mut() {
        Some(Stmt::Expr(e, None)) => break_tails(e, label),
        Some(last) if diverges(last) => {}
        // No tail: the value is `()`, as in the original (a type error unless that fits).
        _ => {
            let span = b.brace_token.span.close();
            b.stmts.push(parse_quote_spanned!(span=> break #label ();));
        }
    }
}

/// The signal name of a wait, when it is a string literal.
fn signal_name(name: &Expr) -> Option<String> {
    match name {
        Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Str(s),
            ..
        }) => Some(s.value()),
        _ => None,
    }
}

/// The qualifier a statement that begins with a suspension point gives its state name: the
/// locals it binds (`let receipt = ..`, `let (a, b) = ..`, `if let Some(x) = ..`) or assigns
/// (`total = ..`, `order.status = ..`).
fn binding_of(stmt: &Stmt) -> Option<String> {
    let mut idents = Vec::new();
    match stmt {
        Stmt::Local(l) => pat_idents(&l.pat, &mut idents),
        Stmt::Expr(Expr::Assign(a), _) => match &*a.left {
            Expr::Path(p) if p.qself.is_none() => idents.extend(p.path.get_ident().cloned()),
            Expr::Field(f) => {
                if let syn::Member::Named(m) = &f.member {
                    idents.push(m.clone());
                }
            }
            _ => {}
        },
        Stmt::Expr(Expr::If(i), _) => {
            if let Expr::Let(l) = &*i.cond {
                pat_idents(&l.pat, &mut idents);
            }
        }
        _ => {}
    }
    let words: Vec<String> = idents
        .iter()
        .map(|i| i.to_string().trim_start_matches('_').to_owned())
        .filter(|w| !w.is_empty())
        .collect();
    (!words.is_empty()).then(|| upper_camel(&words.join("_")))
}

/// The variant a `match` arm matches, for the state names inside it: `Decision::Approve { .. }`
/// → `Approve`, `Err(WaitError::TimedOut)` → `TimedOut`, `Some(x)` → `Some`, `None` → `None`.
/// Wildcards, bindings, literals and or-patterns name nothing.
fn arm_variant(pat: &Pat) -> Option<String> {
    let last = |p: &syn::Path| p.segments.last().map(|s| s.ident.to_string());
    match pat {
        Pat::Guard(g) => arm_variant(&g.pat),
        Pat::Paren(p) => arm_variant(&p.pat),
        Pat::TupleStruct(ts) if ts.qself.is_none() => {
            let inner = match ts.elems.iter().collect::<Vec<_>>().as_slice() {
                [only] => arm_variant(only),
                _ => None,
            };
            inner.or_else(|| last(&ts.path))
        }
        Pat::Struct(st) if st.qself.is_none() => last(&st.path),
        Pat::Path(p) if p.qself.is_none() => last(&p.path),
        Pat::Ident(pi)
            if pi.subpat.is_none() && pi.ident.to_string().starts_with(char::is_uppercase) =>
        {
            Some(pi.ident.to_string())
        }
        _ => None,
    }
    .map(|v| upper_camel(&v))
}

/// Whether an arm is `Ok(v) => v`.
fn is_ok_identity(pat: &Pat, body: &Expr) -> bool {
    let Pat::TupleStruct(ts) = pat else {
        return false;
    };
    if ts.qself.is_some()
        || ts.path.segments.last().is_none_or(|s| s.ident != "Ok")
        || ts.elems.len() != 1
    {
        return false;
    }
    let Some(Pat::Ident(bound)) = ts.elems.first() else {
        return false;
    };
    let body = match body {
        Expr::Block(b) if b.block.stmts.len() == 1 => match &b.block.stmts[0] {
            Stmt::Expr(e, None) => e,
            _ => return false,
        },
        other => other,
    };
    matches!(body, Expr::Path(p) if p.qself.is_none() && p.path.is_ident(&bound.ident))
}

fn expr_attrs(e: &mut Expr) -> Option<&mut Vec<syn::Attribute>> {
    Some(match e {
        Expr::Await(x) => &mut x.attrs,
        Expr::Try(x) => &mut x.attrs,
        Expr::Assign(x) => &mut x.attrs,
        Expr::Match(x) => &mut x.attrs,
        Expr::If(x) => &mut x.attrs,
        Expr::MethodCall(x) => &mut x.attrs,
        Expr::Call(x) => &mut x.attrs,
        Expr::Field(x) => &mut x.attrs,
        Expr::Return(x) => &mut x.attrs,
        Expr::Loop(x) => &mut x.attrs,
        Expr::While(x) => &mut x.attrs,
        Expr::ForLoop(x) => &mut x.attrs,
        Expr::Block(x) => &mut x.attrs,
        Expr::Break(x) => &mut x.attrs,
        _ => return None,
    })
}

/// The attributes of the leftmost operand of an assignment's place (`v`, `v.f`, `v[i]`).
fn leftmost_attrs(e: &mut Expr) -> Option<&mut Vec<syn::Attribute>> {
    match e {
        Expr::Field(f) => leftmost_attrs(&mut f.base),
        Expr::Index(i) => leftmost_attrs(&mut i.expr),
        Expr::Path(p) => Some(&mut p.attrs),
        _ => None,
    }
}

/// The jump placeholder, replaced by the move into the target block's variant at expansion.
pub(crate) fn jump_expr(target: usize) -> Expr {
    let ident = syn::Ident::new(JUMP_MACRO, Span::call_site());
    let lit = syn::LitInt::new(&target.to_string(), Span::call_site());
    parse_quote!(#ident!(#lit))
}

/// Whether a statement obviously never completes (`return`, `panic!`, ...), so the body does not
/// fall off its end after it.
fn diverges(s: &Stmt) -> bool {
    match s {
        Stmt::Expr(Expr::Return(_) | Expr::Break(_) | Expr::Continue(_), _) => true,
        Stmt::Expr(Expr::Macro(m), _) => ["panic", "unreachable", "todo", "unimplemented"]
            .iter()
            .any(|n| m.mac.path.is_ident(n)),
        Stmt::Macro(m) => ["panic", "unreachable", "todo", "unimplemented"]
            .iter()
            .any(|n| m.mac.path.is_ident(n)),
        _ => false,
    }
}

fn first_suspension_span(stmt: &Stmt, ctx: &str) -> Option<Span> {
    struct Find<'a> {
        ctx: &'a str,
        span: Option<Span>,
    }
    impl<'ast> syn::visit::Visit<'ast> for Find<'_> {
        fn visit_expr(&mut self, e: &'ast Expr) {
            if self.span.is_some() {
                return;
            }
            if as_suspension(e, self.ctx).is_some() {
                self.span = Some(e.span());
                return;
            }
            syn::visit::visit_expr(self, e);
        }
    }
    let mut f = Find { ctx, span: None };
    syn::visit::Visit::visit_stmt(&mut f, stmt);
    f.span
}

/// The place of the suspension point a statement evaluates before anything else, if any.
fn first_evaluated<'a>(stmt: &'a mut Stmt, ctx: &str) -> Option<&'a mut Expr> {
    match stmt {
        Stmt::Local(l) => first_eval_expr(&mut l.init.as_mut()?.expr, ctx),
        Stmt::Expr(e, _) => first_eval_expr(e, ctx),
        _ => None,
    }
}

fn first_eval_expr<'a>(e: &'a mut Expr, ctx: &str) -> Option<&'a mut Expr> {
    if as_suspension(e, ctx).is_some() {
        return Some(e);
    }
    match e {
        Expr::Try(t) => first_eval_expr(&mut t.expr, ctx),
        Expr::Field(f) => first_eval_expr(&mut f.base, ctx),
        Expr::MethodCall(m) => first_eval_expr(&mut m.receiver, ctx),
        Expr::Match(m) => first_eval_expr(&mut m.expr, ctx),
        Expr::If(i) => first_eval_expr(&mut i.cond, ctx),
        Expr::Let(l) => first_eval_expr(&mut l.expr, ctx),
        Expr::Paren(p) => first_eval_expr(&mut p.expr, ctx),
        Expr::Group(g) => first_eval_expr(&mut g.expr, ctx),
        Expr::Binary(b) => first_eval_expr(&mut b.left, ctx),
        Expr::Cast(c) => first_eval_expr(&mut c.expr, ctx),
        Expr::Unary(u) => first_eval_expr(&mut u.expr, ctx),
        Expr::Index(i) => first_eval_expr(&mut i.expr, ctx),
        Expr::Return(r) => first_eval_expr(r.expr.as_mut()?, ctx),
        Expr::Break(b) => first_eval_expr(b.expr.as_mut()?, ctx),
        Expr::Assign(a) if matches!(&*a.left, Expr::Path(_) | Expr::Field(_)) => {
            first_eval_expr(&mut a.right, ctx)
        }
        Expr::Call(c) if matches!(&*c.func, Expr::Path(_)) => {
            first_eval_expr(c.args.first_mut()?, ctx)
        }
        Expr::Tuple(t) => first_eval_expr(t.elems.first_mut()?, ctx),
        _ => None,
    }
}

/// Rewrites verbatim code for the transition function: `return e` completes the run, `?`
/// completes it with the error, and `break`/`continue` of a lowered loop jump to its blocks.
struct Rewriter<'a> {
    loops: &'a [LoopCtx],
    values: &'a [LoopValue],
    /// The values of `break`s that leave a `let v = loop`, for [`Lowerer::type_breaks`].
    breaks: &'a mut Vec<(usize, Expr)>,
    depth: usize,
    inner_labels: Vec<String>,
    errors: &'a mut Vec<syn::Error>,
    krate: TokenStream,
}

impl Rewriter<'_> {
    fn target(&self, label: Option<&syn::Lifetime>) -> Option<&LoopCtx> {
        match label {
            Some(l) => {
                let name = l.ident.to_string();
                if self.inner_labels.contains(&name) {
                    None
                } else {
                    self.loops
                        .iter()
                        .rev()
                        .find(|c| c.label.as_deref() == Some(name.as_str()))
                }
            }
            None if self.depth > 0 => None,
            None => self.loops.iter().rev().find(|c| !c.synthetic),
        }
    }

    fn inner_loop(&mut self, label: Option<&syn::Label>, e: &mut Expr) {
        self.depth += 1;
        if let Some(l) = label {
            self.inner_labels.push(l.name.ident.to_string());
        }
        syn::visit_mut::visit_expr_mut(self, e);
        if label.is_some() {
            self.inner_labels.pop();
        }
        self.depth -= 1;
    }
}

impl VisitMut for Rewriter<'_> {
    fn visit_expr_mut(&mut self, e: &mut Expr) {
        let krate = self.krate.clone();
        match e {
            // These have their own `return`, `?` and loops.
            Expr::Closure(_) | Expr::Async(_) | Expr::Const(_) | Expr::TryBlock(_) => {}
            Expr::Return(r) => {
                if let Some(inner) = &mut r.expr {
                    self.visit_expr_mut(inner);
                }
                let span = r.return_token.span;
                let inner = r.expr.take().map_or_else(|| quote!(()), |b| quote!(#b));
                *e = parse_quote_spanned!(span=> return #krate::Transition::Complete(#inner));
            }
            Expr::Try(t) => {
                self.visit_expr_mut(&mut t.expr);
                let span = t.question_token.span;
                let inner = &t.expr;
                *e = parse_quote_spanned! {span=>
                    match #inner {
                        ::core::result::Result::Ok(__wf_v) => __wf_v,
                        ::core::result::Result::Err(__wf_e) => {
                            return #krate::Transition::Complete(
                                ::core::result::Result::Err(::core::convert::From::from(__wf_e)),
                            );
                        }
                    }
                };
            }
            Expr::Break(b) => {
                let original = b.expr.as_deref().cloned();
                if let Some(inner) = &mut b.expr {
                    self.visit_expr_mut(inner);
                }
                if let Some(target) = self.target(b.label.as_ref()) {
                    let exit = target.exit;
                    if let Some(slot) = target.value {
                        let tmp = &self.values[slot].tmp;
                        let jump = jump_expr(exit);
                        match (&b.expr, original) {
                            (Some(v), Some(original)) => {
                                self.breaks.push((slot, original));
                                *e = parse_quote!({
                                    let #tmp = #v;
                                    #jump
                                });
                            }
                            _ => {
                                self.errors.push(syn::Error::new(
                                    b.break_token.span,
                                    "this `loop` produces the value of a `let`, so its `break` \
                                     needs a value: `break value`",
                                ));
                                *e = jump;
                            }
                        }
                        return;
                    }
                    if let Some(v) = &b.expr {
                        self.errors.push(syn::Error::new(
                            v.span(),
                            "`break` with a value cannot leave a loop that suspends; assign the \
                             value to a local declared before the loop, then `break`",
                        ));
                    }
                    *e = jump_expr(exit);
                }
            }
            Expr::Continue(c) => {
                if let Some(target) = self.target(c.label.as_ref()) {
                    *e = jump_expr(target.head);
                }
            }
            Expr::Loop(l) => {
                let label = l.label.clone();
                self.inner_loop(label.as_ref(), e);
            }
            Expr::While(w) => {
                let label = w.label.clone();
                self.inner_loop(label.as_ref(), e);
            }
            Expr::ForLoop(f) => {
                let label = f.label.clone();
                self.inner_loop(label.as_ref(), e);
            }
            Expr::Block(b) if b.label.is_some() => {
                // A labeled block is a `break` target, but not a `continue` one.
                let name = b
                    .label
                    .as_ref()
                    .map(|l| l.name.ident.to_string())
                    .unwrap_or_default();
                self.inner_labels.push(name);
                syn::visit_mut::visit_expr_mut(self, e);
                self.inner_labels.pop();
            }
            _ => syn::visit_mut::visit_expr_mut(self, e),
        }
    }

    fn visit_macro_mut(&mut self, m: &mut syn::Macro) {
        // Format-like macros take expressions; rewrite a `?` or `return` inside them too.
        let has = m
            .tokens
            .clone()
            .into_iter()
            .any(|t| contains_try_or_return(&t));
        if !has {
            return;
        }
        let parser = syn::punctuated::Punctuated::<Expr, syn::Token![,]>::parse_terminated;
        if let Ok(mut args) = syn::parse::Parser::parse2(parser, m.tokens.clone()) {
            for a in args.iter_mut() {
                self.visit_expr_mut(a);
            }
            m.tokens = quote!(#args);
        }
    }

    fn visit_item_mut(&mut self, _: &mut syn::Item) {}
}

fn contains_try_or_return(t: &proc_macro2::TokenTree) -> bool {
    match t {
        proc_macro2::TokenTree::Punct(p) => p.as_char() == '?',
        proc_macro2::TokenTree::Ident(i) => i == "return",
        proc_macro2::TokenTree::Group(g) => {
            g.stream().into_iter().any(|t| contains_try_or_return(&t))
        }
        proc_macro2::TokenTree::Literal(_) => false,
    }
}
