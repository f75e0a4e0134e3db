//! Writes the generated workflows into `OUT_DIR/programs.rs`.
//!
//! `DIFF_FUZZ_SEED` (default 1) picks the batch, `DIFF_FUZZ_PROGRAMS` (default 200) its size;
//! changing either regenerates and rebuilds the crate.

#[path = "src/generator.rs"]
mod generator;

fn env_u64(name: &str, default: u64) -> u64 {
    println!("cargo:rerun-if-env-changed={name}");
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a number, got `{v}`")),
        Err(_) => default,
    }
}

fn main() {
    println!("cargo:rerun-if-changed=src/generator.rs");
    let seed = env_u64("DIFF_FUZZ_SEED", 1);
    let programs = env_u64("DIFF_FUZZ_PROGRAMS", 200);
    let source = generator::batch(seed, programs as usize);
    let out = std::path::Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"))
        .join("programs.rs");
    std::fs::write(&out, source).expect("the generated programs can be written");
}
