//! `#[workflow]`: lowers an async body into a state enum and a transition function.

mod diagram;
mod live;
mod lower;
mod names;
mod suspend;
mod vars;

use std::collections::{BTreeMap, BTreeSet};

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::visit_mut::VisitMut;
use syn::{Expr, FnArg, ItemFn, Pat, ReturnType, Type};

use crate::function::result_parts;
use crate::hash::Fingerprint;
use lower::{Block, BlockKind, Lowerer, Node, SuspInfo};
use suspend::SuspensionKind;
use vars::{DeclKind, JUMP_MACRO, TyInfo};

struct Args {
    name: Option<String>,
    version: u32,
    migrate_from: Option<syn::Path>,
}

fn parse_args(attr: TokenStream) -> syn::Result<Args> {
    let mut args = Args {
        name: None,
        version: 1,
        migrate_from: None,
    };
    let mut seen_name = false;
    let mut seen_version = false;
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("version") {
            if std::mem::replace(&mut seen_version, true) {
                return Err(meta.error("`version` is given twice"));
            }
            let lit: syn::LitInt = meta.value()?.parse()?;
            args.version = lit
                .base10_parse::<u32>()
                .ok()
                .filter(|v| *v > 0)
                .ok_or_else(|| {
                    syn::Error::new(
                        lit.span(),
                        "`version` is a positive integer, like `version = 2`",
                    )
                })?;
            Ok(())
        } else if meta.path.is_ident("name") {
            if std::mem::replace(&mut seen_name, true) {
                return Err(meta.error("`name` is given twice"));
            }
            let lit: syn::LitStr = meta.value()?.parse()?;
            if lit.value().trim().is_empty() {
                return Err(syn::Error::new(lit.span(), "`name` cannot be empty"));
            }
            args.name = Some(lit.value());
            Ok(())
        } else if meta.path.is_ident("migrate_from") {
            if args.migrate_from.is_some() {
                return Err(meta.error("`migrate_from` is given twice"));
            }
            args.migrate_from = Some(meta.value()?.parse()?);
            Ok(())
        } else {
            Err(meta.error(
                "unknown `#[workflow]` argument; expected `name = \"..\"`, `version = N` or `migrate_from = previous_version`",
            ))
        }
    });
    syn::parse::Parser::parse2(parser, attr)?;
    Ok(args)
}

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
    match expand_fn(&func, sig.as_ref(), args.as_ref(), &mut errors) {
        Some(ts) if errors.is_empty() => ts,
        _ => stub(&func, sig.as_ref(), &errors),
    }
}

/// On error: the diagnostics plus empty items under the workflow's names, so that uses of the
/// workflow elsewhere do not bury the real message under "cannot find" errors.
fn stub(func: &ItemFn, sig: Option<&Signature>, errors: &[syn::Error]) -> TokenStream {
    let errs = errors.iter().map(syn::Error::to_compile_error);
    let name = &func.sig.ident;
    let vis = &func.vis;
    let Some(sig) = sig else {
        return quote! {
            #(#errs)*
            #[allow(non_snake_case, dead_code, missing_docs)]
            #vis mod #name {
                #[derive(Debug)]
                pub enum State {}
            }
            #[allow(non_upper_case_globals, dead_code, missing_docs)]
            #vis const #name: () = ();
        };
    };
    // With a valid signature the stub implements `Workflow` with the right input and output
    // types, so `engine.start(name, ..)` elsewhere type-checks and only the real error shows.
    // The compile errors above keep it from ever running.
    let krate = quote!(::workflow_runtime::__private);
    let output = &sig.output;
    let input_ty = input_type(&sig.params);
    let ivis = inner_vis(vis);
    quote! {
        #(#errs)*
        #[allow(non_snake_case, dead_code, missing_docs, unused_imports)]
        #vis mod #name {
            use super::*;
            #[derive(Debug, Clone, #krate::serde::Serialize, #krate::serde::Deserialize)]
            #[serde(crate = "::workflow_runtime::__private::serde")]
            #ivis enum State {}
            #[derive(Debug, Clone, Copy, Default)]
            #ivis struct Def;
            impl #krate::Workflow for Def {
                const NAME: &'static str = "";
                const VERSION: u32 = 0;
                const LAYOUT_HASH: u64 = 0;
                const BODY_HASH: u64 = 0;
                type Input = #input_ty;
                type Output = #output;
                type State = State;
                fn start(_: Self::Input) -> State {
                    ::core::panic!("this workflow did not compile")
                }
                fn advance(state: State, _: #krate::Event, _: &mut #krate::WorkflowContext) -> #krate::Transition<State, #output> {
                    match state {}
                }
                fn steps() -> ::std::vec::Vec<#krate::StepEntry> {
                    ::std::vec::Vec::new()
                }
                fn check_signal(_: &str, _: &#krate::serde_json::Value) -> ::core::option::Option<::core::result::Result<(), #krate::PayloadError>> {
                    ::core::option::Option::None
                }
                fn variant_name(state: &State) -> &'static str {
                    match *state {}
                }
            }
        }
        #[allow(non_upper_case_globals, dead_code, missing_docs)]
        #vis const #name: #name::Def = #name::Def;
    }
}

