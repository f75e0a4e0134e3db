//! Names: what a piece of code uses and binds, and what type a binding has.

use std::collections::BTreeSet;

use proc_macro2::{TokenStream, TokenTree};
use quote::quote;
use syn::visit::Visit;
use syn::{Expr, Lit, Pat, Type};

use super::ir::{Part, Ty};

/// The placeholder the lowering leaves where control jumps to another block.
pub(crate) const JUMP_MACRO: &str = "__wf_jump";

/// What a binding's type is known to be.
#[derive(Clone)]
pub(crate) enum TyInfo {
    Known(Ty),
    /// The same type as another binding (`let y = x;`, `let y = x.clone();`).
    SameAs(String),
    /// A reference: never allowed across a suspension point.
    Reference,
    Unknown,
}

impl TyInfo {
    /// A type the runtime has no part in.
    pub(crate) fn written(tokens: TokenStream) -> Self {
        TyInfo::Known(Ty::Written(tokens))
    }
}

/// How a name was bound, for the diagnostics about held locals.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum DeclKind {
    Param,
    Let,
    /// A binding inside a larger pattern: match arms, `if let`, destructuring `let`.
    Pattern,
    ForVar,
    Internal,
    /// `let x: T;` without an initialiser.
    Uninit,
}

/// One binding of a name.
#[derive(Clone)]
pub(crate) struct Decl {
    pub(crate) ident: syn::Ident,
    pub(crate) ty: TyInfo,
    pub(crate) kind: DeclKind,
    /// Whether this binding shadows one made in an enclosing block (shadowing within one block
    /// is fine: the earlier binding can never be named again).
    pub(crate) shadows: bool,
    /// The [`Scope::level`] of the block it was made in.
    pub(crate) level: usize,
}

/// The bindings in scope at a point of the body.
#[derive(Clone, Default)]
pub(crate) struct Scope {
    /// Each name in declaration order with the index of its binding in the lowerer's
    /// `decls[name]`; a later entry of a name shadows an earlier one.
    entries: Vec<(String, usize)>,
    /// The source block the point is in: 0 for the body, a fresh number for each nested block.
    pub(crate) level: usize,
}

impl Scope {
    pub(crate) fn contains(&self, name: &str) -> bool {
        self.entries.iter().any(|(n, _)| n == name)
    }

    /// The index of the binding `name` means here.
    pub(crate) fn current(&self, name: &str) -> Option<usize> {
        self.entries
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, i)| *i)
    }

    pub(crate) fn push(&mut self, name: String, index: usize) {
        self.entries.push((name, index));
    }

    pub(crate) fn names(&self) -> impl Iterator<Item = &String> {
        self.entries.iter().map(|(n, _)| n)
    }

    /// The scope of a block nested here, numbered `level`.
    pub(crate) fn nested(&self, level: usize) -> Self {
        Self {
            entries: self.entries.clone(),
            level,
        }
    }
}

/// Names used (read or written) by a node, and the blocks it jumps to.
#[derive(Default)]
pub(crate) struct Uses {
    pub(crate) names: BTreeSet<String>,
    pub(crate) jumps: Vec<usize>,
}

impl Uses {
    pub(crate) fn of_expr(e: &Expr) -> Self {
        let mut u = Self::default();
        u.visit_expr(e);
        u
    }

    pub(crate) fn of_stmt(s: &syn::Stmt) -> Self {
        let mut u = Self::default();
        u.visit_stmt(s);
        u
    }

    fn scan_tokens(&mut self, tokens: TokenStream) {
        for tt in tokens {
            match tt {
                TokenTree::Ident(i) => {
                    self.names.insert(i.to_string());
                }
                TokenTree::Group(g) => self.scan_tokens(g.stream()),
                // Inline format arguments: `format!("{name}")` reads `name`.
                TokenTree::Literal(l) => {
                    if let Ok(Lit::Str(s)) = syn::parse2::<Lit>(TokenTree::Literal(l).into()) {
                        self.format_args(&s.value());
                    }
                }
                TokenTree::Punct(_) => {}
            }
        }
    }

