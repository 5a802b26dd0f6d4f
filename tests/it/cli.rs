//! The command line as a user meets it: help text and exit codes.

use crate::common::unitcoder;

#[test]
fn help_lists_subcommands_and_exits_zero() {
    let out = unitcoder(&["--help"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Usage: unitcoder"), "{text}");
}

#[test]
fn unknown_subcommand_is_a_usage_error_with_exit_2() {
    let out = unitcoder(&["no-such-command"]);
    assert_eq!(out.status.code(), Some(2));
}
