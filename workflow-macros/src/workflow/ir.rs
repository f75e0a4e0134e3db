//! What the analysis stages hand the expansion where the lowered code depends on the runtime:
//! the types of held values that only the runtime's support traits can name, the cursor of a
//! suspending `for`, and the operations verbatim code performs (completing the run, taking a
//! `for` loop's next item). The analysis builds these; only the expansion renders them
//! (`expand/render.rs`), so the support API's path and spelling live in one stage.

use proc_macro2::{Span, TokenStream};
use syn::{Expr, parse_quote_spanned};

/// A type the analysis knows.
#[derive(Clone)]
pub(crate) enum Ty {
    /// A type the runtime has no part in: written in the user's code (`let x: T`, a cast, a
    /// literal's suffix) or named by the analysis (`String`, `usize`, `bool`).
    Written(TokenStream),
    /// The output of the step `F`: `ctx.step(f, x).await?`.
    StepOutput(syn::Path),
    /// The result of the step `F`: `ctx.step(f, x).await`.
    StepResult(syn::Path),
    /// The `Ok` type of the output of the workflow this path names (`ctx.child(w, x).await?`).
    ChildOutput(syn::Path),
    /// `Result<T, ChildError>` for the child workflow this path names (`ctx.child(w, x).await`).
    ChildResult(syn::Path),
    /// The result of a wait for a signal of this payload type.
    WaitResult(TokenStream),
    /// `Result<T, StepError>` for the first-error forms of `ctx.join` and `ctx.fan_out`.
    StepResultOf(Box<Ty>),
    /// A tuple of these types (the outputs or results of `ctx.join`).
    Tuple(Vec<Ty>),
    /// A `Vec` of this type (the outputs or results of `ctx.fan_out`).
    Vec(Box<Ty>),
    /// A part of another type (a tuple's element, what `Some`/`Ok`/`Err` hold, an iterator's
    /// item).
    Part(Box<Ty>, Part),
    /// The cursor of a suspending `for` over a bounded range of this integer type.
    RangeCursor(Box<Ty>),
    /// The cursor of a suspending `for` over a collection: its remaining items, of this type.
    ItemsCursor(Box<Ty>),
}

/// Which part of a type [`Ty::Part`] means.
#[derive(Clone, Copy)]
pub(crate) enum Part {
    /// The tuple element at this index (up to 6 elements).
    Elem(usize),
    /// `T` of `Option<T>`.
    Some,
    /// `T` of `Result<T, E>`.
    Ok,
    /// `E` of `Result<T, E>`.
    Err,
    /// The item of an `IntoIterator`.
    Item,
}

impl Ty {
    /// `t` as a part of this type.
    pub(crate) fn part(&self, part: Part) -> Self {
        Ty::Part(Box::new(self.clone()), part)
    }
}

/// The initialiser of a suspending `for` loop's cursor.
pub(crate) enum CursorInit {
    /// `start..end` or `start..=end`, of integer type `idx`.
    Range {
        idx: Ty,
        start: Box<Expr>,
        end: Box<Expr>,
        inclusive: bool,
    },
    /// A collection, iterated by value.
    Items(Expr),
}

impl CursorInit {
    /// The user's expressions in it.
    pub(crate) fn exprs(&self) -> Vec<&Expr> {
        match self {
            CursorInit::Range { start, end, .. } => vec![start, end],
            CursorInit::Items(iter) => vec![iter],
        }
    }
}

/// The reserved name of the call that completes the run with its argument (what `return x`
/// and a failing `?` become); the expansion renders it as the transition.
pub(crate) const COMPLETE: &str = "__wf_complete";

/// The reserved name of the call that takes the next item from a `for` loop's cursor.
pub(crate) const NEXT_ITEM: &str = "__wf_next_item";

/// `__wf_complete(value)`: complete the run with `value`, spanned at the user's `return` or
/// `?`.
pub(crate) fn complete(span: Span, value: &TokenStream) -> Expr {
    let op = syn::Ident::new(COMPLETE, span);
    parse_quote_spanned!(span=> #op(#value))
}

/// `__wf_next_item(&mut cursor)`: the cursor's next item, or `None` when it is exhausted.
pub(crate) fn next_item(cursor: &syn::Ident) -> Expr {
    let op = syn::Ident::new(NEXT_ITEM, Span::call_site());
    syn::parse_quote!(#op(&mut #cursor))
}

/// The reserved operation an expression calls, if it is one of them.
pub(crate) fn op_of(call: &syn::ExprCall) -> Option<&'static str> {
    let Expr::Path(p) = &*call.func else {
        return None;
    };
    let ident = p.path.get_ident()?;
    [COMPLETE, NEXT_ITEM].into_iter().find(|op| ident == op)
}
