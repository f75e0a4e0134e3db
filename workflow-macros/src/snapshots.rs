//! Expansion snapshots: the code `#[workflow]` and `#[function]` emit for a few workflows,
//! pinned in `tests/expand/*.expanded.rs` so that a reviewer reads the generated `State` enum
//! and `advance` and any change to them shows in a diff.
//!
//! Each snapshot names its input: a file and, optionally, the items to expand. Only the
//! attributed items are expanded and printed, with `prettyplease`. After an intended change,
//! `UPDATE_EXPANSIONS=1 cargo test -p workflow-macros` rewrites the snapshots; review the diff.

use std::path::{Path, PathBuf};

use proc_macro2::TokenStream;
use quote::ToTokens;

/// A macro's expansion function.
type Expand = fn(TokenStream, TokenStream) -> TokenStream;

/// (snapshot name, input file relative to this crate, the items to expand; empty: all).
const SNAPSHOTS: &[(&str, &str, &[&str])] = &[
    (
        "refund_review",
        "../examples/src/refund/workflow.rs",
        &[
            "load_ticket",
            "draft_refund_recommendation",
            "issue_refund_once",
            "refund_review",
        ],
    ),
    (
        "kitchen_sink",
        "../tests/src/workflows.rs",
        &["kitchen_sink"],
    ),
    ("every_construct", "tests/expand/every_construct.rs", &[]),
    ("reexport", "tests/expand/reexport.rs", &[]),
    (
        "order_review",
        "../examples/src/order_review.rs",
        &["line_review", "order_review"],
    ),
];

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The macro attribute on `f`, removed from it, with the macro's expansion function.
fn take_macro(f: &mut syn::ItemFn) -> Option<(TokenStream, Expand)> {
    let pos = f
        .attrs
        .iter()
        .position(|a| a.path().is_ident("workflow") || a.path().is_ident("function"))?;
    let attr = f.attrs.remove(pos);
    let args = match &attr.meta {
        syn::Meta::List(l) => l.tokens.clone(),
        _ => TokenStream::new(),
    };
    let expand: Expand = if attr.path().is_ident("workflow") {
        crate::workflow::expand
    } else {
        crate::function::expand
    };
    Some((args, expand))
}

/// The pretty-printed expansion of the attributed items of `input` named in `only`.
fn expand_file(input: &Path, only: &[&str]) -> String {
    let source = std::fs::read_to_string(input)
        .unwrap_or_else(|e| panic!("reading {}: {e}", input.display()));
    let file: syn::File =
        syn::parse_file(&source).unwrap_or_else(|e| panic!("parsing {}: {e}", input.display()));
    let mut items = Vec::new();
    for item in file.items {
        let syn::Item::Fn(mut f) = item else { continue };
        if !only.is_empty() && !only.iter().any(|n| f.sig.ident == n) {
            continue;
        }
        let Some((args, expand)) = take_macro(&mut f) else {
            continue;
        };
        let out = expand(args, f.into_token_stream());
        assert!(
            !out.to_string().contains("compile_error"),
            "{} does not expand cleanly:\n{out}",
            input.display()
        );
        let expanded: syn::File = syn::parse2(out).expect("the expansion parses as items");
        items.extend(expanded.items);
    }
    assert!(
        !items.is_empty(),
        "{} has no item to expand",
        input.display()
    );
    let header = format!(
        "// The expansion of {}, pinned by `workflow-macros/src/snapshots.rs`.\n\
         // Regenerate with `UPDATE_EXPANSIONS=1 cargo test -p workflow-macros`.\n\n",
        input.strip_prefix(crate_dir()).unwrap_or(input).display()
    );
    let file = syn::File {
        shebang: None,
        frontmatter: None,
        attrs: Vec::new(),
        items,
    };
    header + &prettyplease::unparse(&file)
}

#[test]
fn expansions_match_their_snapshots() {
    let update = std::env::var_os("UPDATE_EXPANSIONS").is_some_and(|v| v == "1");
    let mut stale = Vec::new();
    for (name, input, only) in SNAPSHOTS {
        let path = crate_dir()
            .join("tests/expand")
            .join(format!("{name}.expanded.rs"));
        let actual = expand_file(&crate_dir().join(input), only);
        let expected = std::fs::read_to_string(&path).unwrap_or_default();
        if actual == expected {
            continue;
        }
        if update {
            std::fs::write(&path, &actual).expect("the snapshot can be written");
        } else {
            let line = expected
                .lines()
                .zip(actual.lines())
                .position(|(a, b)| a != b)
                .unwrap_or_else(|| expected.lines().count().min(actual.lines().count()))
                + 1;
            stale.push(format!("{name} (first difference on line {line})"));
        }
    }
    assert!(
        stale.is_empty(),
        "the expansion changed: {}; if intended, rerun with UPDATE_EXPANSIONS=1 and review the \
         diff of workflow-macros/tests/expand",
        stale.join(", ")
    );
}

/// `crate = path` changes every runtime path the expansion writes, and nothing the runtime
/// stores: the layout hash is the same as with the default path.
#[test]
fn the_crate_argument_renders_every_runtime_path() {
    let body: TokenStream = syn::parse_quote! {
        async fn w(ctx: &mut WorkflowContext, n: u32) -> Result<u32, WorkflowError> {
            let (a, b) = ctx.step(pair, n).await?;
            let c = ctx.step(add, (a, b)).await?;
            Ok(c)
        }
    };
    let default = crate::workflow::expand(TokenStream::new(), body.clone()).to_string();
    let args: TokenStream = syn::parse_quote!(crate = my_app::durable);
    let reexported = crate::workflow::expand(args, body).to_string();
    assert!(default.contains(":: workflow_runtime :: __private :: v1 ::"));
    // Every support path names the version (see `runtime::SUPPORT_VERSION`).
    for out in [&default, &reexported] {
        assert_eq!(
            out.matches("__private ::").count(),
            out.matches("__private :: v1 ::").count(),
            "{out}"
        );
    }
    assert!(!reexported.contains("workflow_runtime"), "{reexported}");
    assert!(!reexported.contains("__wf_rt"), "{reexported}");
    assert!(reexported.contains("my_app :: durable :: __private :: v1 :: Transition"));
    assert!(reexported.contains("\"my_app::durable::__private::v1::serde\""));
    let layout = |s: &str| {
        let at = s.find("LAYOUT_HASH : u64 =").expect("a layout hash");
        s[at..at + 120].split(',').next().map(str::to_owned)
    };
    let canonical = layout(&default).expect("a layout hash");
    assert_eq!(
        layout(&reexported).map(|s| s.replace("my_app :: durable", ":: workflow_runtime")),
        Some(canonical)
    );

    let step: TokenStream = syn::parse_quote! {
        async fn add(pair: (u32, u32)) -> Result<u32, StepError> { Ok(pair.0 + pair.1) }
    };
    let args: TokenStream = syn::parse_quote!(crate = my_app::durable, max_attempts = 2);
    let out = crate::function::expand(args, step).to_string();
    assert!(
        !out.contains("workflow_runtime") && !out.contains("compile_error"),
        "{out}"
    );
    assert!(
        out.contains("my_app :: durable :: __private :: v1 :: RetryPolicy"),
        "{out}"
    );
}
