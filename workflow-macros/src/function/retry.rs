//! The retry arguments of `#[function(..)]`, checked here so that a bad value is a compile
//! error at the argument rather than a panic in a `const`.

use proc_macro2::{Literal, Span, TokenStream};
use quote::{ToTokens, quote, quote_spanned};
use syn::meta::ParseNestedMeta;
use syn::spanned::Spanned;
use syn::{Expr, Lit, UnOp};

/// Mirrors `RetryPolicy::DEFAULT`, for the checks that compare two arguments when only one is
/// given; the expansion starts from the runtime's constant itself.
const DEFAULT_INITIAL_BACKOFF_MS: u64 = 1_000;

const EXPECTED: &str = "expected `max_attempts = N`, `initial_backoff = \"1s\"`, \
                        `max_backoff = \"1m\"`, `multiplier = 2.0`, `jitter = 0.2`, \
                        `timeout = \"30s\"`, `retry_panics = true` or \
                        `crate = path::to::workflow_runtime`";

/// The retry arguments given, each with the span of its value.
#[derive(Default)]
pub(super) struct Args {
    max_attempts: Option<(u32, Span)>,
    initial_backoff: Option<(u64, Span)>,
    max_backoff: Option<(u64, Span)>,
    multiplier: Option<(f64, Span)>,
    jitter: Option<(f64, Span)>,
    timeout: Option<(u64, Span)>,
    retry_panics: Option<(bool, Span)>,
}

/// The parsed arguments of `#[function(..)]`.
pub(super) struct Parsed {
    /// The retry arguments; `None` when none is given (the step keeps the default).
    pub(super) policy: Option<Args>,
    /// `crate = path`: where the runtime is reached.
    pub(super) krate: Option<syn::Path>,
}

/// Parses the attribute's arguments.
pub(super) fn parse(attr: TokenStream) -> syn::Result<Parsed> {
    let mut krate = None;
    if attr.is_empty() {
        return Ok(Parsed {
            policy: None,
            krate,
        });
    }
    let mut args = Args::default();
    let mut any_retry = false;
    let parser = syn::meta::parser(|meta| {
        let key = meta
            .path
            .get_ident()
            .map(ToString::to_string)
            .unwrap_or_default();
        if key == "crate" {
            if krate.is_some() {
                return Err(twice(&meta, &key));
            }
            krate = Some(crate::runtime::parse_crate_arg(&meta)?);
            return Ok(());
        }
        any_retry = true;
        args.parse_arg(&key, &meta)
    });
    syn::parse::Parser::parse2(parser, attr)?;
    args.check_backoffs()?;
    Ok(Parsed {
        policy: any_retry.then_some(args),
        krate,
    })
}

fn twice(meta: &ParseNestedMeta<'_>, key: &str) -> syn::Error {
    meta.error(format!("`{key}` is given twice"))
}

/// Fills `slot` with the value `parse` reads, refusing a second value for the same key.
fn once<T>(
    slot: &mut Option<(T, Span)>,
    key: &str,
    meta: &ParseNestedMeta<'_>,
    parse: impl FnOnce(&Expr) -> syn::Result<T>,
) -> syn::Result<()> {
    if slot.is_some() {
        return Err(twice(meta, key));
    }
    let e: Expr = meta.value()?.parse()?;
    *slot = Some((parse(&e)?, e.span()));
    Ok(())
}

impl Args {
    /// One retry argument, `key = value`.
    fn parse_arg(&mut self, key: &str, meta: &ParseNestedMeta<'_>) -> syn::Result<()> {
        match key {
            "max_attempts" => once(&mut self.max_attempts, key, meta, max_attempts),
            "initial_backoff" => once(&mut self.initial_backoff, key, meta, |e| {
                duration_ms(key, e)
            }),
            "max_backoff" => once(&mut self.max_backoff, key, meta, |e| duration_ms(key, e)),
            "timeout" => once(&mut self.timeout, key, meta, timeout_ms),
            "multiplier" => once(&mut self.multiplier, key, meta, multiplier),
            "jitter" => once(&mut self.jitter, key, meta, jitter),
            "retry_panics" => once(&mut self.retry_panics, key, meta, retry_panics),
            _ => Err(meta.error(format!("unknown `#[function]` argument; {EXPECTED}"))),
        }
    }

