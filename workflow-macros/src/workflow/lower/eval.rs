//! Evaluation order: which suspension point a statement evaluates first, and which statements
//! never complete.

use super::*;

/// Whether an arm is `Ok(v) => v`.
pub(super) fn is_ok_identity(pat: &Pat, body: &Expr) -> bool {
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

/// Whether a statement obviously never completes (`return`, `panic!`, ...), so the body does not
/// fall off its end after it.
pub(super) fn diverges(s: &Stmt) -> bool {
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

pub(super) fn first_suspension_span(stmt: &Stmt, ctx: &str) -> Option<Span> {
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
pub(super) fn first_evaluated<'a>(stmt: &'a mut Stmt, ctx: &str) -> Option<&'a mut Expr> {
    match stmt {
        Stmt::Local(l) => first_eval_expr(&mut l.init.as_mut()?.expr, ctx),
        Stmt::Expr(e, _) => first_eval_expr(e, ctx),
        _ => None,
    }
}

pub(super) fn first_eval_expr<'a>(e: &'a mut Expr, ctx: &str) -> Option<&'a mut Expr> {
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
