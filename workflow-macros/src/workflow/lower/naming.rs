//! What names each state: the sites recorded while lowering, and the syntax they are read
//! from (`#[state(..)]`, the bound locals, the enclosing arm's variant).

use super::*;

impl Lowerer {
    /// Records what names the resume block `block` of `susp`; [`names::assign`] decides.
    pub(super) fn name_site(
        &mut self,
        block: usize,
        susp: &Suspension,
        label: Option<&syn::Ident>,
        binding: Option<String>,
    ) {
        let (base, span) = match (label, &susp.kind) {
            (Some(l), _) => (l.to_string(), l.span()),
            (None, SuspensionKind::Step { func, .. }) => {
                let last = func
                    .segments
                    .last()
                    .map(|s| s.ident.to_string())
                    .unwrap_or_default();
                (upper_camel(&last), susp.span)
            }
            (None, SuspensionKind::Wait { name, .. }) => match signal_name(name) {
                Some(s) => (format!("Awaiting{}", upper_camel(&s)), susp.span),
                None => {
                    self.err(
                        name.span(),
                        "the signal name is not a string literal, so the state cannot be named from \
                         it; name this suspension point with `#[state(AwaitingSomething)]` on its \
                         statement",
                    );
                    let placeholder = format!("__Unnamed{}", self.susps.len());
                    self.sites.push(Site {
                        block,
                        explicit: Some(placeholder.clone()),
                        base: placeholder,
                        quals: Vec::new(),
                        span: susp.span,
                    });
                    return;
                }
            },
            (None, SuspensionKind::Sleep { .. }) => ("Sleeping".to_owned(), susp.span),
            // `LoadTicketAndLoadCustomer`; `FanOutReviewLine`.
            (None, SuspensionKind::Join { steps, .. }) => {
                let names: Vec<String> = steps
                    .iter()
                    .map(|(f, _)| upper_camel(&last_ident(f)))
                    .collect();
                (names.join("And"), susp.span)
            }
            (None, SuspensionKind::FanOut { func, .. }) => (
                format!("FanOut{}", upper_camel(&last_ident(func))),
                susp.span,
            ),
            // `ChildLineReview`, `StartChildAudit`, `ChildrenLineReview`.
            (
                None,
                SuspensionKind::Child {
                    workflow, detached, ..
                },
            ) => (
                format!(
                    "{}{}",
                    if *detached { "StartChild" } else { "Child" },
                    upper_camel(&last_ident(workflow))
                ),
                susp.span,
            ),
            (None, SuspensionKind::FanOutChildren { workflow, .. }) => (
                format!("Children{}", upper_camel(&last_ident(workflow))),
                susp.span,
            ),
            // Named after the enum the signals decode into: `AwaitingReview`.
            (None, SuspensionKind::WaitAny { ty, .. }) => {
                (format!("Awaiting{}", type_stem(ty)), susp.span)
            }
        };
        let quals = binding
            .into_iter()
            .chain(self.quals.iter().rev().cloned())
            .collect();
        self.sites.push(Site {
            block,
            explicit: label.map(ToString::to_string),
            base,
            quals,
            span,
        });
    }

    /// Names every resume block (see [`names`]).
    pub(super) fn assign_names(&mut self) {
        let names = names::assign(&self.sites, &["Start"], &mut self.errors);
        for (site, name) in self.sites.iter().zip(names) {
            self.blocks[site.block].name = syn::Ident::new(&name, site.span);
        }
    }

    /// Lowers `nodes` with `qual` naming the construct they are inside, for state names.
    pub(super) fn qualified<T>(
        &mut self,
        qual: Option<String>,
        f: impl FnOnce(&mut Self) -> T,
    ) -> T {
        let pushed = qual.is_some();
        self.quals.extend(qual);
        let out = f(self);
        if pushed {
            self.quals.pop();
        }
        out
    }

    pub(super) fn take_label(&mut self, stmt: &mut Stmt) -> Option<syn::Ident> {
        let is_state = |a: &syn::Attribute| a.path().is_ident("state");
        let attrs = match stmt {
            Stmt::Local(l) => &mut l.attrs,
            // The parser attaches the outer attributes of `#[state(X)] v = ..;` to its
            // leftmost operand, `v`.
            Stmt::Expr(Expr::Assign(a), _) if !a.attrs.iter().any(is_state) => {
                leftmost_attrs(&mut a.left)?
            }
            Stmt::Expr(e, _) => expr_attrs(e)?,
            _ => return None,
        };
        let pos = attrs.iter().position(is_state)?;
        let attr = attrs.remove(pos);
        match attr.parse_args::<syn::Ident>() {
            Ok(i) => Some(i),
            Err(_) => {
                self.err(
                    attr.span(),
                    "write `#[state(VariantName)]` with one identifier",
                );
                None
            }
        }
    }
}

