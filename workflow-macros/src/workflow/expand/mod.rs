//! Expansion: the only stage that writes runtime items (through the placeholder of
//! [`crate::runtime`]); it turns the lowered blocks into `State`, `advance` and the `Workflow`
//! impl.

mod items;
mod render;

use std::collections::BTreeMap;

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::visit_mut::VisitMut;
use syn::{Expr, ItemFn};

use super::args::Args;
use super::ir::Ty;
use super::live;
use super::lower::{Block, BlockKind, Lowerer, Node, SuspInfo};
use super::signature::Signature;
use super::suspend::SuspensionKind;
use super::vars::JUMP_MACRO;
pub(super) use items::stub;

pub(super) struct Codegen<'a> {
    pub(super) func: &'a ItemFn,
    pub(super) args: &'a Args,
    pub(super) sig: &'a Signature,
    pub(super) lw: &'a Lowerer,
    pub(super) fields: &'a live::Fields,
    pub(super) reachable: &'a [bool],
    pub(super) types: &'a BTreeMap<(usize, String), Ty>,
    pub(super) krate: TokenStream,
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
        let ty = self
            .types
            .get(&(block, name.to_owned()))
            .expect("types were checked");
        render::ty(ty)
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
                if let Expr::Call(call) = e
                    && let Some(op) = render::op(call)
                {
                    *e = op;
                }
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
            SuspensionKind::Join { steps, .. } => {
                let items = steps.iter().map(|(f, input)| {
                    let input = self.expr(input);
                    quote_spanned!(f.span()=> #krate::batch_item::<#f>(#input))
                });
                quote_spanned!(span=> #krate::batch_command(::std::vec![#(#items),*], 0))
            }
            SuspensionKind::FanOut {
                func, items, limit, ..
            } => {
                let (items, limit) = (self.expr(items), self.expr(limit));
                let limit_span = limit.span();
                let limit =
                    quote_spanned!(limit_span=> { let __wf_limit: usize = #limit; __wf_limit });
                quote_spanned!(span=> #krate::fan_out_command::<#func, _>(#items, #limit))
            }
            SuspensionKind::Child {
                workflow,
                input,
                id,
                detached,
            } => {
                let input = self.expr(input);
                let id = match id {
                    Some(id) => {
                        let id = self.expr(id);
                        quote_spanned!(id.span()=> #krate::child_id(#id))
                    }
                    None => quote!(::core::option::Option::None),
                };
                quote_spanned!(span=> #krate::child_command(&*#ctx, #workflow, #input, #id, #detached))
            }
            SuspensionKind::FanOutChildren { workflow, items } => {
                let items = self.expr(items);
                quote_spanned!(span=> #krate::fan_out_children_command(&*#ctx, #workflow, #items))
            }
            SuspensionKind::WaitAny {
                ty,
                names,
                timeout,
                metadata,
            } => {
                let (timeout, metadata) = (self.expr(timeout), self.expr(metadata));
                quote_spanned!(span=> #krate::wait_any_command::<#ty, _>(&*#ctx, &[#(#names),*], #timeout, #metadata))
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
                        // A guard is verbatim code too.
                        let mut pat = pat.clone();
                        self.jumps().visit_pat_mut(&mut pat);
                        let body = self.nodes(body);
                        quote!(#pat => { #body })
                    });
                    quote!(match #expr { #(#arms)* })
                }
                Node::Scope(inner) => {
                    let inner = self.nodes(inner);
                    quote!({ #inner })
                }
                Node::ForCursor { cursor, ty, init } => {
                    let ty = render::ty(ty);
                    let exprs: Vec<TokenStream> =
                        init.exprs().into_iter().map(|e| self.expr(e)).collect();
                    let init = render::cursor_init(init, &exprs);
                    quote!(let mut #cursor: #ty = #init;)
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
                    SuspensionKind::Wait { ty, .. } | SuspensionKind::WaitAny { ty, .. } => {
                        quote!(#krate::take_signal::<#ty>(&mut __wf_ev))
                    }
                    SuspensionKind::Sleep { .. } => quote!(#krate::take_wake(&mut __wf_ev)),
                    SuspensionKind::Join { steps, all } => {
                        let n = steps.len();
                        let funcs: Vec<&syn::Path> = steps.iter().map(|(f, _)| f).collect();
                        let each = quote!((#(#krate::next_result::<#funcs>(&mut __wf_r),)*));
                        if *all {
                            quote!(#krate::take_batch(&mut __wf_ev, #n).map(|mut __wf_r| #each))
                        } else {
                            let idx = (0..n).map(syn::Index::from);
                            let outs = funcs
                                .iter()
                                .map(|f| quote!(<#f as #krate::Function>::Output));
                            quote!(#krate::take_batch(&mut __wf_ev, #n).map(|mut __wf_r| {
                                let __wf_t = #each;
                                (move || -> ::core::result::Result<(#(#outs,)*), #krate::StepError> {
                                    ::core::result::Result::Ok((#(__wf_t.#idx?,)*))
                                })()
                            }))
                        }
                    }
                    SuspensionKind::Child {
                        workflow,
                        detached: false,
                        ..
                    } => {
                        let def = render::workflow_type(workflow);
                        quote!(#krate::take_children(&mut __wf_ev).map(|mut __wf_r| #krate::next_child::<#def>(&mut __wf_r)))
                    }
                    SuspensionKind::Child { .. } => {
                        quote!(#krate::take_children(&mut __wf_ev).map(|mut __wf_r| #krate::next_child_id(&mut __wf_r)))
                    }
                    SuspensionKind::FanOutChildren { workflow, .. } => {
                        let def = render::workflow_type(workflow);
                        quote!(#krate::take_children(&mut __wf_ev).map(#krate::children_results::<#def>))
                    }
                    SuspensionKind::FanOut { func, all, .. } => {
                        let take = quote!(#krate::take_fan_out(&mut __wf_ev).map(#krate::fan_out_results::<#func>));
                        if *all {
                            take
                        } else {
                            quote!(#take.map(#krate::first_error))
                        }
                    }
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
                SuspensionKind::Join { steps, .. } => {
                    let names: Vec<String> =
                        steps.iter().map(|(f, _)| quote!(#f).to_string()).collect();
                    format!(
                        "Waiting for the steps `{}`, run in parallel.",
                        names.join("`, `")
                    )
                }
                SuspensionKind::FanOut { func, .. } => {
                    format!("Waiting for the fan-out of the step `{}`.", quote!(#func))
                }
                SuspensionKind::Child {
                    workflow, detached, ..
                } => {
                    if *detached {
                        format!("Starting a detached child run of `{}`.", quote!(#workflow))
                    } else {
                        format!("Waiting for a child run of `{}`.", quote!(#workflow))
                    }
                }
                SuspensionKind::FanOutChildren { workflow, .. } => {
                    format!("Waiting for the child runs of `{}`.", quote!(#workflow))
                }
                SuspensionKind::WaitAny { names, .. } => {
                    let names: Vec<String> = names.iter().map(syn::LitStr::value).collect();
                    format!(
                        "Waiting for the first of the signals `{}`.",
                        names.join("`, `")
                    )
                }
            },
        }
    }
}
