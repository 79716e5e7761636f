use raft_store::{ClusterVersion, MemberBuild};

use super::check_joiner;

fn build(node_id: u64, build: &str, oldest: u32, newest: u32) -> MemberBuild {
    MemberBuild {
        node_id,
        build: build.to_owned(),
        oldest: ClusterVersion(oldest),
        newest: ClusterVersion(newest),
    }
}

#[test]
fn a_joiner_must_run_the_active_version() {
    let members = [build(1, "0.3.0", 2, 3), build(2, "0.3.1", 2, 3)];
    // Runs it: welcome, whether the cluster is at its newest version or its oldest.
    assert_eq!(
        check_joiner(&build(3, "0.3.0", 2, 3), ClusterVersion(3), &members),
        Ok(())
    );
    assert_eq!(
        check_joiner(&build(3, "0.2.0", 1, 2), ClusterVersion(2), &members),
        Ok(())
    );
    // Too old: named, with the builds that would do.
    let why = check_joiner(&build(3, "0.2.0", 1, 2), ClusterVersion(3), &members).unwrap_err();
    assert!(why.contains("runs cluster version 3"), "{why}");
    assert!(why.contains("node 3 runs build 0.2.0"), "{why}");
    assert!(why.contains("(0.3.0, 0.3.1)"), "{why}");
    // No member has reported a build that runs it: the version is named instead.
    let why = check_joiner(&build(3, "0.2.0", 1, 2), ClusterVersion(3), &[]).unwrap_err();
    assert!(
        why.contains("install a build that runs cluster version 3 on it"),
        "{why}"
    );
    // Too new: it would skip a release.
    let why = check_joiner(&build(3, "0.5.0", 4, 5), ClusterVersion(3), &members).unwrap_err();
    assert!(why.contains("may skip no release"), "{why}");
}
