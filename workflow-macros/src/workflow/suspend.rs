//! Recognising suspension points and rejecting constructs the lowering cannot express.

use proc_macro2::{Span, TokenStream, TokenTree};
use syn::spanned::Spanned;
use syn::visit::Visit;
use syn::{Expr, ExprAwait, ExprMethodCall, GenericArgument, Path, Type};

/// One `ctx.step(..)`, `ctx.wait_for_signal::<T>(..)` or `ctx.sleep(..)` followed by `.await`.
#[derive(Clone)]
pub(crate) struct Suspension {
    pub(crate) kind: SuspensionKind,
    pub(crate) span: Span,
}

#[derive(Clone)]
pub(crate) enum SuspensionKind {
    Step {
        func: Path,
        input: Box<Expr>,
        /// The policy of `ctx.step(f, x).retry(policy)`, replacing the step's own for this call.
        retry: Option<Box<Expr>>,
    },
    Wait {
        ty: Box<Type>,
        name: Box<Expr>,
        timeout: Box<Expr>,
        metadata: Box<Expr>,
    },
    Sleep {
        duration: Box<Expr>,
    },
    /// `ctx.join((f, x), (g, y))` (first error) or `ctx.join_all(..)` (each result): several
    /// different steps at once.
    Join {
        steps: Vec<(Path, Expr)>,
        all: bool,
    },
    /// `ctx.fan_out(f, items, limit)` (first error) or `ctx.fan_out_all(..)` (each result):
    /// one step per item, at most `limit` at a time.
    FanOut {
        func: Path,
        items: Box<Expr>,
        limit: Box<Expr>,
        all: bool,
    },
    /// `ctx.child(w, input)` (awaited) or `ctx.start_child(w, input)` (detached), with
    /// `.id(run_id)` when the workflow gives the child's run id.
    Child {
        workflow: Path,
        input: Box<Expr>,
        id: Option<Box<Expr>>,
        detached: bool,
    },
    /// `ctx.fan_out_children(w, items)`: one awaited child run per item.
    FanOutChildren {
        workflow: Path,
        items: Box<Expr>,
    },
    /// `ctx.wait_for_any::<T>(["a", "b"], timeout, metadata)`: the first of several signals.
    WaitAny {
        ty: Box<Type>,
        /// The signal names, literal so that the engine knows them.
        names: Vec<syn::LitStr>,
        timeout: Box<Expr>,
        metadata: Box<Expr>,
    },
}

const METHODS: [&str; 11] = [
    "step",
    "child",
    "start_child",
    "fan_out_children",
    "wait_for_signal",
    "wait_for_any",
    "sleep",
    "join",
    "join_all",
    "fan_out",
    "fan_out_all",
];

fn is_ctx(expr: &Expr, ctx: &str) -> bool {
    matches!(expr, Expr::Path(p) if p.qself.is_none() && p.path.is_ident(ctx))
}

fn ctx_call<'a>(expr: &'a Expr, ctx: &str) -> Option<&'a ExprMethodCall> {
    match expr {
        Expr::MethodCall(m)
            if is_ctx(&m.receiver, ctx) && METHODS.iter().any(|n| m.method == n) =>
        {
            Some(m)
        }
        _ => None,
    }
}

/// The call a suspension awaits: `ctx.<method>(..)` itself, or the receiver of an option
/// chained onto it (`ctx.step(f, x).retry(policy)`).
fn awaited_call<'a>(
    base: &'a Expr,
    ctx: &str,
) -> Option<(&'a ExprMethodCall, Option<&'a ExprMethodCall>)> {
    if let Some(call) = ctx_call(base, ctx) {
        return Some((call, None));
    }
    match base {
        Expr::MethodCall(option) => Some((ctx_call(&option.receiver, ctx)?, Some(option))),
        _ => None,
    }
}

