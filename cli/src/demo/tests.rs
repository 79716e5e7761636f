//! Tests for the demo's fixed layout.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use std::sync::atomic::Ordering;

use nix::sys::signal::{Signal, raise};

use std::net::SocketAddr;

use crate::api::Role;
use crate::demo::{
    Demo, DemoNet, DemoNode, catch_stop_signals, default_dir, render_mail_listeners, vip_banner,
};

/// The nodes of a demo on the default addresses.
fn demo_nodes() -> [DemoNode; 3] {
    DemoNet::default().nodes()
}
use crate::node_config::{MailSection, NodeFile, TlsSection, VipSection};

#[test]
fn default_directory() {
    let runtime =
        |name: &str| (name == "XDG_RUNTIME_DIR").then(|| OsString::from("/run/user/1000"));
    assert_eq!(
        default_dir(runtime),
        PathBuf::from("/run/user/1000/mcluster-demo")
    );
    assert_eq!(default_dir(|_| None), PathBuf::from("/tmp/mcluster-demo"));
    let relative = |_: &str| Some(OsString::from("relative"));
    assert_eq!(default_dir(relative), PathBuf::from("/tmp/mcluster-demo"));
}

#[test]
fn two_data_nodes_and_a_witness_on_their_own_addresses() {
    let layout: Vec<(&str, Role, String, String)> = demo_nodes()
        .iter()
        .map(|node| (node.name, node.role, node.admin_addr(), node.raft_addr()))
        .collect();
    assert_eq!(
        layout,
        [
            (
                "n1",
                Role::Data,
                "127.0.0.11:7070".to_owned(),
                "127.0.0.11:7071".to_owned()
            ),
            (
                "n2",
                Role::Data,
                "127.0.0.12:7070".to_owned(),
                "127.0.0.12:7071".to_owned()
            ),
            (
                "n3",
                Role::Witness,
                "127.0.0.13:7070".to_owned(),
                "127.0.0.13:7071".to_owned()
            ),
        ]
    );
}

#[test]
fn data_nodes_serve_mail_on_unprivileged_ports_of_their_own_address() {
    let n1 = demo_nodes()[0].mail_section().expect("n1 serves mail");
    assert_eq!(
        n1,
        MailSection {
            hostname: Some("n1.example.test".to_owned()),
            smtp: Some("127.0.0.11:2525".to_owned()),
            submission: Some("127.0.0.11:2587".to_owned()),
            smtps: Some("127.0.0.11:2465".to_owned()),
            pop3: Some("127.0.0.11:2110".to_owned()),
            pop3s: Some("127.0.0.11:2995".to_owned()),
            imap: Some("127.0.0.11:2143".to_owned()),
            imaps: Some("127.0.0.11:2993".to_owned()),
        }
    );
    let n2 = demo_nodes()[1].mail_section().expect("n2 serves mail");
    assert_eq!(n2.hostname.as_deref(), Some("n2.example.test"));
    assert_eq!(n2.smtp.as_deref(), Some("127.0.0.12:2525"));
    assert_eq!(n2.imap.as_deref(), Some("127.0.0.12:2143"));
    assert_eq!(n2.imaps.as_deref(), Some("127.0.0.12:2993"));
    assert_eq!(demo_nodes()[2].mail_section(), None);
    assert!(demo_nodes()[2].mail_addrs().is_empty());
}

#[test]
fn summary_lists_the_mail_listeners() {
    assert_eq!(
        render_mail_listeners(&DemoNet::default()),
        "SERVICE     VIRTUAL IP       n1               n2\n\
         hostname    the leader's     n1.example.test  n2.example.test\n\
         smtp        127.0.0.10:2525  127.0.0.11:2525  127.0.0.12:2525\n\
         submission  127.0.0.10:2587  127.0.0.11:2587  127.0.0.12:2587\n\
         smtps       127.0.0.10:2465  127.0.0.11:2465  127.0.0.12:2465\n\
         pop3        127.0.0.10:2110  127.0.0.11:2110  127.0.0.12:2110\n\
         pop3s       127.0.0.10:2995  127.0.0.11:2995  127.0.0.12:2995\n\
         imap        127.0.0.10:2143  127.0.0.11:2143  127.0.0.12:2143\n\
         imaps       127.0.0.10:2993  127.0.0.11:2993  127.0.0.12:2993\n"
    );
    assert!(
        vip_banner(&DemoNet::default()).starts_with(
            "SMTP via the virtual IP: 127.0.0.10:2525 (POP3 127.0.0.10:2110, IMAP \
             127.0.0.10:2143): the leader answers there"
        ),
        "{}",
        vip_banner(&DemoNet::default())
    );
}

