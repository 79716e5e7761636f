//! IMAP against real `mclusterd` processes: Python's imaplib through every command on two nodes.

use chaos_tests::mail::{DOMAIN, PASSWORD, add_users, python_script};
use chaos_tests::{Cluster, NodeTuning};

// ---- imaplib through every command ----

/// The steps of `clients/imap_session.py`, in order; each one checks what it did.
const SESSION_STEPS: [&str; 16] = [
    "capability_starttls_login",
    "implicit_tls_authenticate_plain",
    "noop_id_namespace",
    "mailboxes",
    "deliver",
    "status_examine_read_only",
    "fetch_all_items",
    "append",
    "store",
    "search",
    "copy_move_uid",
    "expunge_close_unselect",
    "idle_cross_node",
    "condstore",
    "quota",
    "logout",
];

#[test]
fn imaplib_session_runs_every_command_across_two_nodes() {
    let cluster = Cluster::start(41, 2, true, NodeTuning::default()).expect("start cluster");
    add_users(&cluster, &["alice"]).expect("add users");
    let alice = format!("alice@{DOMAIN}");
    let (n1, n2) = (&cluster.nodes[0], &cluster.nodes[1]);
    let ports = n1.ports;
    let report = python_script(
        "imap_session.py",
        &[
            "--n1",
            n1.ip(),
            "--n2",
            n2.ip(),
            "--user",
            &alice,
            "--password",
            PASSWORD,
            "--smtp-port",
            &ports.smtp.to_string(),
            "--imap-port",
            &ports.imap.to_string(),
            "--imaps-port",
            &ports.imaps.to_string(),
        ],
    )
    .expect("run imap_session.py");
    assert_eq!(
        report["ok"],
        true,
        "step {} failed: {}\n{}",
        report["step"],
        report["error"],
        report["traceback"].as_str().unwrap_or_default()
    );
    let steps: Vec<&str> = report["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| s.as_str().unwrap_or_default())
        .collect();
    assert_eq!(steps, SESSION_STEPS, "every step ran, in order");
    // Each step asserts on results; a much lower count means checks were skipped.
    let checks = report["checks"].as_u64().unwrap_or(0);
    assert!(checks >= 600, "only {checks} checks ran: {report}");
    cluster.check_no_unexpected_errors(&[]);
}
