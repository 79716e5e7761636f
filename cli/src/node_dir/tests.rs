//! Tests for the node directories `init` and `join` write.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use rcgen::{CertificateSigningRequestParams, Issuer, KeyPair};

use crate::api::Role;
use crate::node_config::{BootstrapFile, MailSection, NodeFile, VipSection};
use crate::node_dir::{
    InitPlan, JoinPlan, NodePaths, init_files, join_files, validate_addr, validate_mail,
    validate_mail_hostname, validate_name,
};
use crate::pki::{self, CertifiedKey};
use crate::secrets::sha256_hex;
use crate::test_server::{Reply, TestServer};
use crate::vip::VipOptions;

fn init_plan(dir: &Path) -> InitPlan {
    InitPlan {
        dir: dir.to_path_buf(),
        name: "n1".to_owned(),
        raft_addr: "127.0.0.11:7071".to_owned(),
        admin_addr: "127.0.0.11:7070".to_owned(),
        cluster_name: "mcluster".to_owned(),
        data_dir: "data".to_owned(),
        mail: MailSection::default(),
        vip: VipOptions::default(),
    }
}

#[track_caller]
fn check_mode(path: &Path, mode: u32) {
    let metadata = fs::metadata(path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
    assert_eq!(
        metadata.permissions().mode() & 0o777,
        mode,
        "{}",
        path.display()
    );
}

#[test]
fn init_writes_ca_first_node_and_bootstrap() {
    let dir = tempfile::tempdir().expect("create temp dir");
    let outcome = init_files(&init_plan(dir.path())).expect("init");
    let node = &outcome.node;
    assert_eq!(node.dir, dir.path().join("n1"));
    check_mode(&outcome.ca_cert, 0o644);
    check_mode(&outcome.ca_key, 0o600);
    check_mode(&node.key, 0o600);
    check_mode(&node.cert, 0o644);
    check_mode(&node.ca_cert, 0o644);
    check_mode(&node.bootstrap, 0o600);
    check_mode(&node.config, 0o600);
    assert_eq!(
        fs::read(&outcome.ca_cert).expect("read ca.crt"),
        fs::read(&node.ca_cert).expect("read node's ca.crt")
    );

    let node_file = node.load_config().expect("load mclusterd.toml");
    assert_eq!(node_file, outcome.node_file);
    assert_eq!((node_file.node_id, node_file.role), (1, Role::Data));
    assert_eq!(node_file.data_dir, "data");
    assert_eq!(
        node_file.bootstrap.expect("bootstrap section").file,
        "bootstrap.toml"
    );
    assert!(node_file.join.is_none());
    assert!(
        node_file.mail.is_none(),
        "no mail options: the node's defaults"
    );

    let client_config = &outcome.client_config;
    // HTTPS, checked against the CA init made (a new cluster takes HTTPS only).
    assert_eq!(client_config.admin_urls, ["https://127.0.0.11:7070"]);
    assert_eq!(
        client_config.ca_cert_pem.as_deref(),
        Some(
            fs::read_to_string(&outcome.ca_cert)
                .expect("read ca.crt")
                .as_str()
        )
    );
    let admin_token = client_config.admin_token().expect("admin token");
    let join_token = client_config.join_token().expect("join token");
    assert_ne!(admin_token, join_token);

    let bootstrap_text = fs::read_to_string(&node.bootstrap).expect("read bootstrap.toml");
    let bootstrap_file = BootstrapFile::parse(&bootstrap_text).expect("parse bootstrap.toml");
    assert_eq!(bootstrap_file.cluster_name, "mcluster");
    assert_eq!(bootstrap_file.admin_token_sha256, sha256_hex(admin_token));
    assert_eq!(bootstrap_file.join_token_sha256, sha256_hex(join_token));
    assert_eq!(
        bootstrap_file.ca_key_pem,
        fs::read_to_string(&outcome.ca_key).expect("read ca.key")
    );
    // The node key matches the node certificate, which the CA signed.
    let ca = CertifiedKey {
        cert_pem: bootstrap_file.ca_cert_pem,
        key_pem: bootstrap_file.ca_key_pem,
    };
    let node_key =
        KeyPair::from_pem(&fs::read_to_string(&node.key).expect("read key")).expect("key");
    let node_cert = fs::read_to_string(&node.cert).expect("read node.crt");
    Issuer::from_ca_cert_pem(&node_cert, node_key).expect("node.crt parses");
    Issuer::from_ca_cert_pem(
        &ca.cert_pem,
        KeyPair::from_pem(&ca.key_pem).expect("ca key"),
    )
    .expect("ca.crt parses");
}

#[test]
fn init_refuses_an_existing_node_or_cluster() {
    let dir = tempfile::tempdir().expect("create temp dir");
    init_files(&init_plan(dir.path())).expect("first init");
    let again = init_files(&init_plan(dir.path())).expect_err("node exists");
    assert!(
        format!("{again:#}").contains("mclusterd.toml already exists"),
        "{again:#}"
    );
    let other_name = InitPlan {
        name: "other".to_owned(),
        ..init_plan(dir.path())
    };
    let err = init_files(&other_name).expect_err("CA exists");
    assert!(
        format!("{err:#}").contains("ca.crt already exists"),
        "{err:#}"
    );
}

#[test]
fn init_writes_the_mail_options_given() {
    let dir = tempfile::tempdir().expect("create temp dir");
    let mail = MailSection {
        hostname: Some("mail1.example.test".to_owned()),
        smtp: Some("127.0.0.11:2525".to_owned()),
        pop3: Some(String::new()),
        imap: Some("127.0.0.11:2143".to_owned()),
        imaps: Some(String::new()),
        ..MailSection::default()
    };
    let plan = InitPlan {
        mail: mail.clone(),
        ..init_plan(dir.path())
    };
    let outcome = init_files(&plan).expect("init");
    let node_file = outcome.node.load_config().expect("load mclusterd.toml");
    assert_eq!(node_file.mail, Some(mail));
    let text = fs::read_to_string(&outcome.node.config).expect("read mclusterd.toml");
    assert!(!text.contains("submission"), "{text}");
    assert!(
        text.contains("imap = \"127.0.0.11:2143\"\nimaps = \"\"\n"),
        "{text}"
    );
}

/// The demo's kind of node: mail on its own address, a loopback VIP.
fn own_mail(ip: &str) -> MailSection {
    let addr = |port: u16| Some(format!("{ip}:{port}"));
    MailSection {
        hostname: None,
        smtp: addr(2525),
        submission: addr(2587),
        smtps: addr(2465),
        pop3: addr(2110),
        pop3s: addr(2995),
        imap: addr(2143),
        imaps: addr(2993),
    }
}

fn loopback_vip() -> VipOptions {
    VipOptions {
        addresses: vec!["127.0.0.10/32".parse().expect("valid")],
        interface: None,
    }
}

#[test]
fn init_writes_the_vip_given() {
    let dir = tempfile::tempdir().expect("create temp dir");
    let plan = InitPlan {
        mail: own_mail("127.0.0.11"),
        vip: loopback_vip(),
        ..init_plan(dir.path())
    };
    let outcome = init_files(&plan).expect("init");
    let node_file = outcome.node.load_config().expect("load mclusterd.toml");
    assert_eq!(
        node_file.vip,
        Some(VipSection {
            addresses: vec!["127.0.0.10/32".to_owned()],
            interface: "lo".to_owned(),
        })
    );
    assert_eq!(node_file, outcome.node_file);
}

/// Written before IMAP, the demo's kind of node would leave imap and imaps at their wildcard
/// defaults, which the node refuses with a VIP: so does init, naming the flags.
#[test]
fn init_refuses_a_vip_with_imap_left_at_its_default() {
    let dir = tempfile::tempdir().expect("create temp dir");
    let plan = InitPlan {
        mail: MailSection {
            imap: None,
            imaps: None,
            ..own_mail("127.0.0.11")
        },
        vip: loopback_vip(),
        ..init_plan(dir.path())
    };
    let err = init_files(&plan).expect_err("imap and imaps default to wildcards");
    assert!(
        format!("{err:#}").contains(
            "imap on 0.0.0.0:143 (the default), imaps on 0.0.0.0:993 (the default). Pass \
             --imap-addr 127.0.0.11:143 --imaps-addr 127.0.0.11:993"
        ),
        "{err:#}"
    );
    assert!(!dir.path().join("n1").exists());
}

#[test]
fn init_refuses_a_vip_with_wildcard_listeners_before_writing() {
    let dir = tempfile::tempdir().expect("create temp dir");
    let plan = InitPlan {
        vip: loopback_vip(),
        ..init_plan(dir.path())
    };
    let err = init_files(&plan).expect_err("default listeners are wildcards");
    assert!(
        format!("{err:#}").contains("every mail listener must be on the node's own address"),
        "{err:#}"
    );
    assert!(!dir.path().join("ca.crt").exists());
    assert!(!dir.path().join("n1").exists());
}

#[test]
fn init_refuses_bad_mail_options_before_writing() {
    let dir = tempfile::tempdir().expect("create temp dir");
    let plan = InitPlan {
        mail: MailSection {
            submission: Some("587".to_owned()),
            ..MailSection::default()
        },
        ..init_plan(dir.path())
    };
    let err = init_files(&plan).expect_err("bad address");
    assert!(
        format!("{err:#}").contains(r#"bad submission address "587""#),
        "{err:#}"
    );
    assert!(!dir.path().join("ca.crt").exists());
}

/// A cluster that admits any node as node 2, signing its CSR like a real node would.
fn fake_cluster() -> (TestServer, CertifiedKey) {
    let ca = pki::generate_ca("mcluster").expect("generate CA");
    let signer = ca.clone();
    let server = TestServer::start(move |request| {
        let body: serde_json::Value = serde_json::from_str(&request.body).expect("JSON body");
        let csr_pem = body["csr_pem"].as_str().expect("csr_pem");
        let csr = CertificateSigningRequestParams::from_pem(csr_pem).expect("parse CSR");
        let ca_key = KeyPair::from_pem(&signer.key_pem).expect("CA key");
        let issuer = Issuer::from_ca_cert_pem(&signer.cert_pem, ca_key).expect("CA cert");
        let cert = csr.signed_by(&issuer).expect("sign");
        let answer = serde_json::json!({
            "node_id": 2,
            "cluster_name": "mcluster",
            "cert_pem": cert.pem(),
            "ca_pem": signer.cert_pem,
        });
        Reply::json(200, &answer.to_string())
    });
    (server, ca)
}

fn join_plan(dir: &Path, seed: &str) -> JoinPlan {
    JoinPlan {
        dir: dir.to_path_buf(),
        name: "n3".to_owned(),
        role: Role::Witness,
        raft_addr: "127.0.0.13:7071".to_owned(),
        admin_addr: "127.0.0.13:7070".to_owned(),
        data_dir: "data".to_owned(),
        seeds: vec![seed.to_owned()],
        mail: MailSection::default(),
        vip: VipOptions::default(),
    }
}

#[test]
fn join_writes_the_node_the_cluster_admitted() {
    let (server, ca) = fake_cluster();
    let dir = tempfile::tempdir().expect("create temp dir");
    let join_token = "cd".repeat(32);
    let outcome = join_files(&join_plan(dir.path(), &server.url), &join_token, None).expect("join");

    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(
        (requests[0].method.as_str(), requests[0].target.as_str()),
        ("POST", "/v1/join")
    );
    assert_eq!(
        requests[0].authorization,
        Some(format!("Bearer {join_token}"))
    );
    let body: serde_json::Value = serde_json::from_str(&requests[0].body).expect("JSON");
    assert_eq!(body["name"], "n3");
    assert_eq!(body["role"], "witness");
    assert_eq!(body["raft_addr"], "127.0.0.13:7071");
    assert_eq!(body["admin_addr"], "127.0.0.13:7070");

    let node: &NodePaths = &outcome.node;
    let node_file: NodeFile = node.load_config().expect("load mclusterd.toml");
    assert_eq!((node_file.node_id, node_file.role), (2, Role::Witness));
    assert!(node_file.bootstrap.is_none());
    let join = node_file.join.expect("join section");
    assert_eq!(join.seeds, std::slice::from_ref(&server.url));
    assert_eq!(join.token, join_token);
    assert_eq!(outcome.cluster_name, "mcluster");
    check_mode(&node.key, 0o600);
    check_mode(&node.config, 0o600);
    assert_eq!(
        fs::read_to_string(&node.ca_cert).expect("read ca.crt"),
        ca.cert_pem
    );
    assert!(!node.bootstrap.exists());

    // A second join of the same name is refused before the cluster is asked.
    let err =
        join_files(&join_plan(dir.path(), &server.url), &join_token, None).expect_err("exists");
    assert!(format!("{err:#}").contains("already exists"), "{err:#}");
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn join_writes_mail_options_for_a_data_node_and_refuses_them_for_a_witness() {
    let (server, _ca) = fake_cluster();
    let dir = tempfile::tempdir().expect("create temp dir");
    let mail = MailSection {
        smtps: Some("127.0.0.12:465".to_owned()),
        imap: Some("127.0.0.12:143".to_owned()),
        ..MailSection::default()
    };
    let witness = JoinPlan {
        mail: mail.clone(),
        ..join_plan(dir.path(), &server.url)
    };
    let err = join_files(&witness, &"cd".repeat(32), None).expect_err("witness with mail");
    assert!(
        format!("{err:#}").contains("a witness serves no mail"),
        "{err:#}"
    );
    assert!(
        server.requests().is_empty(),
        "refused before asking the cluster"
    );

    let data = JoinPlan {
        role: Role::Data,
        ..witness
    };
    let outcome = join_files(&data, &"cd".repeat(32), None).expect("join");
    let node_file = outcome.node.load_config().expect("load mclusterd.toml");
    assert_eq!(node_file.mail, Some(mail));
}

#[test]
fn join_writes_the_vip_of_a_data_node_and_refuses_one_for_a_witness() {
    let (server, _ca) = fake_cluster();
    let dir = tempfile::tempdir().expect("create temp dir");
    let witness = JoinPlan {
        vip: loopback_vip(),
        ..join_plan(dir.path(), &server.url)
    };
    let err = join_files(&witness, &"cd".repeat(32), None).expect_err("witness with a VIP");
    assert!(
        format!("{err:#}").contains("a witness never holds the virtual IP"),
        "{err:#}"
    );
    assert!(
        server.requests().is_empty(),
        "refused before asking the cluster"
    );

    let data = JoinPlan {
        role: Role::Data,
        mail: own_mail("127.0.0.13"),
        ..witness.clone()
    };
    let outcome = join_files(&data, &"cd".repeat(32), None).expect("join");
    let node_file = outcome.node.load_config().expect("load mclusterd.toml");
    assert_eq!(
        node_file.vip,
        Some(VipSection {
            addresses: vec!["127.0.0.10/32".to_owned()],
            interface: "lo".to_owned(),
        })
    );

    // A data node with the default (wildcard) listeners is refused, also before asking.
    let n_requests = server.requests().len();
    let wildcard = JoinPlan {
        role: Role::Data,
        name: "n4".to_owned(),
        ..witness
    };
    let err = join_files(&wildcard, &"cd".repeat(32), None).expect_err("wildcard listeners");
    assert!(
        format!("{err:#}").contains("Pass --smtp-addr 127.0.0.13:25"),
        "{err:#}"
    );
    assert_eq!(server.requests().len(), n_requests);
}

#[test]
fn join_reports_the_cluster_refusal() {
    let server = TestServer::start(|_| Reply::error(401, "unauthorized", "bad token"));
    let dir = tempfile::tempdir().expect("create temp dir");
    let err =
        join_files(&join_plan(dir.path(), &server.url), &"00".repeat(32), None).expect_err("401");
    let message = format!("{err:#}");
    assert!(message.contains("ask the cluster to admit n3"), "{message}");
    assert!(message.contains("401 unauthorized"), "{message}");
    assert!(!dir.path().join("n3").exists());
}

#[test]
fn names_and_addresses_are_checked() {
    for good in ["n1", "mail-2.example", "a_b"] {
        validate_name(good).expect(good);
    }
    for bad in ["", "-x", ".x", "a/b", "a b", &"x".repeat(64)] {
        assert!(validate_name(bad).is_err(), "{bad:?}");
    }
    for good in ["127.0.0.11:7070", "mail1.example:7070", "[::1]:7070"] {
        validate_addr("addr", good).expect(good);
    }
    for bad in ["127.0.0.1", ":7070", "host:0", "host:99999", "host:port"] {
        assert!(validate_addr("addr", bad).is_err(), "{bad:?}");
    }
}

#[test]
fn mail_options_are_checked() {
    let with = |smtp: &str| MailSection {
        smtp: Some(smtp.to_owned()),
        ..MailSection::default()
    };
    for good in ["127.0.0.11:2525", "[::]:25", "mail.example:25", ""] {
        validate_mail(&with(good)).expect(good);
    }
    for bad in ["127.0.0.11", "host:0", ":25"] {
        let err = validate_mail(&with(bad)).expect_err(bad);
        assert!(format!("{err:#}").contains("bad smtp address"), "{err:#}");
    }
    let imaps = MailSection {
        imaps: Some("993".to_owned()),
        ..MailSection::default()
    };
    let err = validate_mail(&imaps).expect_err("no host");
    assert!(
        format!("{err:#}").contains(r#"bad imaps address "993""#),
        "{err:#}"
    );
    for good in ["mail.example.test", "n1", "mx-1.example.test"] {
        validate_mail_hostname(good).expect(good);
    }
    for bad in [
        "",
        "a b",
        "-x.example",
        "x..example",
        "x.example.",
        &"x".repeat(64),
    ] {
        assert!(validate_mail_hostname(bad).is_err(), "{bad:?}");
    }
}

/// A server's node keeps its data where the systemd unit lets it write (/var/lib/mcluster);
/// the demo and the tests keep it inside the node's directory.
#[test]
fn the_data_directory_is_written_as_given() {
    let dir = tempfile::tempdir().expect("create temp dir");
    let plan = InitPlan {
        data_dir: "/var/lib/mcluster".to_owned(),
        ..init_plan(dir.path())
    };
    let outcome = init_files(&plan).expect("init");
    let node_file = outcome.node.load_config().expect("load mclusterd.toml");
    assert_eq!(node_file.data_dir, "/var/lib/mcluster");
    let text = fs::read_to_string(&outcome.node.config).expect("read mclusterd.toml");
    assert!(text.contains("data-dir = \"/var/lib/mcluster\""), "{text}");

    let blank = InitPlan {
        name: "n2".to_owned(),
        data_dir: " ".to_owned(),
        ..init_plan(dir.path())
    };
    let err = init_files(&blank).expect_err("blank data dir");
    assert!(format!("{err:#}").contains("bad data directory"), "{err:#}");
}

/// The raft and admin addresses are where the others reach a node: a wildcard is refused before
/// anything is written.
#[test]
fn init_refuses_a_wildcard_node_address() {
    for (raft, admin) in [
        ("0.0.0.0:7071", "127.0.0.11:7070"),
        ("127.0.0.11:7071", "0.0.0.0:7070"),
        ("127.0.0.11:7071", "[::]:7070"),
    ] {
        let dir = tempfile::tempdir().expect("create temp dir");
        let plan = InitPlan {
            raft_addr: raft.to_owned(),
            admin_addr: admin.to_owned(),
            ..init_plan(dir.path())
        };
        let err = format!("{:#}", init_files(&plan).expect_err("a wildcard address"));
        assert!(err.contains("give one of its own addresses"), "{err}");
        assert!(
            !dir.path().join("ca.crt").exists(),
            "nothing is written: {err}"
        );
    }
}