fn loopback_vip() -> VipSection {
    VipSection {
        addresses: vec!["127.0.0.10/32".to_owned()],
        interface: "lo".to_owned(),
    }
}

#[test]
fn data_nodes_share_a_loopback_vip_and_the_witness_has_none() {
    for node in &demo_nodes()[..2] {
        assert_eq!(
            node.vip_section().expect("a valid VIP"),
            Some(loopback_vip()),
            "{}",
            node.name
        );
    }
    assert_eq!(demo_nodes()[2].vip_section().expect("no VIP"), None);
    assert!(demo_nodes()[2].vip_options().addresses.is_empty());
}

/// With a VIP the node refuses wildcard listeners: each must be on the node's own address. The
/// ports the demo checks and shows (`mail_addrs`) are the ones it writes.
#[test]
fn mail_listeners_are_on_each_node_own_address() {
    for node in &demo_nodes()[..2] {
        let mail = node.mail_section().expect("a data node serves mail");
        let written: Vec<(&str, String)> = mail
            .listeners()
            .into_iter()
            .map(|(key, addr)| (key, addr.unwrap_or_default().to_owned()))
            .collect();
        assert_eq!(written, node.mail_addrs(), "{}", node.name);
        for (key, addr) in mail.listeners() {
            let addr: SocketAddr = addr
                .and_then(|addr| addr.parse().ok())
                .unwrap_or_else(|| panic!("{} {key}: {addr:?}", node.name));
            assert_eq!(addr.ip().to_string(), node.ip, "{} {key}", node.name);
        }
    }
}

/// A node config as an mclusterctl from before the mail service and the virtual IP wrote it.
fn old_config(node_id: u64, name: &str, role: Role) -> String {
    old_node_file(node_id, name, role)
        .to_toml()
        .expect("serialize")
}

fn old_node_file(node_id: u64, name: &str, role: Role) -> NodeFile {
    NodeFile {
        node_id,
        name: name.to_owned(),
        role,
        data_dir: "data".to_owned(),
        raft_addr: format!("127.0.0.1{node_id}:7071"),
        admin_addr: format!("127.0.0.1{node_id}:7070"),
        tls: TlsSection::default(),
        mail: None,
        vip: None,
        bootstrap: None,
        join: None,
    }
}

/// Writes `config(node_id, node)` as each demo node's mclusterd.toml and returns a demo there.
fn demo_with_configs(dir: &Path, config: impl Fn(u64, DemoNode) -> String) -> Demo {
    for (node_id, node) in (1..).zip(demo_nodes()) {
        let node_dir = dir.join(node.name);
        std::fs::create_dir(&node_dir).expect("create node dir");
        std::fs::write(node_dir.join("mclusterd.toml"), config(node_id, node))
            .expect("write old config");
    }
    Demo {
        dir: dir.to_path_buf(),
        mclusterd: PathBuf::from("/nonexistent/mclusterd"),
        client_config_path: dir.join("client.toml"),
        net: DemoNet::default(),
        nodes: Vec::new(),
    }
}

#[test]
fn a_restarted_old_demo_gets_mail_listeners_and_the_vip() {
    let dir = tempfile::tempdir().expect("create temp dir");
    let demo = demo_with_configs(dir.path(), |node_id, node| {
        old_config(node_id, node.name, node.role)
    });
    demo.add_missing_sections().expect("add sections");
    for node in demo_nodes() {
        let config = demo
            .paths(&node)
            .expect("paths")
            .load_config()
            .expect("load config");
        assert_eq!(config.mail, node.mail_section(), "{}", node.name);
        let expected_vip = (node.role == Role::Data).then(loopback_vip);
        assert_eq!(config.vip, expected_vip, "{}", node.name);
    }
    // A second start changes nothing.
    let n1_config = dir.path().join("n1/mclusterd.toml");
    let before = std::fs::read_to_string(&n1_config).expect("read");
    demo.add_missing_sections().expect("again");
    assert_eq!(std::fs::read_to_string(&n1_config).expect("read"), before);
}

