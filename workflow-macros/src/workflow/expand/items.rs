//! The items of the expansion: the state enum, the `Workflow` impl and `advance`, and the
//! stub emitted on error.

use std::collections::{BTreeMap, BTreeSet};

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Expr, ItemFn};

use super::Codegen;
use crate::hash::Fingerprint;
use crate::runtime::{self, Runtime};
use crate::workflow::args::Args;
use crate::workflow::diagram;
use crate::workflow::lower::BlockKind;
use crate::workflow::signature::{Signature, input_type};
use crate::workflow::suspend::SuspensionKind;

/// One `State` variant and its `advance` arm per reachable block.
struct States {
    variants: Vec<TokenStream>,
    arms: Vec<TokenStream>,
    /// The `variant_name` arms of the stored variants.
    variant_names: Vec<TokenStream>,
    /// The stored variants with their fields and types, for the layout hash.
    layout: Vec<(String, Vec<(String, TokenStream)>)>,
}

/// What the run calls and waits on, for the `Workflow` impl.
struct Registry<'a> {
    /// The steps called, deduplicated, in a stable order.
    steps: Vec<&'a syn::Path>,
    /// The `check_signal` tests of the literally named waits.
    signals: Vec<TokenStream>,
    /// `SIGNALS`: the literal wait names, or `None` when a name is computed.
    signal_names: TokenStream,
}

