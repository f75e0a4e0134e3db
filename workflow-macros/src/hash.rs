//! Fingerprints over a canonical walk of tokens.
//!
//! `TokenStream::to_string()` is not guaranteed stable across compiler versions (spacing can
//! change), so the walk hashes each token's text and each group's delimiter explicitly.

use proc_macro2::{Delimiter, TokenStream, TokenTree};

const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

fn fnv(mut h: u64, bytes: &[u8]) -> u64 {
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// An incremental fingerprint.
pub(crate) struct Fingerprint(u64);

impl Fingerprint {
    pub(crate) fn new(domain: &str) -> Self {
        Self(fnv(OFFSET, domain.as_bytes()))
    }

    pub(crate) fn str(&mut self, s: &str) -> &mut Self {
        // The length prefix keeps "ab","c" apart from "a","bc".
        self.0 = fnv(self.0, &(s.len() as u64).to_le_bytes());
        self.0 = fnv(self.0, s.as_bytes());
        self
    }

    pub(crate) fn tokens(&mut self, tokens: &TokenStream) -> &mut Self {
        for tt in tokens.clone() {
            match tt {
                TokenTree::Group(g) => {
                    let (open, close) = match g.delimiter() {
                        Delimiter::Parenthesis => ("(", ")"),
                        Delimiter::Brace => ("{", "}"),
                        Delimiter::Bracket => ("[", "]"),
                        Delimiter::None => ("\u{2}", "\u{3}"),
                    };
                    self.str(open);
                    self.tokens(&g.stream());
                    self.str(close);
                }
                TokenTree::Ident(i) => {
                    self.str(&i.to_string());
                }
                TokenTree::Punct(p) => {
                    self.str(&p.as_char().to_string());
                }
                TokenTree::Literal(l) => {
                    self.str(&l.to_string());
                }
            }
        }
        self
    }

    pub(crate) fn finish(&self) -> u64 {
        self.0
    }
}
