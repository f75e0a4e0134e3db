//! Lowering of the control flow that suspends: `while`, `loop`, `let v = loop`/`if`/`match`,
//! `if`, `match` and `for`.

use super::*;
use crate::workflow::ir::{self, Part};

impl Lowerer {
    /// A `while` whose body or condition suspends. A suspending condition is evaluated at
    /// every iteration, so it becomes the first statement of a loop:
    ///
    /// Input:  `while let Some(p) = ctx.step(f, c).await? { body }`
    /// Output: `loop { if let Some(p) = ctx.step(f, c).await? { body } else { break; } }`
    pub(super) fn lower_while(
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
    pub(super) fn lower_loop(
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
    pub(super) fn lower_value_loop(
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
            Pat::Type(pt) => vars::written_type(&pt.ty),
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
    pub(super) fn type_breaks(&mut self, scope: Option<&Scope>) {
        for (slot, value) in std::mem::take(&mut self.pending_breaks) {
            if matches!(self.loop_values[slot].ty, TyInfo::Known(_)) {
                continue;
            }
            let ty = match (self.tmp_type(&value), scope) {
                (Some(t), _) => t,
                (None, Some(scope)) => self.resolve(vars::infer(&value), scope),
                (None, None) => TyInfo::Unknown,
            };
            if !matches!(ty, TyInfo::Unknown | TyInfo::SameAs(_)) {
                self.loop_values[slot].ty = ty;
            }
        }
    }

    pub(super) fn exit_block(&mut self, after: Cont, scope: &Scope) -> usize {
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
    pub(super) fn produces_value(&self, init: &Expr) -> bool {
        match init {
            Expr::Loop(_) => true,
            Expr::If(i) => !expr_suspends(&i.cond, &self.ctx),
            Expr::Match(m) => !expr_suspends(&m.expr, &self.ctx),
            Expr::Block(b) => b.label.is_none(),
            _ => false,
        }
    }

    pub(super) fn not_first(&mut self, stmt: &Stmt) {
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

    pub(super) fn declare_cond(&mut self, cond: &Expr, scope: &mut Scope) {
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
    pub(super) fn scrutinee_type(&self, e: &Expr, scope: &Scope) -> TyInfo {
        match self.tmp_type(e) {
            Some(t) => t,
            None => self.resolve(vars::infer(e), scope),
        }
    }

    pub(super) fn lower_if(&mut self, e: syn::ExprIf, scope: &Scope, after: Cont) -> Node {
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

    pub(super) fn lower_match(&mut self, m: syn::ExprMatch, scope: &Scope, after: Cont) -> Node {
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

    pub(super) fn lower_for(
        &mut self,
        f: syn::ExprForLoop,
        scope: &mut Scope,
        after: Cont,
        out: &mut Vec<Node>,
    ) {
        let var = self.for_var(&f.pat);
        let cursor = format_ident!("__wf_for{}", self.for_count);
        self.for_count += 1;
        let iter = (*f.expr).clone();
        let Some((cursor_ty, elem_ty, init)) = self.for_cursor(&iter, scope) else {
            return;
        };
        out.push(Node::ForCursor {
            cursor: cursor.clone(),
            ty: cursor_ty.clone(),
            init,
        });
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
        let bind = self.bind_for_var(&f.pat, var, elem_ty, &mut hscope);
        let jump = jump_expr(exit);
        let next = ir::next_item(&cursor);
        let mut nodes = vec![Node::Stmt(parse_quote! {
            let #bind = match #next {
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

    /// The name a suspending `for` binds each item to (`None` for `_`).
    fn for_var(&mut self, pat: &Pat) -> Option<syn::Ident> {
        match pat {
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
        }
    }

    /// Declares the loop variable in the body's scope; the pattern that binds each item.
    fn bind_for_var(
        &mut self,
        pat: &Pat,
        var: Option<syn::Ident>,
        elem_ty: Ty,
        hscope: &mut Scope,
    ) -> Pat {
        let Some(v) = var else {
            return parse_quote!(_);
        };
        self.declare(
            Decl {
                ident: v.clone(),
                ty: TyInfo::Known(elem_ty),
                kind: DeclKind::ForVar,
                shadows: false,
                level: 0,
            },
            hscope,
        );
        let m = match pat {
            Pat::Ident(pi) => pi.mutability,
            _ => None,
        };
        parse_quote!(#m #v)
    }

    /// The cursor a suspending `for` holds across its suspension points: its type, the
    /// element type and its initialiser. A bounded integer range becomes a `RangeCursor`, a
    /// collection of known type a `VecDeque` of its items.
    fn for_cursor(&mut self, iter: &Expr, scope: &Scope) -> Option<(Ty, Ty, CursorInit)> {
        match iter {
            Expr::Range(r) if r.start.is_some() && r.end.is_some() => {
                let (start, end) = (
                    r.start.as_deref().expect("checked"),
                    r.end.as_deref().expect("checked"),
                );
                let inclusive = matches!(r.limits, syn::RangeLimits::Closed(_));
                let idx = [start, end].into_iter().find_map(|b| {
                    match self.resolve(vars::infer(b), scope) {
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
                    return None;
                };
                let (start, end) = (
                    self.rewrite_expr(start.clone()),
                    self.rewrite_expr(end.clone()),
                );
                Some((
                    Ty::RangeCursor(Box::new(idx.clone())),
                    idx.clone(),
                    CursorInit::Range {
                        idx,
                        start: Box::new(start),
                        end: Box::new(end),
                        inclusive,
                    },
                ))
            }
            other => {
                let ty = match self.resolve(vars::infer(other), scope) {
                    TyInfo::Known(t) => t,
                    TyInfo::Reference => {
                        self.err(
                            other.span(),
                            "a `for` loop that suspends must own what it iterates, because the \
                             remaining items are stored in the checkpoint; iterate a clone: \
                             `for x in items.clone()`",
                        );
                        return None;
                    }
                    _ => {
                        self.err(
                            other.span(),
                            "cannot determine the type of the collection this suspending `for` \
                             loop iterates; bind it to a local with a type first: `let items: \
                             Vec<Item> = ..;` and write `for item in items`",
                        );
                        return None;
                    }
                };
                let elem = ty.part(Part::Item);
                let iter = self.rewrite_expr(other.clone());
                Some((
                    Ty::ItemsCursor(Box::new(elem.clone())),
                    elem,
                    CursorInit::Items(iter),
                ))
            }
        }
    }
}

/// Turns each way a value leaves `e` (an `if`/`match`/block tail) into `break 'label value`,
/// so that the value of a `let` whose branches suspend flows like a loop's.
pub(super) fn break_tails(e: &mut Expr, label: &syn::Lifetime) {
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

pub(super) fn break_block_tail(b: &mut syn::Block, label: &syn::Lifetime) {
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