    fn format_args(&mut self, s: &str) {
        let mut chars = s.chars().peekable();
        while let Some(c) = chars.next() {
            if c != '{' {
                continue;
            }
            if chars.peek() == Some(&'{') {
                chars.next();
                continue;
            }
            let name: String = chars
                .by_ref()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                self.names.insert(name);
            }
        }
    }
}

impl<'ast> Visit<'ast> for Uses {
    fn visit_expr_path(&mut self, p: &'ast syn::ExprPath) {
        if p.qself.is_none()
            && let Some(i) = p.path.get_ident()
        {
            self.names.insert(i.to_string());
        }
        syn::visit::visit_expr_path(self, p);
    }

    fn visit_macro(&mut self, m: &'ast syn::Macro) {
        if m.path.is_ident(JUMP_MACRO) {
            if let Ok(lit) = syn::parse2::<syn::LitInt>(m.tokens.clone())
                && let Ok(n) = lit.base10_parse::<usize>()
            {
                self.jumps.push(n);
            }
            return;
        }
        self.scan_tokens(m.tokens.clone());
    }

    fn visit_expr_closure(&mut self, c: &'ast syn::ExprClosure) {
        let mut inner = Uses::default();
        inner.visit_expr(&c.body);
        let mut params = Vec::new();
        for p in &c.inputs {
            pat_idents(p, &mut params);
        }
        for p in params {
            inner.names.remove(&p.to_string());
        }
        self.names.extend(inner.names);
        self.jumps.extend(inner.jumps);
    }

    // Nested items cannot see the workflow's locals.
    fn visit_item(&mut self, _: &'ast syn::Item) {}
}

/// The names a pattern binds. Capitalised single identifiers (`None`, `MAX`) are constants or
/// unit variants, not bindings.
pub(crate) fn pat_idents(p: &Pat, out: &mut Vec<syn::Ident>) {
    struct Idents<'a>(&'a mut Vec<syn::Ident>);
    impl<'ast> Visit<'ast> for Idents<'_> {
        fn visit_pat_ident(&mut self, p: &'ast syn::PatIdent) {
            let first = p.ident.to_string().chars().next().unwrap_or('_');
            if !first.is_uppercase() {
                self.0.push(p.ident.clone());
            }
            syn::visit::visit_pat_ident(self, p);
        }
        // A guard's expression binds nothing.
        fn visit_expr(&mut self, _: &'ast Expr) {}
    }
    Idents(out).visit_pat(p);
}

/// The bindings of a `let` pattern with what their types are known to be.
pub(crate) fn let_bindings(pat: &Pat, init: Option<&Expr>, init_ty: Option<TyInfo>) -> Vec<Decl> {
    let kind = if init.is_some() {
        DeclKind::Let
    } else {
        DeclKind::Uninit
    };
    let single = |ident: &syn::Ident, ty| {
        vec![Decl {
            ident: ident.clone(),
            ty,
            kind,
            shadows: false,
            level: 0,
        }]
    };
    let from_init = || init_ty.unwrap_or_else(|| init.map_or(TyInfo::Unknown, infer));
    match pat {
        Pat::Type(pt) => match (&*pt.pat, &*pt.ty) {
            (Pat::Ident(pi), ty) if pi.subpat.is_none() && pi.by_ref.is_none() => {
                single(&pi.ident, written_type(ty))
            }
            // `let (a, b): (A, B) = ..;` names each element's type.
            (Pat::Tuple(tuple), Type::Tuple(tys)) if tys.elems.len() == tuple.elems.len() => {
                tuple_decls(tuple, tys.elems.iter().map(written_type).collect())
            }
            (other, _) => pattern_decls(other),
        },
        // `let (a, b) = ctx.step(pair, ()).await?;` takes each element's type from the tuple's.
        Pat::Tuple(tuple) if tuple.elems.len() <= 6 => match from_init() {
            TyInfo::Known(t) => {
                let elems = (0..tuple.elems.len()).map(|i| TyInfo::Known(t.part(Part::Elem(i))));
                tuple_decls(tuple, elems.collect())
            }
            _ => pattern_decls(pat),
        },
        Pat::Ident(pi) if pi.subpat.is_none() => {
            let ty = if pi.by_ref.is_some() {
                TyInfo::Reference
            } else {
                from_init()
            };
            single(&pi.ident, ty)
        }
        other => pattern_decls(other),
    }
}