/// The visibility, inside `mod name`, that matches the function's visibility outside it: the
/// items must not be more visible than the user's types they name (E0446).
fn inner_vis(vis: &syn::Visibility) -> TokenStream {
    match vis {
        syn::Visibility::Public(_) => quote!(pub),
        syn::Visibility::Inherited => quote!(pub(super)),
        syn::Visibility::Restricted(r) => {
            let path = &r.path;
            let first = path
                .segments
                .first()
                .map(|s| s.ident.to_string())
                .unwrap_or_default();
            match first.as_str() {
                "crate" => quote!(pub(in #path)),
                "self" => quote!(pub(super)),
                _ => quote!(pub(in super::#path)),
            }
        }
    }
}

fn input_type(params: &[(syn::Ident, Type)]) -> TokenStream {
    let tys: Vec<&Type> = params.iter().map(|(_, t)| t).collect();
    match tys.len() {
        1 => {
            let t = tys[0];
            quote!(#t)
        }
        _ => quote!((#(#tys,)*)),
    }
}

struct Signature {
    ctx: syn::Ident,
    params: Vec<(syn::Ident, Type)>,
    output: Type,
}

fn check_signature(func: &ItemFn, errors: &mut Vec<syn::Error>) -> Option<Signature> {
    let sig = &func.sig;
    let n = errors.len();
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
    let mut inputs = sig.inputs.iter();
    let ctx = match inputs.next() {
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
    };
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
    let output = match &sig.output {
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
    };
    if errors.len() > n {
        return None;
    }
    Some(Signature {
        ctx: ctx?,
        params,
        output: output?,
    })
}

fn is_ctx_param(ty: &Type) -> bool {
    match ty {
        Type::Reference(r) if r.mutability.is_some() => {
            matches!(&*r.elem, Type::Path(p) if p.path.segments.last().is_some_and(|s| s.ident == "WorkflowContext"))
        }
        _ => false,
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
    let krate = quote!(::workflow_runtime::__private);
    let ctx_name = sig.ctx.to_string();
    suspend::check_body(&func.block, &ctx_name, errors);
    if !errors.is_empty() {
        return None;
    }
    let fn_end = func.block.brace_token.span.close();
    let mut lw = Lowerer::new(ctx_name, krate.clone(), fn_end);
    lw.lower_body(&sig.params, func.block.stmts.clone());
    errors.append(&mut lw.errors);
    let fields = live::fields(&lw.blocks, &lw.susps);
    let reachable = live::reachable(&lw.blocks);
    let types = field_types(&lw, &fields, &reachable, errors);
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

/// The type of every held local in every block, keyed by block and name, or an error naming
/// the local. A name's type is that of the binding it means where the block begins, so a
/// binding that shadows another in the same source block (`let name = name.trim().to_string();`)
/// is held with its own type.
fn field_types(
    lw: &Lowerer,
    fields: &live::Fields,
    reachable: &[bool],
    errors: &mut Vec<syn::Error>,
) -> BTreeMap<(usize, String), TokenStream> {
    let mut types = BTreeMap::new();
    let mut reported = BTreeSet::new();
    for (i, b) in lw.blocks.iter().enumerate() {
        if !reachable[i] {
            continue;
        }
        let state = if b.kind == BlockKind::Join {
            "a loop or branch join".to_owned()
        } else {
            format!("`{}`", b.name)
        };
        for name in &fields[i] {
            if reported.contains(name) {
                continue;
            }
            let (Some(decls), Some(current)) = (lw.decls.get(name), b.scope.current(name)) else {
                continue;
            };
            match held_type(name, &decls[current], decls, &state) {
                Ok(Some(t)) => {
                    types.insert((i, name.clone()), t);
                }
                Ok(None) => {}
                Err(e) => {
                    reported.insert(name.clone());
                    errors.push(e);
                }
            }
        }
    }
    types
}

/// The type `decl`, the binding of `name` a block holds, is stored with; `Ok(None)` where the
/// lowering has already reported the problem.
fn held_type(
    name: &str,
    decl: &vars::Decl,
    decls: &[vars::Decl],
    state: &str,
) -> Result<Option<TokenStream>, syn::Error> {
    // A binding in a nested block that shadows an outer one of the same name while the outer
    // one may still be needed (after the block, or at a `continue`) would be restored from the
    // wrong value, since fields are stored by name.
    if let Some(inner) = decls.iter().find(|d| d.shadows) {
        let outer = decls
            .iter()
            .find(|d| d.level != inner.level)
            .map_or(String::new(), |d| match names::line_of(d.ident.span()) {
                Some(line) => format!(" (the outer `{name}` is declared on line {line})"),
                None => String::new(),
            });
        return Err(syn::Error::new(
            inner.ident.span(),
            format!(
                "`{name}` is held across a suspension point (state {state}), so a nested block \
                 cannot declare it again: its value is restored by name; rename this binding{outer}"
            ),
        ));
    }
    let span = decl.ident.span();
    let msg = match (&decl.ty, decl.kind) {
        (_, DeclKind::Uninit) => format!(
            "`{name}` is held across a suspension point (state {state}) but declared without a \
             value; the checkpoint stores it, so give it one where it is declared: `let mut \
             {name}: Type = ..;` (an `Option` works when there is no value yet)"
        ),
        (TyInfo::Known(t), _) => return Ok(Some(t.clone())),
        (TyInfo::Unknown | TyInfo::SameAs(_), DeclKind::Pattern) => format!(
            "`{name}` is bound by a pattern and held across a suspension point (state {state}); \
             rebind it with a type before suspending: `let {name}2: Type = {name};`"
        ),
        // The lowering reported these (the value of a `let v = loop`).
        (_, DeclKind::Internal) => return Ok(None),
        (TyInfo::Reference, _) => format!(
            "`{name}` holds a reference across a suspension point (state {state}); a checkpoint \
             cannot store references; hold an owned value instead (e.g. `.to_string()`, \
             `.clone()`, `.to_vec()`)"
        ),
        _ => format!(
            "cannot determine the type of `{name}`, which is held across a suspension point \
             (state {state}); write `let {name}: Type = ..`"
        ),
    };
    Err(syn::Error::new(span, msg))
}

// Input:  ctx.step(plain, x) where `plain` is an ordinary `fn` (no struct of that name).
// Output: `use super::plain;` brings the user's item in each namespace it has, shadowing the
//         glob `use super::*`; the glob of fallbacks fills the type namespace only where the
//         user has no type `plain`, so the generated `<plain as Function>` reports the
//         `#[diagnostic::on_unimplemented]` message of `Function` at the user's token instead
//         of "expected type, found function".
fn step_probe(steps: &[&syn::Path]) -> TokenStream {
    let idents: Vec<&syn::Ident> = steps
        .iter()
        .filter(|p| p.leading_colon.is_none())
        .filter_map(|p| p.get_ident())
        // Names the generated module defines itself.
        .filter(|i| !matches!(i.to_string().as_str(), "State" | "Def" | "advance"))
        .filter(|i| !i.to_string().starts_with("__wf"))
        .collect();
    if idents.is_empty() {
        return TokenStream::new();
    }
    let imports = idents
        .iter()
        .map(|i| quote_spanned!(i.span()=> #[allow(unused_imports)] use super::#i;));
    quote! {
        #(#imports)*
        #[allow(unused_imports)]
        use self::__wf_not_functions::*;
        #[doc(hidden)]
        #[allow(non_camel_case_types, dead_code)]
        mod __wf_not_functions {
            #(pub struct #idents {})*
        }
    }
}

struct Codegen<'a> {
    func: &'a ItemFn,
    args: &'a Args,
    sig: &'a Signature,
    lw: &'a Lowerer,
    fields: &'a live::Fields,
    reachable: &'a [bool],
    types: &'a BTreeMap<(usize, String), TokenStream>,
    krate: TokenStream,
}

impl Codegen<'_> {
    fn field_idents(&self, block: usize) -> Vec<syn::Ident> {
        let b = &self.lw.blocks[block];
        if b.kind == BlockKind::Start {
            return self.sig.params.iter().map(|(i, _)| i.clone()).collect();
        }
        self.fields[block]
            .iter()
            .map(|n| syn::Ident::new(n, Span::call_site()))
            .collect()
    }

    fn field_type(&self, block: usize, name: &str) -> TokenStream {
        if self.lw.blocks[block].kind == BlockKind::Start {
            let (_, t) = self
                .sig
                .params
                .iter()
                .find(|(i, _)| i == name)
                .expect("a parameter");
            return quote!(#t);
        }
        self.types
            .get(&(block, name.to_owned()))
            .cloned()
            .expect("types were checked")
    }

    fn move_into(&self, block: usize) -> TokenStream {
        let name = &self.lw.blocks[block].name;
        let fields = self.field_idents(block);
        quote!(State::#name { #(#fields),* })
    }

    fn jump(&self, block: usize) -> TokenStream {
        let target = self.move_into(block);
        quote!({
            __wf_state = #target;
            continue '__wf_dispatch;
        })
    }

    fn stmt(&self, s: &syn::Stmt) -> TokenStream {
        let mut s = s.clone();
        self.jumps().visit_stmt_mut(&mut s);
        quote!(#s)
    }

    /// An expression with its jump placeholders replaced. Printed as an expression, not as a
    /// statement: a condition `let Some(x) = e` is not a valid statement, and syn would wrap it
    /// in parentheses.
    fn expr(&self, e: &Expr) -> TokenStream {
        let mut e = e.clone();
        self.jumps().visit_expr_mut(&mut e);
        quote!(#e)
    }

    fn jumps(&self) -> impl VisitMut + '_ {
        struct Jumps<'a, 'b>(&'a Codegen<'b>);
        impl VisitMut for Jumps<'_, '_> {
            fn visit_expr_mut(&mut self, e: &mut Expr) {
                if let Expr::Macro(m) = e
                    && m.mac.path.is_ident(JUMP_MACRO)
                    && let Ok(lit) = syn::parse2::<syn::LitInt>(m.mac.tokens.clone())
                    && let Ok(n) = lit.base10_parse::<usize>()
                {
                    let code = self.0.jump(n);
                    *e = syn::parse_quote!(#code);
                    return;
                }
                syn::visit_mut::visit_expr_mut(self, e);
            }
            fn visit_item_mut(&mut self, _: &mut syn::Item) {}
        }
        Jumps(self)
    }

    fn command(&self, info: &SuspInfo) -> TokenStream {
        let krate = &self.krate;
        let ctx = &self.sig.ctx;
        let span = info.susp.span;
        match &info.susp.kind {
            SuspensionKind::Step {
                func,
                input,
                retry: None,
            } => {
                let input = self.expr(input);
                quote_spanned!(span=> #krate::step_command::<#func>(#input))
            }
            SuspensionKind::Step {
                func,
                input,
                retry: Some(policy),
            } => {
                let input = self.expr(input);
                // Typed where it is written, so a wrong argument is reported at it.
                let policy_span = policy.span();
                let policy = self.expr(policy);
                let policy = quote_spanned!(policy_span=> {
                    let __wf_policy: #krate::RetryPolicy = #policy;
                    __wf_policy
                });
                quote_spanned!(span=> #krate::step_command_retry::<#func>(#input, #policy))
            }
            SuspensionKind::Wait {
                name,
                timeout,
                metadata,
                ..
            } => {
                let (name, timeout, metadata) =
                    (self.expr(name), self.expr(timeout), self.expr(metadata));
                quote_spanned!(span=> #krate::wait_command(&*#ctx, #name, #timeout, #metadata))
            }
            SuspensionKind::Sleep { duration } => {
                let duration = self.expr(duration);
                quote_spanned!(span=> #krate::sleep_command(&*#ctx, #duration))
            }
        }
    }

    fn nodes(&self, nodes: &[Node]) -> TokenStream {
        let krate = &self.krate;
        let mut out = TokenStream::new();
        for node in nodes {
            out.extend(match node {
                Node::Stmt(s) => self.stmt(s),
                Node::Suspend { susp, resume } => {
                    let cmd = self.command(&self.lw.susps[*susp]);
                    let next = self.move_into(*resume);
                    quote!({
                        let __wf_cmd = #cmd;
                        return #krate::Transition::Suspend(#next, __wf_cmd);
                    })
                }
                Node::Jump(b) => self.jump(*b),
                Node::If { cond, then, els } => {
                    let (cond, then, els) = (self.expr(cond), self.nodes(then), self.nodes(els));
                    quote!(if #cond { #then } else { #els })
                }
                Node::Match { expr, arms } => {
                    let expr = self.expr(expr);
                    let arms = arms.iter().map(|(pat, body)| {
                        let body = self.nodes(body);
                        quote!(#pat => { #body })
                    });
                    quote!(match #expr { #(#arms)* })
                }
                Node::Scope(inner) => {
                    let inner = self.nodes(inner);
                    quote!({ #inner })
                }
                Node::Complete(e) => {
                    let e = self.expr(e);
                    quote!(return #krate::Transition::Complete(#e);)
                }
                Node::FallOff {
                    span,
                    diverges: true,
                } => {
                    quote_spanned!(*span=> return #krate::Transition::Complete(#krate::fell_off());)
                }
                Node::FallOff {
                    span,
                    diverges: false,
                } => {
                    quote_spanned!(*span=> return #krate::Transition::Complete(());)
                }
            });
        }
        out
    }

    fn prelude(&self, b: &Block) -> TokenStream {
        let krate = &self.krate;
        let take = match b.kind {
            BlockKind::Join => return TokenStream::new(),
            BlockKind::Start => quote!(#krate::take_start(&mut __wf_ev).map(|()| ())),
            BlockKind::Resume(s) => {
                let info = &self.lw.susps[s];
                match &info.susp.kind {
                    SuspensionKind::Step { func, .. } => {
                        quote!(#krate::take_step::<#func>(&mut __wf_ev))
                    }
                    SuspensionKind::Wait { ty, .. } => {
                        quote!(#krate::take_signal::<#ty>(&mut __wf_ev))
                    }
                    SuspensionKind::Sleep { .. } => quote!(#krate::take_wake(&mut __wf_ev)),
                }
            }
        };
        let bind = match b.kind {
            BlockKind::Resume(s) => {
                let tmp = &self.lw.susps[s].tmp;
                quote!(#tmp)
            }
            _ => quote!(()),
        };
        quote! {
            let #bind = match #take {
                ::core::result::Result::Ok(__wf_v) => __wf_v,
                ::core::result::Result::Err(__wf_m) => return #krate::Transition::Reject(__wf_m.into_message()),
            };
        }
    }

    fn variant_doc(&self, b: &Block) -> String {
        match b.kind {
            BlockKind::Start => "The run has been created and not yet started.".to_owned(),
            BlockKind::Join => "A loop head or branch join; never stored.".to_owned(),
            BlockKind::Resume(s) => match &self.lw.susps[s].susp.kind {
                SuspensionKind::Step { func, .. } => {
                    let f = func
                        .segments
                        .last()
                        .map(|s| s.ident.to_string())
                        .unwrap_or_default();
                    format!("Waiting for the result of the step `{f}`.")
                }
                SuspensionKind::Wait { name, .. } => {
                    format!("Waiting for the signal {}.", quote!(#name))
                }
                SuspensionKind::Sleep { .. } => "Sleeping until a durable timer fires.".to_owned(),
            },
        }
    }

    fn emit(&self) -> TokenStream {
        let krate = &self.krate;
        let func = self.func;
        let name = &func.sig.ident;
        let vis = &func.vis;
        let ctx = &self.sig.ctx;
        let output = &self.sig.output;
        let stored_name = self.args.name.clone().unwrap_or_else(|| name.to_string());
        let version = self.args.version;
        let blocks: Vec<usize> = (0..self.lw.blocks.len())
            .filter(|i| self.reachable[*i])
            .collect();
        let mermaid = diagram::mermaid(&self.lw.blocks, &self.lw.susps, self.reachable);

        let mut variants = Vec::new();
        let mut arms = Vec::new();
        let mut variant_names = Vec::new();
        let mut fp = Fingerprint::new("workflow-runtime/workflow/1");
        let param_tys: Vec<&Type> = self.sig.params.iter().map(|(_, t)| t).collect();
        let input_ty = input_type(&self.sig.params);
        fp.str(&stored_name)
            .str(&version.to_string())
            .tokens(&input_ty)
            .str("->")
            .tokens(&quote!(#output));
        let mut layout: Vec<(String, Vec<(String, TokenStream)>)> = Vec::new();
        for &i in &blocks {
            let b = &self.lw.blocks[i];
            let vname = &b.name;
            let idents = self.field_idents(i);
            let tys: Vec<TokenStream> = idents
                .iter()
                .map(|f| self.field_type(i, &f.to_string()))
                .collect();
            let doc = self.variant_doc(b);
            let field_docs = idents.iter().map(|f| format!("The local `{f}`."));
            let attrs = if b.kind == BlockKind::Join {
                quote!(#[doc(hidden)] #[serde(skip)])
            } else {
                layout.push((
                    vname.to_string(),
                    idents
                        .iter()
                        .map(|f| f.to_string())
                        .zip(tys.iter().cloned())
                        .collect(),
                ));
                variant_names.push(quote!(State::#vname { .. } => ::core::stringify!(#vname),));
                quote!()
            };
            variants.push(quote! {
                #[doc = #doc]
                #attrs
                #vname { #( #[doc = #field_docs] #idents: #tys ),* }
            });
            let prelude = self.prelude(b);
            let body = self.nodes(&b.nodes);
            arms.push(quote! {
                State::#vname { #(mut #idents),* } => {
                    #prelude
                    #body
                }
            });
        }
        layout.sort_by(|a, b| a.0.cmp(&b.0));
        for (v, fs) in &layout {
            fp.str(v);
            for (f, t) in fs {
                fp.str(f).tokens(t);
            }
        }
        let base_hash = fp.finish();
        let mut steps: BTreeMap<String, &syn::Path> = BTreeMap::new();
        let mut signals = Vec::new();
        // The literal wait names; `None` once one is computed, since then any name may be
        // waited on.
        let mut signal_names: Option<BTreeSet<String>> = Some(BTreeSet::new());
        for info in &self.lw.susps {
            match &info.susp.kind {
                SuspensionKind::Step { func, .. } => {
                    steps.insert(quote!(#func).to_string(), func);
                }
                SuspensionKind::Wait { ty, name, .. } => {
                    if let Expr::Lit(syn::ExprLit {
                        lit: syn::Lit::Str(s),
                        ..
                    }) = &**name
                    {
                        signals.push(quote!(if name == #s { return ::core::option::Option::Some(#krate::check_payload::<#ty>(payload)); }));
                        if let Some(names) = &mut signal_names {
                            names.insert(s.value());
                        }
                    } else {
                        signal_names = None;
                    }
                }
                SuspensionKind::Sleep { .. } => {}
            }
        }
        let steps: Vec<&syn::Path> = steps.into_values().collect();
        let signal_names = match signal_names {
            Some(names) => {
                let names = names.iter();
                quote!(::core::option::Option::Some(&[#(#names),*]))
            }
            None => quote!(::core::option::Option::None),
        };
        let step_probe = step_probe(&steps);
        let mut body_fp = Fingerprint::new("workflow-runtime/body/1");
        body_fp.tokens(&quote!(#func));
        let body_hash = body_fp.finish();
        let params: Vec<&syn::Ident> = self.sig.params.iter().map(|(i, _)| i).collect();
        let destructure = match params.len() {
            1 => {
                let p = params[0];
                quote!(#p)
            }
            _ => quote!((#(#params,)*)),
        };
        let persist_checks = param_tys
            .iter()
            .map(|t| quote_spanned!(t.span()=> const _: () = #krate::assert_persist::<#t>();));
        let docs: Vec<&syn::Attribute> = func
            .attrs
            .iter()
            .filter(|a| a.path().is_ident("doc"))
            .collect();
        let mod_doc = format!("The state machine compiled from the `{name}` workflow.");
        let state_doc = format!(
            "Where a run of `{name}` stands: one variant per suspension point, holding the locals \
             still needed after it."
        );
        let def_doc =
            format!("The `{name}` workflow as a value; `{name}` is a constant of this type.");
        let ivis = inner_vis(vis);
        let migrations = self.args.migrate_from.as_ref().map(|p| {
            let old = quote_spanned!(p.span()=> #p::Def);
            quote_spanned! {p.span()=>
                fn migrations() -> ::std::vec::Vec<#krate::Migration> {
                    const _: () = ::core::assert!(
                        #krate::same_str(<#old as #krate::Workflow>::NAME, #stored_name),
                        "`migrate_from` names a workflow with another stored name; give both versions the same `name = \"..\"`",
                    );
                    const _: () = ::core::assert!(
                        <#old as #krate::Workflow>::VERSION < #version,
                        "`migrate_from` must name an older version of this workflow",
                    );
                    let mut chain = ::std::vec![#krate::Migration {
                        from_version: <#old as #krate::Workflow>::VERSION,
                        from_layout: <#old as #krate::Workflow>::LAYOUT_HASH,
                        to_version: #version,
                        to_layout: <Def as #krate::Workflow>::LAYOUT_HASH,
                        migrate: #krate::migrate_state::<#old, Def>,
                    }];
                    chain.extend(<#old as #krate::Workflow>::migrations());
                    chain
                }
            }
        });
        quote! {
            #(#docs)*
            #[allow(non_upper_case_globals)]
            #vis const #name: #name::Def = #name::Def;

            #[doc = #mod_doc]
            #[allow(non_snake_case, unused_imports)]
            #vis mod #name {
                use super::*;
                #step_probe

                #(#persist_checks)*

                #[doc = #state_doc]
                #[derive(::core::fmt::Debug, ::core::clone::Clone, #krate::serde::Serialize, #krate::serde::Deserialize)]
                #[serde(crate = "::workflow_runtime::__private::serde")]
                #ivis enum State {
                    #(#variants,)*
                }

                /// The workflow's state graph as a Mermaid `stateDiagram-v2`: one node per
                /// stored state, labelled with what the run waits on there.
                #ivis const MERMAID: &str = #mermaid;

                #[doc = #def_doc]
                #[derive(::core::fmt::Debug, ::core::clone::Clone, ::core::marker::Copy, ::core::default::Default)]
                #ivis struct Def;

                impl #krate::Workflow for Def {
                    const NAME: &'static str = #stored_name;
                    const VERSION: u32 = #version;
                    const LAYOUT_HASH: u64 = #krate::mix(#base_hash, &[#(<#steps as #krate::Function>::SIG_HASH),*]);
                    const BODY_HASH: u64 = #body_hash;
                    const MERMAID: &'static str = MERMAID;
                    const SIGNALS: ::core::option::Option<&'static [&'static str]> = #signal_names;
                    type Input = #input_ty;
                    type Output = #output;
                    type State = State;

                    fn start(input: Self::Input) -> State {
                        let #destructure = input;
                        State::Start { #(#params),* }
                    }

                    fn advance(
                        state: State,
                        event: #krate::Event,
                        ctx: &mut #krate::WorkflowContext,
                    ) -> #krate::Transition<State, #output> {
                        advance(state, event, ctx)
                    }

                    fn steps() -> ::std::vec::Vec<#krate::StepEntry> {
                        ::std::vec![#(#krate::StepEntry::of::<#steps>()),*]
                    }

                    fn check_signal(
                        name: &str,
                        payload: &#krate::serde_json::Value,
                    ) -> ::core::option::Option<::core::result::Result<(), #krate::PayloadError>> {
                        #(#signals)*
                        let _ = (name, payload);
                        ::core::option::Option::None
                    }

                    fn variant_name(state: &State) -> &'static str {
                        match state {
                            #(#variant_names)*
                            _ => "(join)",
                        }
                    }

                    #migrations
                }

                /// The transition function: runs the workflow from `state` with `event` until
                /// its next suspension point or its end.
                #[allow(
                    unused_mut,
                    unused_variables,
                    unreachable_code,
                    unused_assignments,
                    unused_braces,
                    path_statements,
                    unreachable_patterns,
                    // `?` becomes `From::from(e)`, which is the identity when the error types
                    // already match.
                    clippy::useless_conversion
                )]
                #ivis fn advance(
                    __wf_state_in: State,
                    __wf_event: #krate::Event,
                    #ctx: &mut #krate::WorkflowContext,
                ) -> #krate::Transition<State, #output> {
                    let mut __wf_ev = ::core::option::Option::Some(__wf_event);
                    let mut __wf_state = __wf_state_in;
                    '__wf_dispatch: loop {
                        match __wf_state {
                            #(#arms)*
                        }
                    }
                }
            }
        }
    }
}
