//! The one place that spells the runtime's path.
//!
//! Only the expansion stages name the runtime: the analysis of `#[workflow]` hands them IR
//! (`workflow::ir`), which they render, writing the runtime's hidden support module as the
//! placeholder [`RT`] (`__wf_rt::Transition`, `<T as __wf_rt::Function>::Output`). The
//! finished tokens go through [`Runtime::render`], which substitutes the path chosen by the
//! `crate = path` argument (default `::workflow_runtime`). Fingerprints hash the canonical
//! spelling, so re-exporting the runtime does not change a workflow's stored layout hash.

use proc_macro2::{Group, Ident, Span, TokenStream, TokenTree};
use quote::{ToTokens, quote};

/// The placeholder for `<runtime>::__private`, the runtime's hidden, unversioned-for-users
/// support module. Reserved: the `__wf` prefix is the macros' own.
const RT: &str = "__wf_rt";

/// The support module, as the stages write it: `#rt::Transition`.
pub(crate) fn rt() -> TokenStream {
    Ident::new(RT, Span::call_site()).into_token_stream()
}

/// How the expansion names the runtime crate.
pub(crate) struct Runtime {
    krate: syn::Path,
}

impl Default for Runtime {
    fn default() -> Self {
        Self {
            krate: syn::parse_quote!(::workflow_runtime),
        }
    }
}

impl Runtime {
    /// The runtime reached through `path` (`crate = my_app::rt`), for crates that re-export it.
    pub(crate) fn at(krate: syn::Path) -> Self {
        Self { krate }
    }

    /// The hidden support module under the chosen path.
    fn private(&self) -> TokenStream {
        let krate = &self.krate;
        quote!(#krate::__private)
    }

    /// The support module's `serde` re-export, as the string `#[serde(crate = "..")]` takes.
    pub(crate) fn serde_crate(&self) -> String {
        let mut s = String::new();
        if self.krate.leading_colon.is_some() {
            s.push_str("::");
        }
        let segments: Vec<String> = self
            .krate
            .segments
            .iter()
            .map(|seg| seg.ident.to_string())
            .collect();
        s.push_str(&segments.join("::"));
        s.push_str("::__private::serde");
        s
    }

    /// `tokens` with every placeholder replaced by the support module's path.
    pub(crate) fn render(&self, tokens: TokenStream) -> TokenStream {
        substitute(tokens, &self.private())
    }

    /// `tokens` as fingerprints see them: with the default path, whatever the `crate`
    /// argument, so that a stored layout does not depend on how the runtime is reached.
    pub(crate) fn canonical(tokens: &TokenStream) -> TokenStream {
        Self::default().render(tokens.clone())
    }
}

fn substitute(tokens: TokenStream, with: &TokenStream) -> TokenStream {
    tokens
        .into_iter()
        .flat_map(|tt| match tt {
            TokenTree::Ident(i) if i == RT => with.clone(),
            TokenTree::Group(g) => {
                let mut out = Group::new(g.delimiter(), substitute(g.stream(), with));
                out.set_span(g.span());
                TokenTree::Group(out).into_token_stream()
            }
            other => other.into_token_stream(),
        })
        .collect()
}

/// Parses the value of a `crate = path` argument.
pub(crate) fn parse_crate_arg(meta: &syn::meta::ParseNestedMeta<'_>) -> syn::Result<syn::Path> {
    let value = meta.value()?;
    // `crate = "path"` as serde spells it, or a bare path.
    let hint = "`crate` is the path the runtime is reached by, like `crate = my_app::durable`";
    if value.peek(syn::LitStr) {
        let lit: syn::LitStr = value.parse()?;
        return lit.parse().map_err(|_| syn::Error::new(lit.span(), hint));
    }
    value.parse().map_err(|e| syn::Error::new(e.span(), hint))
}