    /// `max_backoff` may not be below `initial_backoff` (given or default).
    fn check_backoffs(&self) -> syn::Result<()> {
        let Some((max, span)) = self.max_backoff else {
            return Ok(());
        };
        let (initial, given) = match self.initial_backoff {
            Some((ms, _)) => (ms, ""),
            None => (DEFAULT_INITIAL_BACKOFF_MS, ", the default"),
        };
        if max < initial {
            return Err(syn::Error::new(
                span,
                format!(
                    "`max_backoff` ({}) is shorter than `initial_backoff` ({}{given}); the wait \
                     starts at `initial_backoff` and grows up to `max_backoff`",
                    show_ms(max),
                    show_ms(initial)
                ),
            ));
        }
        Ok(())
    }
}

fn max_attempts(e: &Expr) -> syn::Result<u32> {
    let n = match number(e) {
        Some(Number::Int(n)) => u32::try_from(n).ok().filter(|n| *n >= 1),
        _ => None,
    };
    n.ok_or_else(|| {
        syn::Error::new_spanned(
            e,
            "`max_attempts` is the number of attempts in total, a whole number of at \
             least 1 (1: never retry), like `max_attempts = 5`",
        )
    })
}

/// A duration argument (`initial_backoff`, `max_backoff`, `timeout`) in milliseconds.
fn duration_ms(key: &str, e: &Expr) -> syn::Result<u64> {
    match e {
        Expr::Lit(syn::ExprLit {
            lit: Lit::Str(s), ..
        }) => parse_duration(&s.value())
            .map_err(|why| syn::Error::new(s.span(), format!("`{key}`: {why}; {DURATION_HINT}"))),
        other => Err(syn::Error::new_spanned(
            other,
            format!("`{key}` is a duration in a string, {DURATION_HINT}"),
        )),
    }
}

fn timeout_ms(e: &Expr) -> syn::Result<u64> {
    let ms = duration_ms("timeout", e)?;
    if ms == 0 {
        return Err(syn::Error::new_spanned(
            e,
            "`timeout` must be at least one millisecond; leave it out to let attempts \
             run as long as they take",
        ));
    }
    Ok(ms)
}

fn multiplier(e: &Expr) -> syn::Result<f64> {
    number(e)
        .map(Number::as_f64)
        .filter(|m| m.is_finite() && *m >= 1.0)
        .ok_or_else(|| {
            syn::Error::new_spanned(
                e,
                "`multiplier` is the factor by which the wait grows after each \
                 failed attempt, a number of at least 1.0, like `multiplier = 2.0`",
            )
        })
}

fn jitter(e: &Expr) -> syn::Result<f64> {
    number(e)
        .map(Number::as_f64)
        .filter(|j| (0.0..=1.0).contains(j))
        .ok_or_else(|| {
            syn::Error::new_spanned(
                e,
                "`jitter` is the fraction by which a wait may be shortened at random, \
                 a number from 0.0 to 1.0, like `jitter = 0.2`",
            )
        })
}

fn retry_panics(e: &Expr) -> syn::Result<bool> {
    match e {
        Expr::Lit(syn::ExprLit {
            lit: Lit::Bool(b), ..
        }) => Ok(b.value),
        other => Err(syn::Error::new_spanned(
            other,
            "`retry_panics` is `true` or `false`",
        )),
    }
}

