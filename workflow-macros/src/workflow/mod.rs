//! `#[workflow]`: lowers an async body into a state enum and a transition function.

mod args;
mod diagram;
mod expand;
mod ir;
mod live;
mod lower;
mod names;
mod signature;
mod suspend;
mod types;
mod vars;

use proc_macro2::TokenStream;
use syn::ItemFn;

use crate::runtime::Runtime;
use args::{Args, parse_args};
use expand::{Codegen, stub};
use lower::Lowerer;
use signature::{Signature, check_signature};

pub(crate) fn expand(attr: TokenStream, item: TokenStream) -> TokenStream {
    let func: ItemFn = match syn::parse2(item.clone()) {
        Ok(f) => f,
        Err(e) => {
            let err = syn::Error::new(
                e.span(),
                format!("`#[workflow]` applies to an `async fn`: {e}"),
            );
            return err.to_compile_error();
        }
    };
    let mut errors = Vec::new();
    let args = parse_args(attr).map_err(|e| errors.push(e)).ok();
    let sig = check_signature(&func, &mut errors);
    let tokens = match expand_fn(&func, sig.as_ref(), args.as_ref(), &mut errors) {
        Some(ts) if errors.is_empty() => ts,
        _ => stub(&func, sig.as_ref(), &errors, args.as_ref()),
    };
    match &args {
        Some(args) => args.runtime.render(tokens),
        None => Runtime::default().render(tokens),
    }
}

fn expand_fn(
    func: &ItemFn,
    sig: Option<&Signature>,
    args: Option<&Args>,
    errors: &mut Vec<syn::Error>,
) -> Option<TokenStream> {
    let sig = sig?;
    let args = args?;
    let krate = crate::runtime::rt();
    let ctx_name = sig.ctx.to_string();
    suspend::check_body(&func.block, &ctx_name, errors);
    if !errors.is_empty() {
        return None;
    }
    let fn_end = func.block.brace_token.span.close();
    let mut lw = Lowerer::new(ctx_name, fn_end);
    lw.lower_body(&sig.params, func.block.stmts.clone());
    errors.append(&mut lw.errors);
    let fields = live::fields(&lw.blocks, &lw.susps);
    let reachable = live::reachable(&lw.blocks);
    let types = types::field_types(&lw, &fields, &reachable, errors);
    if !errors.is_empty() {
        return None;
    }
    Some(
        Codegen {
            func,
            args,
            sig,
            lw: &lw,
            fields: &fields,
            reachable: &reachable,
            types: &types,
            krate,
        }
        .emit(),
    )
}