/// Once the node knows IMAP, a `[mail]` without `imap`/`imaps` means listeners on all
/// addresses, which a node with a VIP refuses: a restart adds the demo's.
#[test]
fn a_restarted_demo_from_before_imap_gets_the_imap_listeners() {
    let dir = tempfile::tempdir().expect("create temp dir");
    let demo = demo_with_configs(dir.path(), |node_id, node| {
        let mail = node.mail_section().map(|mail| MailSection {
            imap: None,
            imaps: None,
            ..mail
        });
        let node_file = NodeFile {
            mail,
            vip: node.vip_section().expect("a valid VIP"),
            ..old_node_file(node_id, node.name, node.role)
        };
        format!(
            "{}# kept\n[raft]\nheartbeat-interval-ms = 50\n",
            node_file.to_toml().expect("serialize")
        )
    });
    demo.add_missing_sections().expect("add the IMAP listeners");
    for node in demo_nodes() {
        let paths = demo.paths(&node).expect("paths");
        let config = paths.load_config().expect("load config");
        assert_eq!(config.mail, node.mail_section(), "{}", node.name);
        let text = std::fs::read_to_string(&paths.config).expect("read");
        assert!(
            text.ends_with("# kept\n[raft]\nheartbeat-interval-ms = 50\n"),
            "{text}"
        );
    }
    let n1_config = dir.path().join("n1/mclusterd.toml");
    let text = std::fs::read_to_string(&n1_config).expect("read");
    assert!(
        text.contains("[mail]\nimap = \"127.0.0.11:2143\"\nimaps = \"127.0.0.11:2993\"\n"),
        "{text}"
    );
    demo.add_missing_sections().expect("again");
    assert_eq!(std::fs::read_to_string(&n1_config).expect("read"), text);
}

#[test]
fn stop_signals_set_the_flag_instead_of_ending_the_process() {
    let stop = catch_stop_signals().expect("install handlers");
    raise(Signal::SIGHUP).expect("raise SIGHUP");
    assert!(stop.load(Ordering::SeqCst));
}

#[test]
fn another_net_moves_every_address_and_only_loopback_is_taken() {
    let net: DemoNet = "127.0.9".parse().expect("a loopback prefix");
    let nodes = net.nodes();
    assert_eq!(nodes[0].admin_addr(), "127.0.9.11:7070");
    assert_eq!(nodes[2].raft_addr(), "127.0.9.13:7071");
    assert_eq!(
        nodes[1].vip_options().addresses,
        ["127.0.9.10/32".parse().unwrap()]
    );
    assert!(render_mail_listeners(&net).contains("127.0.9.10:2525"));
    assert!(vip_banner(&net).starts_with("SMTP via the virtual IP: 127.0.9.10:2525"));
    // Written as the addresses will be: no leading zeros.
    let padded: DemoNet = "127.00.09".parse().expect("numbers");
    assert_eq!(padded.vip_ip(), "127.0.9.10");
    for bad in ["10.0.0", "127.0", "127.0.0.1", "127.0.256", "localhost"] {
        let err = bad.parse::<DemoNet>().expect_err(bad);
        assert!(err.contains("loopback"), "{err}");
    }
}

#[test]
fn a_demo_restarted_with_another_net_is_refused() {
    let dir = tempfile::tempdir().expect("create temp dir");
    let demo = demo_with_configs(dir.path(), |node_id, node| {
        old_config(node_id, node.name, node.role)
    });
    let first = demo_nodes()[0].clone();
    let paths = demo.paths(&first).expect("paths");
    demo.check_same_net(&paths, &first)
        .expect("the addresses it was made with");
    let other = "127.0.9".parse::<DemoNet>().expect("net").nodes()[0].clone();
    let err = demo
        .check_same_net(&paths, &other)
        .expect_err("another --net");
    let text = format!("{err:#}");
    assert!(text.contains("made on other addresses"), "{text}");
    assert!(text.contains("127.0.0.11:7071"), "{text}");
}
