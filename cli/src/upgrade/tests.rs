use crate::api::{FeatureView, MemberUpgradeView, Role, UpgradeStatus};
use crate::upgrade::render;
use mcluster_types::ClusterVersion;

fn member(node_id: u64, name: &str, newest: Option<u32>) -> MemberUpgradeView {
    MemberUpgradeView {
        node_id,
        name: name.to_owned(),
        role: Role::Data,
        build: newest.map(|_| "0.1.0".to_owned()),
        oldest: newest.map(|_| ClusterVersion(1)),
        newest: newest.map(ClusterVersion),
    }
}

#[test]
fn a_held_back_upgrade_says_who_and_what_waits() {
    let status = UpgradeStatus {
        active: ClusterVersion(1),
        runnable: None,
        auto_finalize: false,
        members: vec![member(1, "n1", Some(2)), member(2, "n2", None)],
        waiting: vec![FeatureView {
            name: "token-rotation".to_owned(),
            since: ClusterVersion(2),
            description: "rotating the admin or join token".to_owned(),
        }],
    };
    let text = render(&status);
    assert!(text.starts_with("active cluster version: 1\n"), "{text}");
    assert!(text.contains("waiting for members to report"), "{text}");
    assert!(text.contains("not reported"), "{text}");
    assert!(text.contains("1 to 2"), "{text}");
    assert!(
        text.contains("token-rotation (version 2): rotating the admin or join token"),
        "{text}"
    );
}

#[test]
fn a_finalizable_upgrade_says_how() {
    let status = UpgradeStatus {
        active: ClusterVersion(1),
        runnable: Some(ClusterVersion(2)),
        auto_finalize: false,
        members: vec![member(1, "n1", Some(2))],
        waiting: Vec::new(),
    };
    assert!(render(&status).contains("mclusterctl upgrade finalize"));
}