/// Recognises `ctx.<method>(..).await` and `ctx.step(..).retry(policy).await`; `Some(Err)` for
/// a malformed one.
pub(crate) fn as_suspension(expr: &Expr, ctx: &str) -> Option<syn::Result<Suspension>> {
    let Expr::Await(ExprAwait { base, .. }) = expr else {
        return None;
    };
    let (call, option) = awaited_call(base, ctx)?;
    let parsed = parse_call(call, expr.span());
    let Some(option) = option else {
        return Some(parsed);
    };
    Some(parsed.and_then(|mut susp| {
        if let SuspensionKind::Child { id, .. } = &mut susp.kind {
            *id = Some(child_option(call, option)?);
            return Ok(susp);
        }
        let step = matches!(susp.kind, SuspensionKind::Step { .. });
        if option.method != "retry" || !step {
            let what = if step {
                format!("`.{}(..)` is not an option of `ctx.step`", option.method)
            } else {
                format!(
                    "`.{}(..)` cannot follow `ctx.{}(..)`",
                    option.method, call.method
                )
            };
            return Err(syn::Error::new(
                option.method.span(),
                format!(
                    "{what}; a suspension point is awaited directly, and only a step takes an \
                     option: `ctx.step(f, input).retry(policy).await`"
                ),
            ));
        }
        if let Some(t) = &option.turbofish {
            return Err(syn::Error::new_spanned(
                t,
                "`.retry` takes no type arguments",
            ));
        }
        if option.args.len() != 1 {
            return Err(syn::Error::new(
                option.method.span(),
                "`.retry` takes one argument, a `RetryPolicy`: `ctx.step(f, input)\
                 .retry(RetryPolicy::DEFAULT.max_attempts(5)).await`",
            ));
        }
        if let SuspensionKind::Step { retry, .. } = &mut susp.kind {
            *retry = Some(Box::new(option.args[0].clone()));
        }
        Ok(susp)
    }))
}

/// The expressions a suspension evaluates, in order: they may not suspend themselves.
pub(crate) fn suspension_args<'a>(susp_call: &'a Expr, ctx: &str) -> Vec<&'a Expr> {
    let Some((call, option)) = awaited_call(susp_call, ctx) else {
        return Vec::new();
    };
    call.args
        .iter()
        .chain(option.into_iter().flat_map(|o| o.args.iter()))
        .collect()
}

fn arity(call: &ExprMethodCall, n: usize, shape: &str) -> syn::Result<()> {
    if call.args.len() == n {
        Ok(())
    } else {
        Err(syn::Error::new(
            call.method.span(),
            format!(
                "`{}` takes {n} argument{}: `{shape}`",
                call.method,
                if n == 1 { "" } else { "s" }
            ),
        ))
    }
}

fn parse_call(call: &ExprMethodCall, span: Span) -> syn::Result<Suspension> {
    let args: Vec<&Expr> = call.args.iter().collect();
    let kind = match call.method.to_string().as_str() {
        "step" => {
            arity(call, 2, "ctx.step(function, input)")?;
            if let Some(t) = &call.turbofish {
                return Err(syn::Error::new_spanned(
                    t,
                    "`ctx.step` takes no type arguments",
                ));
            }
            let func = match args[0] {
                Expr::Path(p) if p.qself.is_none() => p.path.clone(),
                other => {
                    return Err(syn::Error::new_spanned(
                        other,
                        "the first argument of `ctx.step` must name a `#[function]` directly, \
                         like `ctx.step(load_ticket, id)`",
                    ));
                }
            };
            SuspensionKind::Step {
                func,
                input: Box::new(args[1].clone()),
                retry: None,
            }
        }
        "wait_for_signal" => {
            arity(call, 3, "ctx.wait_for_signal::<T>(name, timeout, metadata)")?;
            let ty = call.turbofish.as_ref().and_then(|t| {
                if t.args.len() != 1 {
                    return None;
                }
                match t.args.first() {
                    Some(GenericArgument::Type(ty)) => Some(ty.clone()),
                    _ => None,
                }
            });
            let Some(ty) = ty else {
                return Err(syn::Error::new(
                    call.method.span(),
                    "name the payload type of the signal: `ctx.wait_for_signal::<Decision>(name, \
                     timeout, metadata)`; the type is stored with the wait",
                ));
            };
            SuspensionKind::Wait {
                ty: Box::new(ty),
                name: Box::new(args[0].clone()),
                timeout: Box::new(args[1].clone()),
                metadata: Box::new(args[2].clone()),
            }
        }
        "wait_for_any" => parse_wait_any(call, &args)?,
        "child" | "start_child" => {
            let shape = format!("ctx.{}(workflow, input)", call.method);
            arity(call, 2, &shape)?;
            no_turbofish(call)?;
            SuspensionKind::Child {
                workflow: workflow_path(args[0], &call.method)?,
                input: Box::new(args[1].clone()),
                id: None,
                detached: call.method == "start_child",
            }
        }
        "fan_out_children" => {
            arity(call, 2, "ctx.fan_out_children(workflow, items)")?;
            no_turbofish(call)?;
            SuspensionKind::FanOutChildren {
                workflow: workflow_path(args[0], &call.method)?,
                items: Box::new(args[1].clone()),
            }
        }
        "join" | "join_all" => parse_join(call, &args)?,
        "fan_out" | "fan_out_all" => {
            let shape = format!("ctx.{}(function, items, limit)", call.method);
            arity(call, 3, &shape)?;
            no_turbofish(call)?;
            SuspensionKind::FanOut {
                func: step_path(args[0], &call.method)?,
                items: Box::new(args[1].clone()),
                limit: Box::new(args[2].clone()),
                all: call.method == "fan_out_all",
            }
        }
        _ => {
            arity(call, 1, "ctx.sleep(duration)")?;
            SuspensionKind::Sleep {
                duration: Box::new(args[0].clone()),
            }
        }
    };
    Ok(Suspension { kind, span })
}

