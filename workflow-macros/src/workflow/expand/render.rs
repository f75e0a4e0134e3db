//! Renders the analysis' IR ([`crate::workflow::ir`]) against the runtime's support module:
//! the types only its traits can name, and the operations the lowered code performs.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Expr, ExprCall, parse_quote, parse_quote_spanned};

use crate::runtime::rt;
use crate::workflow::ir::{self, CursorInit, Part, Ty};

/// A type, as the expansion writes it.
pub(super) fn ty(t: &Ty) -> TokenStream {
    let rt = rt();
    match t {
        Ty::Written(t) => t.clone(),
        Ty::StepOutput(func) => quote_spanned!(func.span()=> <#func as #rt::Function>::Output),
        Ty::StepResult(func) => {
            let out = ty(&Ty::StepOutput(func.clone()));
            quote!(::core::result::Result<#out, #rt::StepError>)
        }
        Ty::ChildOutput(wf) => {
            let def = workflow_type(wf);
            quote_spanned!(wf.span()=> <<#def as #rt::Workflow>::Output as #rt::ResultParts>::Ok)
        }
        Ty::ChildResult(wf) => {
            let out = ty(&Ty::ChildOutput(wf.clone()));
            quote!(::core::result::Result<#out, #rt::ChildError>)
        }
        Ty::WaitResult(payload) => quote!(::core::result::Result<#payload, #rt::WaitError>),
        Ty::StepResultOf(t) => {
            let t = ty(t);
            quote!(::core::result::Result<#t, #rt::StepError>)
        }
        Ty::Tuple(elems) => {
            let elems = elems.iter().map(ty);
            quote!((#(#elems,)*))
        }
        Ty::Vec(t) => {
            let t = ty(t);
            quote!(::std::vec::Vec<#t>)
        }
        Ty::Part(of, part) => {
            let of = ty(of);
            match part {
                Part::Elem(i) => {
                    let assoc = format_ident!("E{}", i);
                    quote!(<#of as #rt::Elems>::#assoc)
                }
                Part::Some => quote!(<#of as #rt::OptionParts>::Some),
                Part::Ok => quote!(<#of as #rt::ResultParts>::Ok),
                Part::Err => quote!(<#of as #rt::ResultParts>::Err),
                Part::Item => quote!(<#of as ::core::iter::IntoIterator>::Item),
            }
        }
        Ty::RangeCursor(idx) => {
            let idx = ty(idx);
            quote!(#rt::RangeCursor<#idx>)
        }
        Ty::ItemsCursor(item) => {
            let item = ty(item);
            quote!(::std::collections::VecDeque<#item>)
        }
    }
}

/// The type `#[workflow]` defines for the workflow value `wf` names: `wf::Def`.
pub(super) fn workflow_type(wf: &syn::Path) -> syn::Path {
    let mut def = wf.clone();
    def.segments.push(syn::PathSegment::from(format_ident!(
        "Def",
        span = wf.span()
    )));
    def
}

/// The initialiser of a `for` loop's cursor, its expressions already rendered.
pub(super) fn cursor_init(init: &CursorInit, exprs: &[TokenStream]) -> TokenStream {
    let rt = rt();
    match (init, exprs) {
        (CursorInit::Range { idx, inclusive, .. }, [start, end]) => {
            let idx = ty(idx);
            quote!(#rt::RangeCursor::<#idx>::new(#start, #end, #inclusive))
        }
        (CursorInit::Items(_), [iter]) => quote!(#rt::vec_cursor(#iter)),
        _ => unreachable!("`CursorInit::exprs` gives a range two and a collection one"),
    }
}

/// A call of a reserved operation (its arguments already rendered) as the runtime performs
/// it; `None` for any other call.
pub(super) fn op(call: &ExprCall) -> Option<Expr> {
    let rt = rt();
    let args = &call.args;
    match ir::op_of(call)? {
        ir::COMPLETE => {
            let span = call.func.span();
            Some(parse_quote_spanned!(span=> return #rt::Transition::Complete(#args)))
        }
        ir::NEXT_ITEM => Some(parse_quote!(#rt::ForCursor::next_item(#args))),
        other => unreachable!("`ir::op_of` gave an operation without a rendering: {other}"),
    }
}
