//! Compile-fail tests: every diagnostic of `#[workflow]` and `#[function]` points at the
//! user's code and says what to do. The expected messages live in `tests/ui/*.stderr`.

#[test]
fn diagnostics() {
    let t = trybuild::TestCases::new();
    t.compile_fail("ui/*.rs");
}