/// What a written type tells about a binding: references are never held.
pub(crate) fn written_type(ty: &Type) -> TyInfo {
    match ty {
        Type::Reference(_) => TyInfo::Reference,
        t => TyInfo::written(quote!(#t)),
    }
}

/// The bindings of a tuple pattern whose element types are known; other element patterns fall
/// back to [`pattern_decls`].
fn tuple_decls(tuple: &syn::PatTuple, types: Vec<TyInfo>) -> Vec<Decl> {
    let mut out = Vec::new();
    for (elem, ty) in tuple.elems.iter().zip(types) {
        match elem {
            Pat::Ident(pi) if pi.subpat.is_none() && pi.by_ref.is_none() => out.push(Decl {
                ident: pi.ident.clone(),
                ty,
                kind: DeclKind::Let,
                shadows: false,
                level: 0,
            }),
            Pat::Wild(_) => {}
            other => out.extend(pattern_decls(other)),
        }
    }
    out
}

/// The bindings of a refutable pattern (`if let`, `while let`, a `match` arm) matched against a
/// value of type `ty`: `Some(x)`, `Ok(v)`, `Err(e)`, tuples and plain names take their types
/// from it; a reference scrutinee makes every binding a reference (match ergonomics); other
/// shapes fall back to [`pattern_decls`].
pub(crate) fn typed_pattern_decls(pat: &Pat, ty: &TyInfo) -> Vec<Decl> {
    let decl = |ident: &syn::Ident, ty: TyInfo| Decl {
        ident: ident.clone(),
        ty,
        kind: DeclKind::Pattern,
        shadows: false,
        level: 0,
    };
    if let TyInfo::Reference = ty {
        return pattern_decls(pat)
            .into_iter()
            .map(|d| decl(&d.ident, TyInfo::Reference))
            .collect();
    }
    let TyInfo::Known(t) = ty else {
        return pattern_decls(pat);
    };
    match pat {
        Pat::Ident(pi) if is_binding(&pi.ident) => {
            let own = if pi.by_ref.is_some() {
                TyInfo::Reference
            } else {
                ty.clone()
            };
            let mut out = vec![decl(&pi.ident, own)];
            if let Some((_, sub)) = &pi.subpat {
                out.extend(typed_pattern_decls(sub, ty));
            }
            out
        }
        Pat::TupleStruct(ts) if ts.qself.is_none() && ts.elems.len() == 1 => {
            let inner = match ts
                .path
                .segments
                .last()
                .map(|s| s.ident.to_string())
                .as_deref()
            {
                Some("Some") => t.part(Part::Some),
                Some("Ok") => t.part(Part::Ok),
                Some("Err") => t.part(Part::Err),
                _ => return pattern_decls(pat),
            };
            typed_pattern_decls(&ts.elems[0], &TyInfo::Known(inner))
        }
        Pat::Tuple(tuple)
            if tuple.elems.len() <= 6 && !tuple.elems.iter().any(|p| matches!(p, Pat::Rest(_))) =>
        {
            let mut out = Vec::new();
            for (i, elem) in tuple.elems.iter().enumerate() {
                let elem_ty = TyInfo::Known(t.part(Part::Elem(i)));
                out.extend(typed_pattern_decls(elem, &elem_ty));
            }
            out
        }
        Pat::Type(pt) => typed_pattern_decls(&pt.pat, &written_type(&pt.ty)),
        Pat::Paren(p) => typed_pattern_decls(&p.pat, ty),
        Pat::Guard(g) => typed_pattern_decls(&g.pat, ty),
        // Every alternative binds the same names with the same types.
        Pat::Or(or) => or
            .cases
            .first()
            .map_or_else(Vec::new, |first| typed_pattern_decls(first, ty)),
        _ => pattern_decls(pat),
    }
}

/// Whether a single identifier in a pattern binds a name (capitalised ones are constants or
/// unit variants).
fn is_binding(ident: &syn::Ident) -> bool {
    !ident
        .to_string()
        .chars()
        .next()
        .unwrap_or('_')
        .is_uppercase()
}

/// The bindings of a pattern whose types cannot be named.
pub(crate) fn pattern_decls(pat: &Pat) -> Vec<Decl> {
    // Every alternative of an or-pattern binds the same names; one binding each.
    if let Pat::Or(or) = pat
        && let Some(first) = or.cases.first()
    {
        return pattern_decls(first);
    }
    let mut ids = Vec::new();
    pat_idents(pat, &mut ids);
    ids.into_iter()
        .map(|ident| Decl {
            ident,
            ty: TyInfo::Unknown,
            kind: DeclKind::Pattern,
            shadows: false,
            level: 0,
        })
        .collect()
}

fn lit_type(lit: &Lit) -> TyInfo {
    let known = |s: &str| TyInfo::written(s.parse().expect("a primitive type name"));
    match lit {
        Lit::Int(i) if !i.suffix().is_empty() => known(i.suffix()),
        Lit::Float(f) if !f.suffix().is_empty() => known(f.suffix()),
        Lit::Bool(_) => known("bool"),
        Lit::Char(_) => known("char"),
        Lit::Str(_) => TyInfo::Reference,
        _ => TyInfo::Unknown,
    }
}

fn path_is(p: &syn::Path, segs: &[&str]) -> bool {
    p.segments.len() >= segs.len()
        && p.segments
            .iter()
            .rev()
            .zip(segs.iter().rev())
            .all(|(s, want)| s.ident == want)
}

/// Infers a binding's type from its initialiser, for the forms whose type is written in them.
pub(crate) fn infer(e: &Expr) -> TyInfo {
    match e {
        Expr::Lit(l) => lit_type(&l.lit),
        Expr::Paren(p) => infer(&p.expr),
        Expr::Group(g) => infer(&g.expr),
        Expr::Cast(c) => {
            let t = &c.ty;
            TyInfo::written(quote!(#t))
        }
        Expr::Reference(_) => TyInfo::Reference,
        Expr::Unary(u) if matches!(u.op, syn::UnOp::Neg(_)) => infer(&u.expr),
        Expr::Path(p) if p.qself.is_none() => match p.path.get_ident() {
            Some(i) => TyInfo::SameAs(i.to_string()),
            None => TyInfo::Unknown,
        },
        Expr::Struct(s) if s.qself.is_none() && !s.path.is_ident("Self") => {
            let p = &s.path;
            TyInfo::written(quote!(#p))
        }
        Expr::Macro(m) if m.mac.path.is_ident("format") => {
            TyInfo::written(quote!(::std::string::String))
        }
        Expr::Call(c) => match &*c.func {
            Expr::Path(p)
                if path_is(&p.path, &["String", "new"])
                    || path_is(&p.path, &["String", "from"]) =>
            {
                TyInfo::written(quote!(::std::string::String))
            }
            _ => TyInfo::Unknown,
        },
        Expr::MethodCall(m) => {
            let method = m.method.to_string();
            match method.as_str() {
                "to_string" => TyInfo::written(quote!(::std::string::String)),
                "to_owned" | "into" if matches!(&*m.receiver, Expr::Lit(l) if matches!(l.lit, Lit::Str(_))) => {
                    if method == "to_owned" {
                        TyInfo::written(quote!(::std::string::String))
                    } else {
                        TyInfo::Unknown
                    }
                }
                "clone" | "to_owned" => match infer(&m.receiver) {
                    TyInfo::Reference => TyInfo::Unknown,
                    other => other,
                },
                "len" | "count" => TyInfo::written(quote!(usize)),
                "is_empty" | "is_some" | "is_none" | "is_ok" | "is_err" | "contains"
                | "starts_with" | "ends_with" => TyInfo::written(quote!(bool)),
                _ => TyInfo::Unknown,
            }
        }
        _ => TyInfo::Unknown,
    }
}

/// Turns `load_ticket` / `refund-decision` / `refund decision` into `LoadTicket` /
/// `RefundDecision`.
pub(crate) fn upper_camel(s: &str) -> String {
    let mut out = String::new();
    let mut up = true;
    for c in s.chars() {
        if c.is_alphanumeric() {
            if up {
                out.extend(c.to_uppercase());
            } else {
                out.push(c);
            }
            up = false;
        } else {
            up = true;
        }
    }
    if out.chars().next().is_some_and(|c| c.is_ascii_digit()) {
        out.insert(0, 'S');
    }
    out
}