fn no_turbofish(call: &ExprMethodCall) -> syn::Result<()> {
    match &call.turbofish {
        Some(t) => Err(syn::Error::new_spanned(
            t,
            format!("`ctx.{}` takes no type arguments", call.method),
        )),
        None => Ok(()),
    }
}

fn workflow_path(e: &Expr, method: &syn::Ident) -> syn::Result<Path> {
    match e {
        Expr::Path(p) if p.qself.is_none() => Ok(p.path.clone()),
        other => Err(syn::Error::new_spanned(
            other,
            format!(
                "the first argument of `ctx.{method}` must name a `#[workflow]` directly, like \
                 `ctx.{method}(line_review, item)`"
            ),
        )),
    }
}

// Input:  ctx.child(review, x).id(format!("review-{n}"))
// Output: the run id expression.
fn child_option(call: &ExprMethodCall, option: &ExprMethodCall) -> syn::Result<Box<Expr>> {
    if option.method != "id" {
        return Err(syn::Error::new(
            option.method.span(),
            format!(
                "`.{}(..)` is not an option of `ctx.{}`; the only one is `.id(run_id)`, which \
                 gives the child's run id: `ctx.{}(workflow, input).id(run_id).await`",
                option.method, call.method, call.method
            ),
        ));
    }
    if option.turbofish.is_some() || option.args.len() != 1 {
        return Err(syn::Error::new(
            option.method.span(),
            "`.id` takes one argument, the child's run id: `.id(format!(\"review-{n}\"))`",
        ));
    }
    Ok(Box::new(option.args[0].clone()))
}

fn step_path(e: &Expr, method: &syn::Ident) -> syn::Result<Path> {
    match e {
        Expr::Path(p) if p.qself.is_none() => Ok(p.path.clone()),
        other => Err(syn::Error::new_spanned(
            other,
            format!(
                "each step of `ctx.{method}` must name a `#[function]` directly, like \
                 `load_ticket`"
            ),
        )),
    }
}

// Input:  ctx.join((load_ticket, id), (load_customer, cid))
// Output: SuspensionKind::Join with each (function, input) pair.
fn parse_join(call: &ExprMethodCall, args: &[&Expr]) -> syn::Result<SuspensionKind> {
    no_turbofish(call)?;
    let hint = format!(
        "`ctx.{}` takes two or more `(function, input)` pairs: `ctx.{}((load_ticket, id), \
         (load_customer, customer_id))`",
        call.method, call.method
    );
    if args.len() < 2 {
        return Err(syn::Error::new(call.method.span(), hint));
    }
    let mut steps = Vec::new();
    for arg in args {
        let Expr::Tuple(t) = arg else {
            return Err(syn::Error::new_spanned(arg, hint));
        };
        if t.elems.len() != 2 {
            return Err(syn::Error::new_spanned(arg, hint));
        }
        steps.push((step_path(&t.elems[0], &call.method)?, t.elems[1].clone()));
    }
    Ok(SuspensionKind::Join {
        steps,
        all: call.method == "join_all",
    })
}

