//! The arguments of `#[workflow(..)]`.

use proc_macro2::TokenStream;

use crate::runtime::{self, Runtime};

pub(super) struct Args {
    pub(super) name: Option<String>,
    pub(super) version: u32,
    pub(super) migrate_from: Option<syn::Path>,
    pub(super) runtime: Runtime,
}

pub(super) fn parse_args(attr: TokenStream) -> syn::Result<Args> {
    let mut args = Args {
        name: None,
        version: 1,
        migrate_from: None,
        runtime: Runtime::default(),
    };
    let mut seen_crate = false;
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
        } else if meta.path.is_ident("crate") {
            if std::mem::replace(&mut seen_crate, true) {
                return Err(meta.error("`crate` is given twice"));
            }
            args.runtime = Runtime::at(runtime::parse_crate_arg(&meta)?);
            Ok(())
        } else {
            Err(meta.error(
                "unknown `#[workflow]` argument; expected `name = \"..\"`, `version = N`, `migrate_from = previous_version` or `crate = path::to::workflow_runtime`",
            ))
        }
    });
    syn::parse::Parser::parse2(parser, attr)?;
    Ok(args)
}