impl Codegen<'_> {
    /// The stored name: `name = ".."`, or the function's.
    fn stored_name(&self) -> String {
        let name = &self.func.sig.ident;
        self.args.name.clone().unwrap_or_else(|| name.to_string())
    }

    fn states(&self) -> States {
        let mut out = States {
            variants: Vec::new(),
            arms: Vec::new(),
            variant_names: Vec::new(),
            layout: Vec::new(),
        };
        for i in (0..self.lw.blocks.len()).filter(|i| self.reachable[*i]) {
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
                let fields = idents.iter().map(ToString::to_string);
                out.layout
                    .push((vname.to_string(), fields.zip(tys.iter().cloned()).collect()));
                out.variant_names
                    .push(quote!(State::#vname { .. } => ::core::stringify!(#vname),));
                quote!()
            };
            out.variants.push(quote! {
                #[doc = #doc]
                #attrs
                #vname { #( #[doc = #field_docs] #idents: #tys ),* }
            });
            let prelude = self.prelude(b);
            let body = self.nodes(&b.nodes);
            out.arms.push(quote! {
                State::#vname { #(mut #idents),* } => {
                    #prelude
                    #body
                }
            });
        }
        out.layout.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// The layout hash before the steps' signatures are mixed in: the stored name, version,
    /// input and output types and every stored variant's fields and types, in the runtime's
    /// canonical spelling.
    fn base_hash(&self, layout: &[(String, Vec<(String, TokenStream)>)]) -> u64 {
        let output = &self.sig.output;
        let mut fp = Fingerprint::new("workflow-runtime/workflow/1");
        fp.str(&self.stored_name())
            .str(&self.args.version.to_string())
            .tokens(&input_type(&self.sig.params))
            .str("->")
            .tokens(&quote!(#output));
        for (v, fs) in layout {
            fp.str(v);
            for (f, t) in fs {
                fp.str(f).tokens(&Runtime::canonical(t));
            }
        }
        fp.finish()
    }

    fn registry(&self) -> Registry<'_> {
        let krate = &self.krate;
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
                        signals.push(quote!(if name == #s { __wf_check(#krate::check_payload::<#ty>(payload)); }));
                        if let Some(names) = &mut signal_names {
                            names.insert(s.value());
                        }
                    } else {
                        signal_names = None;
                    }
                }
                SuspensionKind::Sleep { .. }
                | SuspensionKind::Child { .. }
                | SuspensionKind::FanOutChildren { .. } => {}
                SuspensionKind::Join { steps: pairs, .. } => {
                    for (func, _) in pairs {
                        steps.insert(quote!(#func).to_string(), func);
                    }
                }
                SuspensionKind::FanOut { func, .. } => {
                    steps.insert(quote!(#func).to_string(), func);
                }
                SuspensionKind::WaitAny { ty, names, .. } => {
                    for s in names {
                        signals.push(quote!(if name == #s { __wf_check(#krate::check_tagged::<#ty>(name, payload)); }));
                        if let Some(known) = &mut signal_names {
                            known.insert(s.value());
                        }
                    }
                }
            }
        }
        let signal_names = match signal_names {
            Some(names) => {
                let names = names.iter();
                quote!(::core::option::Option::Some(&[#(#names),*]))
            }
            None => quote!(::core::option::Option::None),
        };
        Registry {
            steps: steps.into_values().collect(),
            signals,
            signal_names,
        }
    }

    /// `Workflow::migrations` for `migrate_from = previous`: the previous version's chain
    /// with the step from it to this one, checked at compile time to be the same workflow.
    fn migrations(&self) -> Option<TokenStream> {
        let krate = &self.krate;
        let stored_name = self.stored_name();
        let version = self.args.version;
        self.args.migrate_from.as_ref().map(|p| {
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
        })
    }

    /// `impl Workflow for Def`.
    fn workflow_impl(&self, states: &States, registry: &Registry<'_>) -> TokenStream {
        let krate = &self.krate;
        let output = &self.sig.output;
        let stored_name = self.stored_name();
        let version = self.args.version;
        let base_hash = self.base_hash(&states.layout);
        let mut body_fp = Fingerprint::new("workflow-runtime/body/1");
        let func = self.func;
        body_fp.tokens(&quote!(#func));
        let body_hash = body_fp.finish();
        let input_ty = input_type(&self.sig.params);
        let params: Vec<&syn::Ident> = self.sig.params.iter().map(|(i, _)| i).collect();
        let destructure = match params.as_slice() {
            [p] => quote!(#p),
            _ => quote!((#(#params,)*)),
        };
        let Registry {
            steps,
            signals,
            signal_names,
        } = registry;
        let variant_names = &states.variant_names;
        let migrations = self.migrations();
        quote! {
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
                    // A name waited on with several types accepts a payload that fits one.
                    let mut __wf_verdict = ::core::option::Option::None;
                    let mut __wf_check = |r: ::core::result::Result<(), #krate::PayloadError>| {
                        if !::core::matches!(__wf_verdict, ::core::option::Option::Some(::core::result::Result::Ok(()))) {
                            __wf_verdict = ::core::option::Option::Some(r);
                        }
                    };
                    #(#signals)*
                    let _ = (name, payload, &mut __wf_check);
                    __wf_verdict
                }

                fn variant_name(state: &State) -> &'static str {
                    match state {
                        #(#variant_names)*
                        _ => "(join)",
                    }
                }

                #migrations
            }
        }
    }

    /// The transition function, a dispatch loop over the blocks' arms.
    fn advance_fn(&self, arms: &[TokenStream]) -> TokenStream {
        let krate = &self.krate;
        let ctx = &self.sig.ctx;
        let output = &self.sig.output;
        let ivis = inner_vis(&self.func.vis);
        quote! {
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

    /// The whole expansion: the constant, and the module with `State`, `Def` and `advance`.
    pub(in crate::workflow) fn emit(&self) -> TokenStream {
        let krate = &self.krate;
        let func = self.func;
        let name = &func.sig.ident;
        let vis = &func.vis;
        let serde_crate = self.args.runtime.serde_crate();
        let mermaid = diagram::mermaid(&self.lw.blocks, &self.lw.susps, self.reachable);
        let states = self.states();
        let registry = self.registry();
        let step_probe = step_probe(&registry.steps);
        let workflow_impl = self.workflow_impl(&states, &registry);
        let advance = self.advance_fn(&states.arms);
        let variants = &states.variants;
        let persist_checks =
            self.sig.params.iter().map(
                |(_, t)| quote_spanned!(t.span()=> const _: () = #krate::assert_persist::<#t>();),
            );
        let docs = func.attrs.iter().filter(|a| a.path().is_ident("doc"));
        let mod_doc = format!("The state machine compiled from the `{name}` workflow.");
        let state_doc = format!(
            "Where a run of `{name}` stands: one variant per suspension point, holding the locals \
             still needed after it."
        );
        let def_doc =
            format!("The `{name}` workflow as a value; `{name}` is a constant of this type.");
        let ivis = inner_vis(vis);
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
                #[serde(crate = #serde_crate)]
                #ivis enum State {
                    #(#variants,)*
                }

                /// The workflow's state graph as a Mermaid `stateDiagram-v2`: one node per
                /// stored state, labelled with what the run waits on there.
                #ivis const MERMAID: &str = #mermaid;

                #[doc = #def_doc]
                #[derive(::core::fmt::Debug, ::core::clone::Clone, ::core::marker::Copy, ::core::default::Default)]
                #ivis struct Def;

                #workflow_impl

                #advance
            }
        }
    }
}

/// On error: the diagnostics plus empty items under the workflow's names, so that uses of the
/// workflow elsewhere do not bury the real message under "cannot find" errors.
pub(crate) fn stub(
    func: &ItemFn,
    sig: Option<&Signature>,
    errors: &[syn::Error],
    args: Option<&Args>,
) -> TokenStream {
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
    let krate = runtime::rt();
    let serde_crate = args.map_or_else(
        || Runtime::default().serde_crate(),
        |a| a.runtime.serde_crate(),
    );
    let output = &sig.output;
    let input_ty = input_type(&sig.params);
    let ivis = inner_vis(vis);
    quote! {
        #(#errs)*
        #[allow(non_snake_case, dead_code, missing_docs, unused_imports)]
        #vis mod #name {
            use super::*;
            #[derive(Debug, Clone, #krate::serde::Serialize, #krate::serde::Deserialize)]
            #[serde(crate = #serde_crate)]
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
pub(super) fn inner_vis(vis: &syn::Visibility) -> TokenStream {
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

// Input:  ctx.step(plain, x) where `plain` is an ordinary `fn` (no struct of that name).
// Output: `use super::plain;` brings the user's item in each namespace it has, shadowing the
//         glob `use super::*`; the glob of fallbacks fills the type namespace only where the
//         user has no type `plain`, so the generated `<plain as Function>` reports the
//         `#[diagnostic::on_unimplemented]` message of `Function` at the user's token instead
//         of "expected type, found function".
pub(super) fn step_probe(steps: &[&syn::Path]) -> TokenStream {
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