// Input:  ctx.wait_for_any::<Review>(["approve", "reject"], timeout, metadata)
// Output: SuspensionKind::WaitAny with the names read from the array literal.
fn parse_wait_any(call: &ExprMethodCall, args: &[&Expr]) -> syn::Result<SuspensionKind> {
    const SHAPE: &str = "ctx.wait_for_any::<T>([\"name\", ..], timeout, metadata)";
    arity(call, 3, SHAPE)?;
    let ty = call.turbofish.as_ref().and_then(|t| match t.args.first() {
        Some(GenericArgument::Type(ty)) if t.args.len() == 1 => Some(ty.clone()),
        _ => None,
    });
    let Some(ty) = ty else {
        return Err(syn::Error::new(
            call.method.span(),
            "name the enum the signals decode into: `ctx.wait_for_any::<Review>([\"approve\", \
             \"reject\"], timeout, metadata)`, with one variant per signal name",
        ));
    };
    let list = match args[0] {
        Expr::Reference(r) => &*r.expr,
        other => other,
    };
    let names_hint = "list the signal names as an array of string literals: \
                      `[\"approve\", \"reject\"]`; the engine checks sent names against them";
    let Expr::Array(array) = list else {
        return Err(syn::Error::new_spanned(args[0], names_hint));
    };
    let mut names: Vec<syn::LitStr> = Vec::new();
    for elem in &array.elems {
        let Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Str(s),
            ..
        }) = elem
        else {
            return Err(syn::Error::new_spanned(elem, names_hint));
        };
        if names.iter().any(|n| n.value() == s.value()) {
            return Err(syn::Error::new_spanned(
                s,
                format!("the signal `{}` is listed twice", s.value()),
            ));
        }
        names.push(s.clone());
    }
    if names.len() < 2 {
        return Err(syn::Error::new_spanned(
            args[0],
            "`wait_for_any` waits for one of several signals and needs at least two names; \
             for one, write `ctx.wait_for_signal::<T>(name, timeout, metadata)`",
        ));
    }
    Ok(SuspensionKind::WaitAny {
        ty: Box::new(ty),
        names,
        timeout: Box::new(args[1].clone()),
        metadata: Box::new(args[2].clone()),
    })
}

struct Find<'a> {
    ctx: &'a str,
    found: bool,
}

impl<'ast> Visit<'ast> for Find<'_> {
    fn visit_expr(&mut self, e: &'ast Expr) {
        if self.found {
            return;
        }
        if as_suspension(e, self.ctx).is_some() {
            self.found = true;
            return;
        }
        syn::visit::visit_expr(self, e);
    }
    fn visit_item(&mut self, _: &'ast syn::Item) {}
}

/// Whether an expression contains a suspension point anywhere.
pub(crate) fn expr_suspends(e: &Expr, ctx: &str) -> bool {
    let mut f = Find { ctx, found: false };
    f.visit_expr(e);
    f.found
}

/// Whether a statement contains a suspension point anywhere.
pub(crate) fn stmt_suspends(s: &syn::Stmt, ctx: &str) -> bool {
    let mut f = Find { ctx, found: false };
    f.visit_stmt(s);
    f.found
}

/// Walks the whole body once and reports every construct that cannot be lowered: an `.await`
/// on anything but a suspension point, a suspension point inside a closure, an `async` block,
/// a nested item or a macro, a `ctx` call without `.await`, and suspensions in operands or
/// guards that may not run.
pub(crate) fn check_body(block: &syn::Block, ctx: &str, errors: &mut Vec<syn::Error>) {
    let mut s = Scan {
        ctx,
        errors,
        inside: Vec::new(),
    };
    s.visit_block(block);
}

struct Scan<'a> {
    ctx: &'a str,
    errors: &'a mut Vec<syn::Error>,
    /// What encloses the current node, innermost last: "a closure", "an `async` block", ...
    inside: Vec<&'static str>,
}

