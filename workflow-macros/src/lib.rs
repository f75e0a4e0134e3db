//! Procedural macros for `workflow-runtime`: `#[function]` and `#[workflow]`.
use proc_macro::TokenStream;

/// Marks an async step function.
#[proc_macro_attribute]
pub fn function(_attr: TokenStream, item: TokenStream) -> TokenStream {
    item
}

/// Marks an async workflow function.
#[proc_macro_attribute]
pub fn workflow(_attr: TokenStream, item: TokenStream) -> TokenStream {
    item
}
