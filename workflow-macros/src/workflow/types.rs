//! Analysis: the stored type of every local a state holds.

use std::collections::{BTreeMap, BTreeSet};

use super::ir::Ty;
use super::live;
use super::lower::{BlockKind, Lowerer};
use super::names;
use super::vars::{self, DeclKind, TyInfo};

/// The type of every held local in every block, keyed by block and name, or an error naming
/// the local. A name's type is that of the binding it means where the block begins, so a
/// binding that shadows another in the same source block (`let name = name.trim().to_string();`)
/// is held with its own type.
pub(super) fn field_types(
    lw: &Lowerer,
    fields: &live::Fields,
    reachable: &[bool],
    errors: &mut Vec<syn::Error>,
) -> BTreeMap<(usize, String), Ty> {
    let mut types = BTreeMap::new();
    let mut reported = BTreeSet::new();
    for (i, b) in lw.blocks.iter().enumerate() {
        if !reachable[i] {
            continue;
        }
        let state = if b.kind == BlockKind::Join {
            "a loop or branch join".to_owned()
        } else {
            format!("`{}`", b.name)
        };
        for name in &fields[i] {
            if reported.contains(name) {
                continue;
            }
            let (Some(decls), Some(current)) = (lw.decls.get(name), b.scope.current(name)) else {
                continue;
            };
            match held_type(name, &decls[current], decls, &state) {
                Ok(Some(t)) => {
                    types.insert((i, name.clone()), t);
                }
                Ok(None) => {}
                Err(e) => {
                    reported.insert(name.clone());
                    errors.push(e);
                }
            }
        }
    }
    types
}

/// The type `decl`, the binding of `name` a block holds, is stored with; `Ok(None)` where the
/// lowering has already reported the problem.
pub(super) fn held_type(
    name: &str,
    decl: &vars::Decl,
    decls: &[vars::Decl],
    state: &str,
) -> Result<Option<Ty>, syn::Error> {
    // A binding in a nested block that shadows an outer one of the same name while the outer
    // one may still be needed (after the block, or at a `continue`) would be restored from the
    // wrong value, since fields are stored by name.
    if let Some(inner) = decls.iter().find(|d| d.shadows) {
        let outer = decls
            .iter()
            .find(|d| d.level != inner.level)
            .map_or(String::new(), |d| match names::line_of(d.ident.span()) {
                Some(line) => format!(" (the outer `{name}` is declared on line {line})"),
                None => String::new(),
            });
        return Err(syn::Error::new(
            inner.ident.span(),
            format!(
                "`{name}` is held across a suspension point (state {state}), so a nested block \
                 cannot declare it again: its value is restored by name; rename this binding{outer}"
            ),
        ));
    }
    let span = decl.ident.span();
    let msg = match (&decl.ty, decl.kind) {
        (_, DeclKind::Uninit) => format!(
            "`{name}` is held across a suspension point (state {state}) but declared without a \
             value; the checkpoint stores it, so give it one where it is declared: `let mut \
             {name}: Type = ..;` (an `Option` works when there is no value yet)"
        ),
        (TyInfo::Known(t), _) => return Ok(Some(t.clone())),
        (TyInfo::Unknown | TyInfo::SameAs(_), DeclKind::Pattern) => format!(
            "`{name}` is bound by a pattern and held across a suspension point (state {state}); \
             rebind it with a type before suspending: `let {name}2: Type = {name};`"
        ),
        // The lowering reported these (the value of a `let v = loop`).
        (_, DeclKind::Internal) => return Ok(None),
        (TyInfo::Reference, _) => format!(
            "`{name}` holds a reference across a suspension point (state {state}); a checkpoint \
             cannot store references; hold an owned value instead (e.g. `.to_string()`, \
             `.clone()`, `.to_vec()`)"
        ),
        _ => format!(
            "cannot determine the type of `{name}`, which is held across a suspension point \
             (state {state}); write `let {name}: Type = ..`"
        ),
    };
    Err(syn::Error::new(span, msg))
}