impl Scan<'_> {
    fn err(&mut self, span: Span, msg: impl Into<String>) {
        self.errors.push(syn::Error::new(span, msg.into()));
    }

    fn scan_macro_tokens(&mut self, tokens: TokenStream) {
        let mut prev_dot: Option<Span> = None;
        for tt in tokens {
            match &tt {
                TokenTree::Ident(i) if i == "await" && prev_dot.is_some() => {
                    self.err(
                        i.span(),
                        "`.await` inside a macro call is not supported in a workflow; bind the \
                         result to a local first: `let r = ctx.step(f, x).await?;` then use `r` in \
                         the macro",
                    );
                }
                TokenTree::Group(g) => self.scan_macro_tokens(g.stream()),
                _ => {}
            }
            prev_dot = match &tt {
                TokenTree::Punct(p) if p.as_char() == '.' => Some(p.span()),
                _ => None,
            };
        }
    }
}

impl<'ast> Visit<'ast> for Scan<'_> {
    fn visit_expr(&mut self, e: &'ast Expr) {
        match e {
            Expr::Await(a) => {
                if let Some(res) = as_suspension(e, self.ctx) {
                    match res {
                        Err(err) => self.errors.push(err),
                        Ok(_) => {
                            // The outermost enclosing construct is the one to move out of.
                            if let Some(place) = self.inside.first() {
                                let msg = format!(
                                    "a workflow cannot suspend inside {place}: the state machine \
                                     can only stop at statements of the workflow body itself; move \
                                     this call out of {place}"
                                );
                                self.err(a.await_token.span(), msg);
                            }
                        }
                    }
                    // The call's arguments may not suspend either.
                    for arg in suspension_args(&a.base, self.ctx) {
                        self.visit_expr(arg);
                    }
                    return;
                }
                if !self.inside.is_empty() {
                    // An `.await` inside an async block or closure belongs to that future.
                    syn::visit::visit_expr(self, e);
                    return;
                }
                let msg = format!(
                    "only `{ctx}.step(..)`, `{ctx}.join(..)`, `{ctx}.fan_out(..)`, \
                     `{ctx}.wait_for_signal::<T>(..)`, `{ctx}.wait_for_any::<T>(..)`, \
                     `{ctx}.child(..)`, `{ctx}.start_child(..)`, `{ctx}.fan_out_children(..)` and \
                     `{ctx}.sleep(..)` (and their `_all` forms) can be awaited in a workflow; move other async work into a `#[function]` step and \
                     call it with `{ctx}.step(..)`",
                    ctx = self.ctx
                );
                self.err(a.await_token.span(), msg);
                syn::visit::visit_expr(self, e);
            }
            Expr::MethodCall(m) if ctx_call(e, self.ctx).is_some() => {
                let msg = format!(
                    "`{}.{}(..)` must be awaited where it is written: add `.await`",
                    self.ctx, m.method
                );
                self.err(m.method.span(), msg);
                syn::visit::visit_expr(self, e);
            }
            Expr::Closure(_) => {
                self.inside.push("a closure");
                syn::visit::visit_expr(self, e);
                self.inside.pop();
            }
            Expr::Async(_) => {
                self.inside.push("an `async` block");
                syn::visit::visit_expr(self, e);
                self.inside.pop();
            }
            Expr::Const(_) => {
                self.inside.push("a `const` block");
                syn::visit::visit_expr(self, e);
                self.inside.pop();
            }
            Expr::Binary(b)
                if matches!(b.op, syn::BinOp::And(_) | syn::BinOp::Or(_))
                    && expr_suspends(&b.right, self.ctx) =>
            {
                self.err(
                    b.right.span(),
                    "the right operand of `&&` or `||` cannot suspend, because it may not run; \
                     bind it to a local first",
                );
                syn::visit::visit_expr(self, e);
            }
            _ => syn::visit::visit_expr(self, e),
        }
    }

    fn visit_pat(&mut self, p: &'ast syn::Pat) {
        if let syn::Pat::Guard(g) = p
            && expr_suspends(&g.guard, self.ctx)
        {
            self.err(
                g.guard.span(),
                "a match guard cannot suspend; bind the value before the `match`",
            );
        }
        syn::visit::visit_pat(self, p);
    }

    // A nested item cannot capture `ctx`, and its own `.await`s are its business.
    fn visit_item(&mut self, _: &'ast syn::Item) {}

    fn visit_macro(&mut self, m: &'ast syn::Macro) {
        self.scan_macro_tokens(m.tokens.clone());
    }
}
