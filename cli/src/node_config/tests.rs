//! Tests for the node config files: round trips, and agreement with the example config.

use toml::{Table, Value};

use crate::api::Role;
use crate::node_config::{
    BootstrapFile, BootstrapSection, JoinSection, MailSection, NODE_DEFAULT_LISTENERS, NodeFile,
    TlsSection, VipSection, add_mail_section, add_missing_mail_keys, add_vip_section,
};

const EXAMPLE: &str = include_str!("../../../deploy/mclusterd.example.toml");

fn first_node() -> NodeFile {
    NodeFile {
        node_id: 1,
        name: "n1".to_owned(),
        role: Role::Data,
        data_dir: "data".to_owned(),
        raft_addr: "127.0.0.11:7071".to_owned(),
        admin_addr: "127.0.0.11:7070".to_owned(),
        tls: TlsSection::default(),
        mail: Some(demo_mail()),
        vip: None,
        bootstrap: Some(BootstrapSection {
            file: "bootstrap.toml".to_owned(),
        }),
        join: None,
    }
}

/// Every key given, one listener turned off.
fn demo_mail() -> MailSection {
    MailSection {
        hostname: Some("n1.example.test".to_owned()),
        smtp: Some("127.0.0.11:2525".to_owned()),
        submission: Some("127.0.0.11:2587".to_owned()),
        smtps: Some("127.0.0.11:2465".to_owned()),
        pop3: Some(String::new()),
        pop3s: Some("127.0.0.11:2995".to_owned()),
        imap: Some("127.0.0.11:2143".to_owned()),
        imaps: Some("127.0.0.11:2993".to_owned()),
    }
}

fn joined_node() -> NodeFile {
    NodeFile {
        node_id: 3,
        name: "n3".to_owned(),
        role: Role::Witness,
        data_dir: "data".to_owned(),
        raft_addr: "127.0.0.13:7071".to_owned(),
        admin_addr: "127.0.0.13:7070".to_owned(),
        tls: TlsSection::default(),
        mail: None,
        vip: None,
        bootstrap: None,
        join: Some(JoinSection {
            seeds: vec!["http://127.0.0.11:7070".to_owned()],
            token: "ab".repeat(32),
        }),
    }
}

/// The example with its commented-out options (`#key = value`, no space after the `#`, unlike
/// prose comments) switched on: sections that are off by default are listed that way.
fn example_with_commented_options() -> String {
    EXAMPLE
        .lines()
        .map(|line| match line.strip_prefix('#') {
            Some(rest) if !rest.is_empty() && !rest.starts_with([' ', '#']) => rest,
            _ => line,
        })
        .map(|line| format!("{line}\n"))
        .collect()
}

/// Every key we write exists in the example with a value of the same type, so the names we
/// write cannot drift from the ones mclusterd reads.
#[track_caller]
fn check_against_example(node_file: &NodeFile) {
    let text = node_file.to_toml().expect("serialize");
    assert_eq!(NodeFile::parse(&text).expect("parse back"), *node_file);
    let ours: Table = toml::from_str(&text).expect("parse as table");
    let example: Table = toml::from_str(&example_with_commented_options()).expect("parse example");
    check_keys(&ours, &example, "");
}

fn lan_vip() -> VipSection {
    VipSection {
        addresses: vec!["192.0.2.10/24".to_owned(), "2001:db8::10/64".to_owned()],
        interface: "eth0".to_owned(),
    }
}

#[track_caller]
fn check_keys(ours: &Table, example: &Table, prefix: &str) {
    for (key, value) in ours {
        let path = format!("{prefix}{key}");
        let expected = example
            .get(key)
            .unwrap_or_else(|| panic!("{path} is not in deploy/mclusterd.example.toml"));
        assert_eq!(value.type_str(), expected.type_str(), "type of {path}");
        if let (Value::Table(ours), Value::Table(example)) = (value, expected) {
            check_keys(ours, example, &format!("{path}."));
        }
    }
}

#[test]
fn first_node_config_matches_example_keys() {
    let node_file = first_node();
    check_against_example(&node_file);
    let text = node_file.to_toml().expect("serialize");
    assert!(text.contains("node-id = 1\n"), "{text}");
    assert!(text.contains("role = \"data\"\n"), "{text}");
    assert!(
        text.contains("[bootstrap]\nfile = \"bootstrap.toml\"\n"),
        "{text}"
    );
    assert!(!text.contains("[join]"), "{text}");
    assert!(
        text.contains(
            "[mail]\nhostname = \"n1.example.test\"\nsmtp = \"127.0.0.11:2525\"\n\
             submission = \"127.0.0.11:2587\"\nsmtps = \"127.0.0.11:2465\"\npop3 = \"\"\n\
             pop3s = \"127.0.0.11:2995\"\nimap = \"127.0.0.11:2143\"\n\
             imaps = \"127.0.0.11:2993\"\n"
        ),
        "{text}"
    );
}

