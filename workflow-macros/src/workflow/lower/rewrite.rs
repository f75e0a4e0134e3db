//! Rewriting of verbatim code for the transition function: `return`, `?`, `break` and
//! `continue` become transitions and jumps.

use super::*;
use crate::workflow::ir;

impl Lowerer {
    pub(super) fn rewriter(&mut self) -> Rewriter<'_> {
        Rewriter {
            loops: &self.loops,
            values: &self.loop_values,
            breaks: &mut self.pending_breaks,
            depth: 0,
            inner_labels: Vec::new(),
            errors: &mut self.errors,
        }
    }

    pub(super) fn rewrite_stmt(&mut self, mut s: Stmt) -> Stmt {
        self.rewriter().visit_stmt_mut(&mut s);
        s
    }

    pub(super) fn rewrite_expr(&mut self, mut e: Expr) -> Expr {
        self.rewriter().visit_expr_mut(&mut e);
        self.type_breaks(None);
        e
    }

    pub(super) fn rewrite_susp(&mut self, mut susp: Suspension) -> Suspension {
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
            SuspensionKind::WaitAny {
                timeout, metadata, ..
            } => {
                self.rewriter().visit_expr_mut(timeout);
                self.rewriter().visit_expr_mut(metadata);
            }
            SuspensionKind::Join { steps, .. } => {
                for (_, input) in steps {
                    self.rewriter().visit_expr_mut(input);
                }
            }
            SuspensionKind::FanOut { items, limit, .. } => {
                self.rewriter().visit_expr_mut(items);
                self.rewriter().visit_expr_mut(limit);
            }
            SuspensionKind::Child { input, id, .. } => {
                self.rewriter().visit_expr_mut(input);
                if let Some(id) = id {
                    self.rewriter().visit_expr_mut(id);
                }
            }
            SuspensionKind::FanOutChildren { items, .. } => self.rewriter().visit_expr_mut(items),
        }
        susp
    }

    pub(super) fn rewrite_pat(&mut self, p: &mut Pat) {
        if let Pat::Guard(g) = p {
            self.rewriter().visit_expr_mut(&mut g.guard);
        }
    }
}

/// The jump placeholder, replaced by the move into the target block's variant at expansion.
pub(crate) fn jump_expr(target: usize) -> Expr {
    let ident = syn::Ident::new(JUMP_MACRO, Span::call_site());
    let lit = syn::LitInt::new(&target.to_string(), Span::call_site());
    parse_quote!(#ident!(#lit))
}

/// Rewrites verbatim code for the transition function: `return e` completes the run, `?`
/// completes it with the error, and `break`/`continue` of a lowered loop jump to its blocks.
pub(super) struct Rewriter<'a> {
    loops: &'a [LoopCtx],
    values: &'a [LoopValue],
    /// The values of `break`s that leave a `let v = loop`, for [`Lowerer::type_breaks`].
    breaks: &'a mut Vec<(usize, Expr)>,
    depth: usize,
    inner_labels: Vec<String>,
    errors: &'a mut Vec<syn::Error>,
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

impl Rewriter<'_> {
    /// `return x` completes the run with `x`.
    fn rewrite_return(&mut self, e: &mut Expr) {
        let Expr::Return(r) = e else { return };
        if let Some(inner) = &mut r.expr {
            self.visit_expr_mut(inner);
        }
        let span = r.return_token.span;
        let inner = r.expr.take().map_or_else(|| quote!(()), |b| quote!(#b));
        *e = ir::complete(span, &inner);
    }

    /// `x?` completes the run with the error converted, as `?` would return it.
    fn rewrite_try(&mut self, e: &mut Expr) {
        let Expr::Try(t) = e else { return };
        self.visit_expr_mut(&mut t.expr);
        let span = t.question_token.span;
        let inner = &t.expr;
        let error = quote_spanned!(span=>
            ::core::result::Result::Err(::core::convert::From::from(__wf_e)),
        );
        let complete = ir::complete(span, &error);
        *e = parse_quote_spanned! {span=>
            match #inner {
                ::core::result::Result::Ok(__wf_v) => __wf_v,
                ::core::result::Result::Err(__wf_e) => {
                    #complete;
                }
            }
        };
    }

    /// `break` of a lowered loop jumps to its exit, storing the value of a `let v = loop`.
    fn rewrite_break(&mut self, e: &mut Expr) {
        let Expr::Break(b) = e else { return };
        let original = b.expr.as_deref().cloned();
        if let Some(inner) = &mut b.expr {
            self.visit_expr_mut(inner);
        }
        let Some(target) = self.target(b.label.as_ref()) else {
            return;
        };
        let exit = target.exit;
        let Some(slot) = target.value else {
            if let Some(v) = &b.expr {
                self.errors.push(syn::Error::new(
                    v.span(),
                    "`break` with a value cannot leave a loop that suspends; assign the \
                     value to a local declared before the loop, then `break`",
                ));
            }
            *e = jump_expr(exit);
            return;
        };
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
    }
}

impl VisitMut for Rewriter<'_> {
    fn visit_expr_mut(&mut self, e: &mut Expr) {
        match e {
            // These have their own `return`, `?` and loops.
            Expr::Closure(_) | Expr::Async(_) | Expr::Const(_) | Expr::TryBlock(_) => {}
            Expr::Return(_) => self.rewrite_return(e),
            Expr::Try(_) => self.rewrite_try(e),
            Expr::Break(_) => self.rewrite_break(e),
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

pub(super) fn contains_try_or_return(t: &proc_macro2::TokenTree) -> bool {
    match t {
        proc_macro2::TokenTree::Punct(p) => p.as_char() == '?',
        proc_macro2::TokenTree::Ident(i) => i == "return",
        proc_macro2::TokenTree::Group(g) => {
            g.stream().into_iter().any(|t| contains_try_or_return(&t))
        }
        proc_macro2::TokenTree::Literal(_) => false,
    }
}
