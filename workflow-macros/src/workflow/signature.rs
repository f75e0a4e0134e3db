//! Validation of the workflow's signature: `async fn name(ctx: &mut WorkflowContext,
//! params..) -> Result<T, E>`, every problem reported at once.

use proc_macro2::TokenStream;
use quote::quote;
use syn::spanned::Spanned;
use syn::{FnArg, ItemFn, Pat, ReturnType, Type};

use crate::function::result_parts;

pub(super) fn input_type(params: &[(syn::Ident, Type)]) -> TokenStream {
    let tys: Vec<&Type> = params.iter().map(|(_, t)| t).collect();
    match tys.len() {
        1 => {
            let t = tys[0];
            quote!(#t)
        }
        _ => quote!((#(#tys,)*)),
    }
}

pub(super) struct Signature {
    pub(super) ctx: syn::Ident,
    pub(super) params: Vec<(syn::Ident, Type)>,
    pub(super) output: Type,
}

pub(super) fn check_signature(func: &ItemFn, errors: &mut Vec<syn::Error>) -> Option<Signature> {
    let sig = &func.sig;
    let n = errors.len();
    check_header(sig, errors);
    let mut inputs = sig.inputs.iter();
    let ctx = ctx_param(inputs.next(), sig, errors);
    let params = stored_params(inputs, errors);
    let output = output_type(sig, errors);
    if errors.len() > n {
        return None;
    }
    Some(Signature {
        ctx: ctx?,
        params,
        output: output?,
    })
}

/// `async`, and no generics.
fn check_header(sig: &syn::Signature, errors: &mut Vec<syn::Error>) {
    if sig.asyncness.is_none() {
        errors.push(syn::Error::new(
            sig.fn_token.span(),
            "a `#[workflow]` must be an `async fn`; write `async fn`",
        ));
    }
    if let Some(p) = sig.generics.params.first() {
        errors.push(syn::Error::new_spanned(
            p,
            "a `#[workflow]` cannot be generic: its state enum is stored and must name concrete types",
        ));
    }
}

/// The name of the context parameter, which comes first.
fn ctx_param(
    first: Option<&FnArg>,
    sig: &syn::Signature,
    errors: &mut Vec<syn::Error>,
) -> Option<syn::Ident> {
    match first {
        Some(FnArg::Typed(pt)) if is_ctx_param(&pt.ty) => match &*pt.pat {
            Pat::Ident(pi) => Some(pi.ident.clone()),
            other => {
                errors.push(syn::Error::new_spanned(
                    other,
                    "name the context parameter: `ctx: &mut WorkflowContext`",
                ));
                None
            }
        },
        Some(FnArg::Receiver(r)) => {
            errors.push(syn::Error::new_spanned(
                r,
                "a `#[workflow]` cannot take `self`; make it a free function whose first parameter is \
                 `ctx: &mut WorkflowContext`",
            ));
            None
        }
        Some(other) => {
            errors.push(syn::Error::new_spanned(
                other,
                "the first parameter of a `#[workflow]` is the context: `ctx: &mut WorkflowContext`",
            ));
            None
        }
        None => {
            errors.push(syn::Error::new(
                sig.paren_token.span.join(),
                "a `#[workflow]` takes the context first: `(ctx: &mut WorkflowContext, ..)`",
            ));
            None
        }
    }
}

/// The parameters after the context, which the first checkpoint stores: owned, plainly named.
fn stored_params<'a>(
    inputs: impl Iterator<Item = &'a FnArg>,
    errors: &mut Vec<syn::Error>,
) -> Vec<(syn::Ident, Type)> {
    let mut params = Vec::new();
    for arg in inputs {
        match arg {
            FnArg::Typed(pt) => {
                let ty = (*pt.ty).clone();
                if matches!(ty, Type::Reference(_) | Type::ImplTrait(_)) {
                    errors.push(syn::Error::new_spanned(
                        &pt.ty,
                        "workflow parameters are stored in the run's first checkpoint; take an owned, \
                         concrete type (e.g. `String` instead of `&str`)",
                    ));
                    continue;
                }
                match &*pt.pat {
                    Pat::Ident(pi) if pi.by_ref.is_none() && pi.subpat.is_none() => params.push((pi.ident.clone(), ty)),
                    other => errors.push(syn::Error::new_spanned(
                        other,
                        "use a plain name for each workflow parameter (destructure inside the body)",
                    )),
                }
            }
            FnArg::Receiver(r) => errors.push(syn::Error::new_spanned(
                r,
                "a `#[workflow]` cannot take `self`",
            )),
        }
    }
    params
}

/// The return type, a `Result`.
fn output_type(sig: &syn::Signature, errors: &mut Vec<syn::Error>) -> Option<Type> {
    match &sig.output {
        ReturnType::Type(_, ty) if result_parts(ty).is_some() => Some((**ty).clone()),
        ReturnType::Type(_, ty) => {
            errors.push(syn::Error::new_spanned(
                ty,
                "a `#[workflow]` returns `Result<T, E>`, e.g. `Result<Outcome, WorkflowError>`",
            ));
            None
        }
        ReturnType::Default => {
            errors.push(syn::Error::new(
                sig.paren_token.span.close(),
                "a `#[workflow]` returns `Result<T, E>`; add `-> Result<(), WorkflowError>`",
            ));
            None
        }
    }
}

pub(super) fn is_ctx_param(ty: &Type) -> bool {
    match ty {
        Type::Reference(r) if r.mutability.is_some() => {
            matches!(&*r.elem, Type::Path(p) if p.path.segments.last().is_some_and(|s| s.ident == "WorkflowContext"))
        }
        _ => false,
    }
}