#[test]
fn only_the_mail_options_given_are_written() {
    let node_file = NodeFile {
        mail: MailSection {
            smtp: Some("192.0.2.1:25".to_owned()),
            ..MailSection::default()
        }
        .into_section(),
        ..first_node()
    };
    check_against_example(&node_file);
    let text = node_file.to_toml().expect("serialize");
    assert!(
        text.contains("[mail]\nsmtp = \"192.0.2.1:25\"\n\n"),
        "{text}"
    );
    assert_eq!(MailSection::default().into_section(), None);
}

#[test]
fn joined_node_config_matches_example_keys() {
    let node_file = joined_node();
    check_against_example(&node_file);
    let text = node_file.to_toml().expect("serialize");
    assert!(text.contains("role = \"witness\"\n"), "{text}");
    assert!(
        text.contains("seeds = [\"http://127.0.0.11:7070\"]"),
        "{text}"
    );
    assert!(!text.contains("[bootstrap]"), "{text}");
    assert!(!text.contains("[mail]"), "{text}");
}

#[test]
fn a_mail_section_is_appended_to_a_config_without_one() {
    let old = NodeFile {
        mail: None,
        ..first_node()
    };
    let text = format!(
        "{}# kept\n[raft]\nheartbeat-interval-ms = 50",
        old.to_toml().expect("serialize")
    );
    let updated = add_mail_section(&text, &demo_mail())
        .expect("add")
        .expect("it had no mail section");
    assert!(updated.starts_with(&text), "{updated}");
    assert!(updated.contains("# kept\n"), "{updated}");
    let table: Table = toml::from_str(&updated).expect("parse as table");
    assert_eq!(
        table["raft"]["heartbeat-interval-ms"].as_integer(),
        Some(50)
    );
    assert_eq!(
        NodeFile::parse(&updated).expect("parse").mail,
        Some(demo_mail())
    );
    assert_eq!(
        add_mail_section(&updated, &demo_mail()).expect("again"),
        None
    );
}

/// A `[mail]` written before the node had IMAP: everything but `imap` and `imaps`.
fn mail_before_imap() -> MailSection {
    MailSection {
        imap: None,
        imaps: None,
        ..demo_mail()
    }
}

#[test]
fn missing_mail_keys_go_under_the_mail_header() {
    let old = NodeFile {
        mail: Some(mail_before_imap()),
        ..first_node()
    };
    let text = format!(
        "{}# kept\n[raft]\nheartbeat-interval-ms = 50\n",
        old.to_toml().expect("serialize")
    );
    let updated = add_missing_mail_keys(&text, &demo_mail())
        .expect("add")
        .expect("imap and imaps were missing");
    assert_eq!(
        updated,
        text.replace(
            "[mail]\n",
            "[mail]\nimap = \"127.0.0.11:2143\"\nimaps = \"127.0.0.11:2993\"\n"
        )
    );
    let node_file = NodeFile::parse(&updated).expect("parse");
    assert_eq!(node_file.mail, Some(demo_mail()));
    assert_eq!(node_file.bootstrap, old.bootstrap, "the rest is kept");
    assert_eq!(
        add_missing_mail_keys(&updated, &demo_mail()).expect("again"),
        None
    );
}

#[test]
fn mail_keys_present_are_kept_even_when_off() {
    // imap turned off by hand, and a header with spaces and a comment, as a person may write.
    let text = format!(
        "{}\n[ mail ] # listeners\nsmtp = \"192.0.2.11:25\"\nimap = \"\"",
        NodeFile {
            mail: None,
            ..first_node()
        }
        .to_toml()
        .expect("serialize")
    );
    let updated = add_missing_mail_keys(&text, &demo_mail())
        .expect("add")
        .expect("some were missing");
    assert!(
        updated.contains("[ mail ] # listeners\nhostname = \"n1.example.test\"\n"),
        "{updated}"
    );
    assert_eq!(
        NodeFile::parse(&updated).expect("parse").mail,
        Some(MailSection {
            smtp: Some("192.0.2.11:25".to_owned()),
            imap: Some(String::new()),
            ..demo_mail()
        })
    );
}

