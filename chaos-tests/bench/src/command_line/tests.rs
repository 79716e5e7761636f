//! Reading flags: values, switches, help, and the errors a user sees.

use anyhow::Result;

use crate::command_line::{Flag, read_flags};

const USAGE: &str = "usage: bench [--rounds N] [--only SYSTEM] [--fast]";

/// `args` read as a benchmark with the switch `--fast` and the flags `--rounds` and `--only`
/// would: the flags it took as `name=value`, or None for help.
fn read(args: &[&str]) -> Result<Option<Vec<String>>> {
    let mut taken = Vec::new();
    let read = read_flags(
        args.iter().map(|arg| (*arg).to_owned()),
        USAGE,
        &["--fast"],
        |flag: &Flag| {
            match flag.name.as_str() {
                "--fast" => taken.push("fast".to_owned()),
                "--rounds" => taken.push(format!("rounds={}", flag.count()?)),
                "--only" => {
                    let only = flag.only('m', 'p', &["postfix", "postfix-hold"])?;
                    taken.push(format!("only={only:?}"));
                }
                _ => return Ok(false),
            }
            Ok(true)
        },
    )?;
    Ok(read.then_some(taken))
}

#[track_caller]
fn check_error(args: &[&str], expected: &str) {
    let err = read(args).expect_err("the arguments are wrong");
    assert_eq!(format!("{err:#}"), expected);
}

#[test]
fn flags_take_values_and_switches_do_not() {
    let taken = read(&["--rounds", "2", "--fast", "--only", "postfix-hold"]).expect("valid");
    assert_eq!(taken.expect("no help"), ["rounds=2", "fast", "only=['p']"]);
    assert_eq!(
        read(&[]).expect("valid").expect("no help"),
        Vec::<String>::new()
    );
}

#[test]
fn help_ends_the_reading() {
    assert_eq!(read(&["--fast", "--help", "--bogus"]).expect("help"), None);
    assert_eq!(read(&["-h"]).expect("help"), None);
}

#[test]
fn wrong_flags_say_what_is_wrong() {
    check_error(&["--rounds"], &format!("--rounds needs a value\n{USAGE}"));
    check_error(
        &["--bogus", "1"],
        &format!("unknown flag \"--bogus\"\n{USAGE}"),
    );
    check_error(&["--rounds", "0"], "--rounds must be at least 1");
    check_error(
        &["--rounds", "x"],
        "--rounds takes a positive number, not \"x\": invalid digit found in string",
    );
    check_error(
        &["--only", "dovecot"],
        "--only takes mcluster or postfix, not \"dovecot\"",
    );
}