/// The last identifier of a path.
pub(crate) fn last_ident(p: &syn::Path) -> String {
    p.segments
        .last()
        .map(|s| s.ident.to_string())
        .unwrap_or_default()
}

/// The last identifier of a type's path (`review::Event` gives `Event`), or `Signals`.
fn type_stem(ty: &syn::Type) -> String {
    match ty {
        syn::Type::Path(p) => p
            .path
            .segments
            .last()
            .map_or_else(|| "Signals".to_owned(), |s| s.ident.to_string()),
        _ => "Signals".to_owned(),
    }
}

/// The signal name of a wait, when it is a string literal.
pub(super) fn signal_name(name: &Expr) -> Option<String> {
    match name {
        Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Str(s),
            ..
        }) => Some(s.value()),
        _ => None,
    }
}

/// The qualifier a statement that begins with a suspension point gives its state name: the
/// locals it binds (`let receipt = ..`, `let (a, b) = ..`, `if let Some(x) = ..`) or assigns
/// (`total = ..`, `order.status = ..`).
pub(super) fn binding_of(stmt: &Stmt) -> Option<String> {
    let mut idents = Vec::new();
    match stmt {
        Stmt::Local(l) => pat_idents(&l.pat, &mut idents),
        Stmt::Expr(Expr::Assign(a), _) => match &*a.left {
            Expr::Path(p) if p.qself.is_none() => idents.extend(p.path.get_ident().cloned()),
            Expr::Field(f) => {
                if let syn::Member::Named(m) = &f.member {
                    idents.push(m.clone());
                }
            }
            _ => {}
        },
        Stmt::Expr(Expr::If(i), _) => {
            if let Expr::Let(l) = &*i.cond {
                pat_idents(&l.pat, &mut idents);
            }
        }
        _ => {}
    }
    let words: Vec<String> = idents
        .iter()
        .map(|i| i.to_string().trim_start_matches('_').to_owned())
        .filter(|w| !w.is_empty())
        .collect();
    (!words.is_empty()).then(|| upper_camel(&words.join("_")))
}

/// The variant a `match` arm matches, for the state names inside it: `Decision::Approve { .. }`
/// → `Approve`, `Err(WaitError::TimedOut)` → `TimedOut`, `Some(x)` → `Some`, `None` → `None`.
/// Wildcards, bindings, literals and or-patterns name nothing.
pub(super) fn arm_variant(pat: &Pat) -> Option<String> {
    let last = |p: &syn::Path| p.segments.last().map(|s| s.ident.to_string());
    match pat {
        Pat::Guard(g) => arm_variant(&g.pat),
        Pat::Paren(p) => arm_variant(&p.pat),
        Pat::TupleStruct(ts) if ts.qself.is_none() => {
            let inner = match ts.elems.iter().collect::<Vec<_>>().as_slice() {
                [only] => arm_variant(only),
                _ => None,
            };
            inner.or_else(|| last(&ts.path))
        }
        Pat::Struct(st) if st.qself.is_none() => last(&st.path),
        Pat::Path(p) if p.qself.is_none() => last(&p.path),
        Pat::Ident(pi)
            if pi.subpat.is_none() && pi.ident.to_string().starts_with(char::is_uppercase) =>
        {
            Some(pi.ident.to_string())
        }
        _ => None,
    }
    .map(|v| upper_camel(&v))
}

pub(super) fn expr_attrs(e: &mut Expr) -> Option<&mut Vec<syn::Attribute>> {
    Some(match e {
        Expr::Await(x) => &mut x.attrs,
        Expr::Try(x) => &mut x.attrs,
        Expr::Assign(x) => &mut x.attrs,
        Expr::Match(x) => &mut x.attrs,
        Expr::If(x) => &mut x.attrs,
        Expr::MethodCall(x) => &mut x.attrs,
        Expr::Call(x) => &mut x.attrs,
        Expr::Field(x) => &mut x.attrs,
        Expr::Return(x) => &mut x.attrs,
        Expr::Loop(x) => &mut x.attrs,
        Expr::While(x) => &mut x.attrs,
        Expr::ForLoop(x) => &mut x.attrs,
        Expr::Block(x) => &mut x.attrs,
        Expr::Break(x) => &mut x.attrs,
        _ => return None,
    })
}

/// The attributes of the leftmost operand of an assignment's place (`v`, `v.f`, `v[i]`).
pub(super) fn leftmost_attrs(e: &mut Expr) -> Option<&mut Vec<syn::Attribute>> {
    match e {
        Expr::Field(f) => leftmost_attrs(&mut f.base),
        Expr::Index(i) => leftmost_attrs(&mut i.expr),
        Expr::Path(p) => Some(&mut p.attrs),
        _ => None,
    }
}
