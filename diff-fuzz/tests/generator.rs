//! The generator's own rules, over many batches (the differential test builds one).

#[allow(dead_code)]
#[path = "../src/generator.rs"]
mod generator;

/// A comparison of a `u64` below a literal 0 (`x < 0`, never true) draws rustc's
/// `unused_comparisons` warning in the generated crate; the generator writes `1` there instead.
#[test]
fn no_condition_compares_a_u64_below_zero() {
    for seed in 1..=20 {
        for index in 0..200 {
            let body = generator::program(seed, index).body;
            assert!(
                !body.contains(" < 0 ") && !body.contains(" < 0)"),
                "program {index} of batch {seed}:\n{body}"
            );
        }
    }
}
