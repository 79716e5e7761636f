//! The node-to-node port under attack: garbage datagrams, a certificate from another CA, and a
//! genuine certificate used to claim another node's identity. Each is refused and logged, and
//! the port keeps serving real peers.

use std::fs;
use std::net::UdpSocket;
use std::path::Path;
use std::time::Duration;

use chaos_tests::{Cluster, NodeTuning};
use raft_store::{Member, Role};
use rand::RngCore;
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair, KeyUsagePurpose};
use replication::pki::NodeIdentity;
use replication::{ReplicationError, Transport};
use serde_json::json;

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    fs::write(&path, text).unwrap();
    path
}

/// A client identity trusting the cluster CA (so it accepts the node's certificate) but
/// presenting `cert_pem`.
fn identity(dir: &Path, cluster_ca: &Path, cert_pem: &str, key_pem: &str) -> NodeIdentity {
    let cert = write(dir, "client.crt", cert_pem);
    let key = write(dir, "client.key", key_pem);
    NodeIdentity::load(cluster_ca, &cert, &key).expect("load client identity")
}

fn foreign_ca_cert_for_node_1() -> (String, String) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign];
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["node-1".to_string()]).unwrap();
    params.extended_key_usages = vec![
        rcgen::ExtendedKeyUsagePurpose::ServerAuth,
        rcgen::ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let cert = params.signed_by(&key, &issuer).unwrap();
    let _ = ca_cert;
    (cert.pem(), key.serialize_pem())
}

/// Asks node 1 for a read index over QUIC, as node `claimed_id`.
fn read_index_as(
    identity: &NodeIdentity,
    claimed_id: u64,
    subnet: u8,
    node1_raft: &str,
) -> Result<u64, ReplicationError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let bind = format!("127.77.{subnet}.200:0").parse().unwrap();
        let transport = Transport::bind(claimed_id, bind, identity).expect("bind client endpoint");
        let member = Member {
            name: "n1".into(),
            role: Role::Data,
            raft_addr: node1_raft.into(),
            admin_addr: String::new(),
        };
        let result =
            tokio::time::timeout(Duration::from_secs(5), transport.read_index(1, &member)).await;
        transport.close();
        result.unwrap_or_else(|_| {
            Err(ReplicationError::PeerUnreachable {
                node_id: 1,
                reason: "timed out".into(),
            })
        })
    })
}

#[test]
fn peer_port_refuses_garbage_foreign_certificates_and_impostors() {
    let mut cluster = Cluster::start(5, 1, false, NodeTuning::default()).expect("start cluster");
    let subnet = cluster.subnet();
    let node1_raft = cluster.nodes[0].raft_addr.clone();
    let cluster_ca = cluster.root().join("ca.crt");
    let scratch = tempfile::tempdir().unwrap();

    // 1. Garbage datagrams, of every size up to a full packet.
    let socket = UdpSocket::bind(format!("127.77.{subnet}.201:0")).unwrap();
    let mut rng = rand::rng();
    for size in (1..1400).step_by(7) {
        let mut datagram = vec![0u8; size];
        rng.fill_bytes(&mut datagram);
        socket.send_to(&datagram, &node1_raft).unwrap();
    }

    // 2. A certificate from another CA, naming node 1.
    let (cert, key) = foreign_ca_cert_for_node_1();
    let foreign = identity(scratch.path(), &cluster_ca, &cert, &key);
    let result = read_index_as(&foreign, 1, subnet, &node1_raft);
    assert!(
        result.is_err(),
        "a certificate from another CA was accepted: {result:?}"
    );

    // 3. A genuine certificate (obtained through the join API) claiming to be node 1.
    let key = KeyPair::generate().unwrap();
    let csr = CertificateParams::new(Vec::<String>::new())
        .unwrap()
        .serialize_request(&key)
        .unwrap()
        .pem()
        .unwrap();
    let body = json!({
        "name": "intruder", "role": "data",
        "raft_addr": format!("127.77.{subnet}.202:7071"), "admin_addr": format!("127.77.{subnet}.202:7070"),
        "csr_pem": csr,
    });
    let joined = cluster
        .api
        .send_to(
            &cluster.nodes[0].admin_url(),
            "POST",
            "/v1/join",
            Some(body),
        )
        .unwrap();
    assert_eq!(joined.status, 200, "{:?}", joined.body);
    let genuine = identity(
        scratch.path(),
        &cluster_ca,
        joined.body["cert_pem"].as_str().unwrap(),
        &key.serialize_pem(),
    );
    let impostor = read_index_as(&genuine, 1, subnet, &node1_raft);
    assert!(
        matches!(&impostor, Err(ReplicationError::Remote { reason, .. }) if reason.contains("does not name node 1")),
        "an impostor was served: {impostor:?}"
    );
    // The same certificate under its own id passes the identity check, but a node that is not
    // a member may not forward reads or writes.
    let own_id = joined.body["node_id"].as_u64().unwrap();
    let outsider = read_index_as(&genuine, own_id, subnet, &node1_raft);
    assert!(
        matches!(&outsider, Err(ReplicationError::Remote { reason, .. }) if reason.contains("is not a member")),
        "a non-member was served: {outsider:?}"
    );

    // Refusals are logged.
    let log = cluster.nodes[0].log();
    assert!(
        log.contains("rejected peer connection"),
        "no log line for the foreign certificate:\n{log}"
    );
    assert!(
        log.contains("certificate does not name node 1"),
        "no log line for the impostor:\n{log}"
    );

    // And the port still serves real peers: a new node joins over it and replicates.
    cluster
        .add_node("witness")
        .expect("a node joins after the attacks");
    cluster
        .ctl_ok(&["domain", "add", "still-serving.test"])
        .unwrap();
    let leader = cluster.current_leader().expect("a leader");
    assert!(cluster.nodes.iter().any(|n| n.id == leader));
    cluster.check_no_unexpected_errors(&[]);
}
