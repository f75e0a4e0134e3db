//! The input of the macro's `every_construct` expansion snapshot, compiled and driven: the
//! pinned expansion is of code that builds and computes what the plain body would.

#[path = "../../workflow-macros/tests/expand/every_construct.rs"]
mod every_construct_src;

use every_construct_src::every_construct;
use integration_tests::{Input, drive};
use serde_json::json;

#[test]
fn the_snapshot_workflow_runs_to_the_expected_result() {
    let run = drive(
        every_construct,
        (" ada ".to_owned(), 4, vec!["x".to_owned(), "y ".to_owned()]),
        vec![Input::Signal(json!(9))],
    );
    // total = 0+1+2+3 = 6 > 3, so bonus = 106; the inner loop counts hits at j = 1 twice;
    // first_big = 2 + 10.
    assert_eq!(run.output, Ok("ADA!|6|XY|3|2|106|12|7|AGAIN|9".to_owned()));
    assert!(run.states.contains(&"Inner"));
    assert!(run.states.contains(&"AwaitingExtra"));
}

#[test]
fn an_arm_binding_is_held_across_a_suspension() {
    let run = drive(every_construct, ("b".to_owned(), 11, vec![]), vec![]);
    let err = run.output.expect_err("the check step fails");
    assert!(err.to_string().contains("asked to fail"), "{err}");
}