impl Args {
    /// The expression of the step's `RetryPolicy`, for the expansion.
    pub(super) fn render(&self) -> TokenStream {
        let krate = crate::runtime::rt();
        let ms = |v: u64, span: Span| {
            let v = Literal::u64_suffixed(v);
            quote_spanned!(span=> ::core::time::Duration::from_millis(#v))
        };
        let mut policy = quote!(#krate::RetryPolicy::DEFAULT);
        if let Some((n, span)) = self.max_attempts {
            let n = Literal::u32_suffixed(n);
            policy.extend(quote_spanned!(span=> .max_attempts(#n)));
        }
        // `initial_backoff` before `max_backoff`: the first raises the cap if needed, the second
        // must not be below the first.
        if let Some((v, span)) = self.initial_backoff {
            let d = ms(v, span);
            policy.extend(quote_spanned!(span=> .initial_backoff(#d)));
        }
        if let Some((v, span)) = self.max_backoff {
            let d = ms(v, span);
            policy.extend(quote_spanned!(span=> .max_backoff(#d)));
        }
        if let Some((m, span)) = self.multiplier {
            let m = Literal::f64_suffixed(m);
            policy.extend(quote_spanned!(span=> .multiplier(#m)));
        }
        if let Some((j, span)) = self.jitter {
            let j = Literal::f64_suffixed(j);
            policy.extend(quote_spanned!(span=> .jitter(#j)));
        }
        if let Some((v, span)) = self.timeout {
            let d = ms(v, span);
            policy.extend(quote_spanned!(span=> .timeout(#d)));
        }
        if let Some((b, span)) = self.retry_panics {
            let b = syn::LitBool::new(b, span).into_token_stream();
            policy.extend(quote_spanned!(span=> .retry_panics(#b)));
        }
        policy
    }
}

const DURATION_HINT: &str = "write a whole number with a unit (`ms`, `s`, `m`, `h`, `d`), like \"500ms\", \"30s\" or \"1m30s\"";

/// `"1m30s"` → 90 000. Units: ms, s, m, h, d.
fn parse_duration(text: &str) -> Result<u64, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("the duration is empty".to_owned());
    }
    let mut total: u64 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(format!("`{text}` is not a duration"));
        }
        let n: u64 = rest[..digits]
            .parse()
            .map_err(|_| format!("`{text}` is too long"))?;
        rest = &rest[digits..];
        let unit_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let scale: u64 = match unit {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "" if rest.is_empty() => {
                return Err(format!("`{text}` has a number without a unit"));
            }
            "" => return Err(format!("`{text}` is not a duration")),
            other => return Err(format!("`{other}` is not a unit of time")),
        };
        total = n
            .checked_mul(scale)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(|| format!("`{text}` is too long"))?;
    }
    Ok(total)
}

fn show_ms(ms: u64) -> String {
    if ms.is_multiple_of(1_000) {
        format!("{}s", ms / 1_000)
    } else {
        format!("{ms}ms")
    }
}

#[derive(Clone, Copy)]
enum Number {
    Int(i128),
    Float(f64),
}

impl Number {
    fn as_f64(self) -> f64 {
        match self {
            #[allow(clippy::cast_precision_loss)]
            Number::Int(n) => n as f64,
            Number::Float(f) => f,
        }
    }
}

/// A numeric literal, possibly negated.
fn number(e: &Expr) -> Option<Number> {
    match e {
        Expr::Lit(syn::ExprLit {
            lit: Lit::Int(i), ..
        }) => i.base10_parse::<i128>().ok().map(Number::Int),
        Expr::Lit(syn::ExprLit {
            lit: Lit::Float(f), ..
        }) => f.base10_parse::<f64>().ok().map(Number::Float),
        Expr::Unary(u) if matches!(u.op, UnOp::Neg(_)) => match number(&u.expr)? {
            Number::Int(n) => Some(Number::Int(-n)),
            Number::Float(f) => Some(Number::Float(-f)),
        },
        Expr::Paren(p) => number(&p.expr),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units_and_combinations() {
        assert_eq!(parse_duration("500ms"), Ok(500));
        assert_eq!(parse_duration("30s"), Ok(30_000));
        assert_eq!(parse_duration("1m30s"), Ok(90_000));
        assert_eq!(parse_duration("2h"), Ok(7_200_000));
        assert_eq!(parse_duration("1d"), Ok(86_400_000));
        assert_eq!(parse_duration("0s"), Ok(0));
        assert!(parse_duration("").is_err());
        assert!(parse_duration("10").unwrap_err().contains("without a unit"));
        assert!(parse_duration("10 sec").is_err());
        assert!(parse_duration("3w").unwrap_err().contains("not a unit"));
        assert!(parse_duration("99999999999999999999d").is_err());
    }
}