#[test]
fn missing_mail_keys_need_a_mail_section() {
    let text = NodeFile {
        mail: None,
        ..first_node()
    }
    .to_toml()
    .expect("serialize");
    assert_eq!(
        add_missing_mail_keys(&text, &demo_mail()).expect("add"),
        None
    );
    // An inline table has no header to add keys under.
    let inline = text.replacen(
        "node-id = 1\n",
        "node-id = 1\nmail = { smtp = \"127.0.0.11:2525\" }\n",
        1,
    );
    let err = add_missing_mail_keys(&inline, &demo_mail()).expect_err("no header to add under");
    assert!(
        format!("{err:#}").contains("found 0 `[mail]` header lines"),
        "{err:#}"
    );
}

#[test]
fn a_vip_section_is_written_after_the_mail_section() {
    let node_file = NodeFile {
        vip: Some(lan_vip()),
        ..first_node()
    };
    check_against_example(&node_file);
    let text = node_file.to_toml().expect("serialize");
    assert!(
        text.contains(
            "imaps = \"127.0.0.11:2993\"\n\n[vip]\n\
             addresses = [\"192.0.2.10/24\", \"2001:db8::10/64\"]\ninterface = \"eth0\"\n"
        ),
        "{text}"
    );
    let without = first_node().to_toml().expect("serialize");
    assert!(!without.contains("vip"), "{without}");
}

#[test]
fn a_vip_section_is_appended_to_a_config_without_one() {
    let text = format!(
        "{}# kept\n[raft]\nheartbeat-interval-ms = 50\n",
        first_node().to_toml().expect("serialize")
    );
    let updated = add_vip_section(&text, &lan_vip())
        .expect("add")
        .expect("it had no vip section");
    assert_eq!(
        updated.strip_prefix(&text),
        Some(
            "\n[vip]\naddresses = [\"192.0.2.10/24\", \"2001:db8::10/64\"]\n\
             interface = \"eth0\"\n"
        ),
        "{updated}"
    );
    let node_file = NodeFile::parse(&updated).expect("parse");
    assert_eq!(node_file.vip, Some(lan_vip()));
    assert_eq!(node_file.mail, Some(demo_mail()), "the rest is kept");
    assert_eq!(add_vip_section(&updated, &lan_vip()).expect("again"), None);
}

#[test]
fn example_config_parses_as_a_node_file() {
    let node_file = NodeFile::parse(EXAMPLE).expect("parse example");
    assert_eq!(node_file.node_id, 1);
    assert_eq!(node_file.tls, TlsSection::default());
    assert_eq!(node_file.vip, None, "the virtual IP is off by default");
    let switched_on =
        NodeFile::parse(&example_with_commented_options()).expect("parse with [vip] on");
    assert_eq!(
        switched_on.vip,
        Some(VipSection {
            addresses: vec!["192.0.2.10/24".to_owned()],
            interface: "eth0".to_owned(),
        })
    );
}

/// What `--vip` checks against when a listener is not given must be what the node does then.
#[test]
fn node_default_listeners_are_the_example_ones() {
    let example: Table = toml::from_str(EXAMPLE).expect("parse example");
    let mail = example["mail"].as_table().expect("[mail]");
    for (key, addr) in NODE_DEFAULT_LISTENERS {
        assert_eq!(mail[key].as_str(), Some(addr), "mail.{key}");
    }
    let keys: Vec<&str> = MailSection::default()
        .listeners()
        .iter()
        .map(|(key, _)| *key)
        .collect();
    let default_keys: Vec<&str> = NODE_DEFAULT_LISTENERS.iter().map(|(key, _)| *key).collect();
    assert_eq!(keys, default_keys);
}

#[test]
fn bootstrap_file_uses_kebab_case_keys() {
    let bootstrap_file = BootstrapFile {
        cluster_name: "mcluster".to_owned(),
        admin_token_sha256: "00".repeat(32),
        join_token_sha256: "11".repeat(32),
        ca_cert_pem: "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n".to_owned(),
        ca_key_pem: "-----BEGIN PRIVATE KEY-----\nAA==\n-----END PRIVATE KEY-----\n".to_owned(),
    };
    let text = bootstrap_file.to_toml().expect("serialize");
    let table: Table = toml::from_str(&text).expect("parse as table");
    let mut keys: Vec<&str> = table.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "admin-token-sha256",
            "ca-cert-pem",
            "ca-key-pem",
            "cluster-name",
            "join-token-sha256"
        ]
    );
    assert_eq!(
        BootstrapFile::parse(&text).expect("parse back"),
        bootstrap_file
    );
    assert!(!format!("{bootstrap_file:?}").contains("PRIVATE KEY"));
}
