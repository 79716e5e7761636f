use crate::history::{Attempt, WorkloadHistory};

fn acked_at(end: f64) -> Attempt {
    Attempt {
        id: format!("<{end}@test>"),
        token: String::new(),
        user: "alice@example.test".into(),
        start: end - 0.05,
        end,
        code: Some(250),
        stage: "done".into(),
        error: None,
    }
}

#[test]
fn the_longest_gap_spans_the_window_from_the_last_250_before_to_the_first_after() {
    let mut attempts: Vec<Attempt> = [1.0, 1.1, 1.2, 2.5, 2.6, 4.0].map(acked_at).into();
    // A refusal is no 250: it does not shorten the gap.
    attempts.push(Attempt {
        code: Some(451),
        ..acked_at(2.0)
    });
    let history = WorkloadHistory {
        attempts,
        ..WorkloadHistory::default()
    };
    // The window 1.5..2.55 lies between 1.2 and 2.6: the 1.3 s from 1.2 to 2.5 is its gap.
    let gap = history.longest_gap(1.5, 2.55).unwrap();
    assert!((gap - 1.3).abs() < 1e-9, "{gap}");
    // Reaching to 3.0 takes in the 1.4 s up to 4.0.
    let gap = history.longest_gap(1.5, 3.0).unwrap();
    assert!((gap - 1.4).abs() < 1e-9, "{gap}");
    // Nothing after the window: no gap to tell.
    assert_eq!(history.longest_gap(1.5, 5.0), None);
}
