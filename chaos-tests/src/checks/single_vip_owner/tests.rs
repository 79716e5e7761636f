use crate::checks::single_vip_owner::check_with;
use crate::history::{ArpHistory, ArpRound};

fn rounds(answers: &[&[&str]]) -> ArpHistory {
    ArpHistory {
        rounds: answers
            .iter()
            .enumerate()
            .map(|(n, macs)| ArpRound {
                round: n as u64,
                t: n as f64 * 0.02,
                macs: macs.iter().map(|m| (*m).to_owned()).collect(),
            })
            .collect(),
        finished: true,
        ..ArpHistory::default()
    }
}

fn name(mac: &str) -> String {
    match mac {
        "m1" => "n1".into(),
        "m2" => "n2".into(),
        other => format!("unknown {other}"),
    }
}

#[test]
fn a_clean_move_passes_and_gives_the_timeline() {
    let arp = rounds(&[&["m1"], &["m1"], &[], &["m2"], &["m2"]]);
    let result = check_with(&arp, name);
    assert!(result.problems.is_empty(), "{:?}", result.problems);
    assert_eq!(result.timeline.len(), 3);
    let (t, new) = result.new_owner_after(0.01, "n1").unwrap();
    assert_eq!(new, "n2");
    assert!((t - 0.06).abs() < 1e-9);
    assert!((result.longest_gap() - 0.0).abs() < 1e-9);
}

#[test]
fn two_owners_in_one_round_fail() {
    let arp = rounds(&[&["m1"], &["m1", "m2"], &["m2"]]);
    let result = check_with(&arp, name);
    assert_eq!(result.double.len(), 1);
    assert!(
        result.problems[0].contains("two owners"),
        "{:?}",
        result.problems
    );
}

#[test]
fn the_same_owner_answering_twice_is_one_owner() {
    let arp = rounds(&[&["m1", "m1"]]);
    assert!(check_with(&arp, name).double.is_empty());
}

#[test]
fn unknown_answers_missing_rounds_and_late_replies_fail() {
    let mut arp = rounds(&[&["m9"]]);
    arp.rounds.push(ArpRound {
        round: 5,
        t: 0.1,
        macs: vec![],
    });
    arp.unattributed.push((1.0, "m2".into()));
    let problems = check_with(&arp, name).problems;
    assert_eq!(problems.len(), 3, "{problems:?}");
}
