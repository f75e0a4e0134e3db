//! `#[function]`: keeps the async fn callable and emits the step metadata beside it.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, GenericArgument, ItemFn, Pat, PathArguments, ReturnType, Type};

use crate::hash::Fingerprint;
use crate::runtime::Runtime;

mod retry;

pub(crate) fn expand(attr: TokenStream, item: TokenStream) -> TokenStream {
    let mut errors: Vec<syn::Error> = Vec::new();
    let (retry, runtime) = match retry::parse(attr) {
        Ok(r) => (r.policy, r.krate.map_or_else(Runtime::default, Runtime::at)),
        Err(e) => {
            errors.push(e);
            (None, Runtime::default())
        }
    };
    let func: ItemFn = match syn::parse2(item.clone()) {
        Ok(f) => f,
        Err(e) => {
            let err = syn::Error::new(
                e.span(),
                format!("`#[function]` applies to an `async fn`: {e}"),
            );
            let err = err.to_compile_error();
            return quote! { #err #item };
        }
    };
    match expand_fn(&func, retry.as_ref()) {
        Ok(ts) if errors.is_empty() => runtime.render(ts),
        Ok(_) => with_errors(errors, &func),
        Err(mut e) => {
            errors.append(&mut e);
            with_errors(errors, &func)
        }
    }
}

fn with_errors(errors: Vec<syn::Error>, func: &ItemFn) -> TokenStream {
    let errs = errors.iter().map(syn::Error::to_compile_error);
    // The function is emitted unchanged so callers don't drown the real error in
    // "cannot find function" noise.
    quote! { #(#errs)* #func }
}

/// Whether a type is (a path ending in) `StepContext`.
fn is_step_context(ty: &Type) -> bool {
    matches!(ty, Type::Path(p) if p.qself.is_none()
        && p.path.segments.last().is_some_and(|s| s.ident == "StepContext"))
}

/// Splits `Result<T, E>` into `T` and `E`.
pub(crate) fn result_parts(ty: &Type) -> Option<(&Type, &Type)> {
    let Type::Path(p) = ty else { return None };
    let seg = p.path.segments.last()?;
    if seg.ident != "Result" {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &seg.arguments else {
        return None;
    };
    let mut tys = args.args.iter().filter_map(|a| match a {
        GenericArgument::Type(t) => Some(t),
        _ => None,
    });
    let ok = tys.next()?;
    let err = tys.next()?;
    Some((ok, err))
}

/// What the step's signature declares, once checked.
struct Step<'a> {
    inputs: Vec<(&'a syn::Ident, &'a Type)>,
    has_ctx: bool,
    output: Type,
}

fn expand_fn(func: &ItemFn, retry: Option<&retry::Args>) -> Result<TokenStream, Vec<syn::Error>> {
    let mut errors = Vec::new();
    let sig = &func.sig;
    check_header(sig, &mut errors);
    let (inputs, has_ctx) = step_params(sig, &mut errors);
    let output = step_output(sig, &mut errors);
    if !errors.is_empty() {
        return Err(errors);
    }
    let step = Step {
        inputs,
        has_ctx,
        output: output.expect("checked above"),
    };
    Ok(emit(func, &step, retry))
}

/// `async`, not generic, no `where` clause.
fn check_header(sig: &syn::Signature, errors: &mut Vec<syn::Error>) {
    if sig.asyncness.is_none() {
        errors.push(syn::Error::new(
            sig.fn_token.span(),
            "a `#[function]` step must be an `async fn`; write `async fn`",
        ));
    }
    if let Some(p) = sig.generics.params.first() {
        errors.push(syn::Error::new_spanned(
            p,
            "a `#[function]` step cannot be generic: its input and output types are stored by \
             name; use concrete types",
        ));
    }
    if let Some(w) = &sig.generics.where_clause {
        errors.push(syn::Error::new_spanned(
            w,
            "a `#[function]` step cannot have a `where` clause",
        ));
    }
}

/// The step's input parameters (after an optional leading `StepContext`), and whether it takes
/// the context.
fn step_params<'a>(
    sig: &'a syn::Signature,
    errors: &mut Vec<syn::Error>,
) -> (Vec<(&'a syn::Ident, &'a Type)>, bool) {
    let mut inputs: Vec<(&syn::Ident, &Type)> = Vec::new();
    let mut has_ctx = false;
    for (i, arg) in sig.inputs.iter().enumerate() {
        match arg {
            FnArg::Receiver(r) => errors.push(syn::Error::new_spanned(
                r,
                "a `#[function]` step cannot take `self`; make it a free function and pass what it \
                 needs as parameters",
            )),
            FnArg::Typed(pt) => {
                if i == 0 && is_step_context(&pt.ty) {
                    has_ctx = true;
                    continue;
                }
                if is_step_context(&pt.ty) {
                    errors.push(syn::Error::new_spanned(
                        &pt.ty,
                        "`StepContext` must be the first parameter of a `#[function]` step",
                    ));
                    continue;
                }
                if let Type::Reference(r) = &*pt.ty {
                    errors.push(syn::Error::new_spanned(
                        r,
                        "step parameters must be owned values: the input is stored in the \
                         checkpoint; take `String`/`Vec<T>`/`T` instead of a reference",
                    ));
                    continue;
                }
                if let Type::ImplTrait(t) = &*pt.ty {
                    errors.push(syn::Error::new_spanned(
                        t,
                        "a `#[function]` step cannot take `impl Trait`: its input is stored; use a \
                         concrete type",
                    ));
                    continue;
                }
                match &*pt.pat {
                    Pat::Ident(pi) if pi.by_ref.is_none() && pi.subpat.is_none() => {
                        inputs.push((&pi.ident, &pt.ty));
                    }
                    other => errors.push(syn::Error::new_spanned(
                        other,
                        "use a plain name for each `#[function]` parameter (destructure inside the \
                         body)",
                    )),
                }
            }
        }
    }
    (inputs, has_ctx)
}

/// `T` of the step's `Result<T, E>`.
fn step_output(sig: &syn::Signature, errors: &mut Vec<syn::Error>) -> Option<Type> {
    match &sig.output {
        ReturnType::Type(_, ty) => match result_parts(ty) {
            Some((ok, _)) => Some(ok.clone()),
            None => {
                errors.push(syn::Error::new_spanned(
                    ty,
                    "a `#[function]` step returns `Result<T, StepError>` (or `Result<T, E>` with \
                     `E: Into<StepError>`)",
                ));
                None
            }
        },
        ReturnType::Default => {
            errors.push(syn::Error::new(
                sig.paren_token.span.close(),
                "a `#[function]` step returns `Result<T, StepError>`; add `-> Result<(), StepError>`",
            ));
            None
        }
    }
}

/// The function unchanged, the struct of its name and its `Function` impl.
fn emit(func: &ItemFn, step: &Step<'_>, retry: Option<&retry::Args>) -> TokenStream {
    let Step {
        inputs,
        has_ctx,
        output,
    } = step;
    let has_ctx = *has_ctx;
    let sig = &func.sig;
    let name = &sig.ident;
    let vis = &func.vis;
    let krate = crate::runtime::rt();
    let names: Vec<_> = inputs.iter().map(|(n, _)| format_ident!("{}", n)).collect();
    let tys: Vec<_> = inputs.iter().map(|(_, t)| *t).collect();
    let (input_ty, destructure) = match tys.len() {
        1 => {
            let t = tys[0];
            let n = &names[0];
            (quote!(#t), quote!(let #n = __wf_input;))
        }
        _ => (quote!((#(#tys,)*)), quote!(let (#(#names,)*) = __wf_input;)),
    };
    let ctx_arg = has_ctx.then(|| quote!(__wf_ctx,));
    let ctx_bind = if has_ctx { quote!(__wf_ctx) } else { quote!(_) };
    let mut fp = Fingerprint::new("workflow-runtime/function/1");
    fp.str(&name.to_string())
        .tokens(&input_ty)
        .str("->")
        .tokens(&quote!(#output));
    let sig_hash = fp.finish();
    let name_str = name.to_string();
    let doc = format!(
        "Step metadata for [`{name}()`]: lets `ctx.step({name}, ..)` in a `#[workflow]` name the \
         step's input and output types."
    );
    // Not part of SIG_HASH: a retry policy is not stored state, so changing it keeps parked
    // runs compatible.
    let retry_const = retry
        .map(retry::Args::render)
        .map(|policy| quote! { const RETRY: #krate::RetryPolicy = #policy; });
    let input_assert = quote_spanned! {input_ty.span()=> type Input = #input_ty; };
    let output_assert = quote_spanned! {output.span()=> type Output = #output; };
    quote! {
        #func

        #[doc = #doc]
        #[allow(non_camel_case_types)]
        #vis struct #name {}

        impl #krate::Function for #name {
            const NAME: &'static str = #name_str;
            const SIG_HASH: u64 = #sig_hash;
            #retry_const
            #input_assert
            #output_assert
            fn call(#ctx_bind: #krate::StepContext, __wf_input: Self::Input) -> #krate::StepFuture<Self::Output> {
                #destructure
                ::std::boxed::Box::pin(async move {
                    #name(#ctx_arg #(#names),*).await.map_err(::core::convert::Into::into)
                })
            }
        }
    }
}
