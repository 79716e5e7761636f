//! Tests for the client config: parsing, round trip, saving and path resolution.

use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

use crate::client_config::{ClientConfig, resolve_path};
use crate::secrets::random_token;

fn sample() -> ClientConfig {
    ClientConfig {
        admin_urls: vec![
            "http://127.0.0.11:7070".to_owned(),
            "http://127.0.0.12:7070".to_owned(),
        ],
        admin_token: Some(random_token()),
        join_token: Some(random_token()),
        read_only_token: None,
        cluster_name: "mcluster".to_owned(),
        ca_cert_pem: None,
    }
}

#[test]
fn round_trips_through_toml() {
    let client_config = sample();
    let text = client_config.to_toml().expect("serialize");
    assert!(text.contains("admin-urls = ["), "{text}");
    assert!(text.contains("admin-token = "), "{text}");
    assert!(text.contains("join-token = "), "{text}");
    assert!(text.contains("cluster-name = \"mcluster\""), "{text}");
    assert_eq!(ClientConfig::parse(&text).expect("parse"), client_config);
}

#[test]
fn parses_hand_written_file() {
    let token = "ab".repeat(32);
    let text = format!(
        "admin-urls = [\"http://127.0.0.11:7070\"]\nadmin-token = \"{token}\"\n\
         join-token = \"{token}\"\ncluster-name = \"prod\"\n"
    );
    let client_config = ClientConfig::parse(&text).expect("parse");
    assert_eq!(client_config.admin_urls, ["http://127.0.0.11:7070"]);
    assert_eq!(client_config.cluster_name, "prod");
}

#[track_caller]
fn check_rejected(text: &str, needle: &str) {
    let err = ClientConfig::parse(text).expect_err("config is invalid");
    let message = format!("{err:#}");
    assert!(message.contains(needle), "{message}");
}

#[test]
fn rejects_bad_values() {
    check_rejected("admin-urls = [\"127.0.0.1:7070\"]", "http://");
    check_rejected("admin-token = \"short\"", "admin-token");
    check_rejected("admin-url = []", "unknown field");
}

#[test]
fn tokens_may_be_absent() {
    let client_config = ClientConfig::parse("admin-urls = []").expect("parse");
    assert_eq!(client_config.cluster_name, "mcluster");
    let err = client_config.admin_token().expect_err("no token");
    assert!(err.to_string().contains("admin-token"));
}

#[test]
fn save_creates_parents_with_mode_0600_and_backs_up_a_different_file() {
    let dir = tempfile::tempdir().expect("create temp dir");
    let path = dir.path().join("a").join("b").join("client.toml");
    let first = sample();
    assert_eq!(first.save_replacing(&path).expect("save first"), None);
    let mode = fs::metadata(&path).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert_eq!(ClientConfig::load(&path).expect("load"), first);

    assert_eq!(first.save_replacing(&path).expect("save same again"), None);

    let second = sample();
    let backup = second
        .save_replacing(&path)
        .expect("save second")
        .expect("a backup");
    assert_eq!(ClientConfig::load(&backup).expect("load backup"), first);
    assert_eq!(ClientConfig::load(&path).expect("load"), second);
}

#[test]
fn admin_urls_are_added_once_and_removed() {
    let mut client_config = sample();
    client_config.add_admin_url("http://127.0.0.13:7070");
    client_config.add_admin_url("http://127.0.0.13:7070");
    assert_eq!(client_config.admin_urls.len(), 3);
    assert!(client_config.remove_admin_url("http://127.0.0.12:7070"));
    assert!(!client_config.remove_admin_url("http://127.0.0.12:7070"));
    assert_eq!(
        client_config.admin_urls,
        ["http://127.0.0.11:7070", "http://127.0.0.13:7070"]
    );
}

#[track_caller]
fn check_path(explicit: Option<&str>, vars: &[(&str, &str)], expected: &str) {
    let env = |name: &str| {
        vars.iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| OsString::from(value))
    };
    let path = resolve_path(explicit.map(PathBuf::from), env).expect("resolve");
    assert_eq!(path, PathBuf::from(expected));
}

#[test]
fn path_resolution_order() {
    let all = [
        ("MCLUSTER_CLIENT_CONFIG", "/etc/m.toml"),
        ("XDG_CONFIG_HOME", "/xdg"),
        ("HOME", "/home/u"),
    ];
    check_path(Some("./c.toml"), &all, "./c.toml");
    check_path(None, &all, "/etc/m.toml");
    check_path(None, &all[1..], "/xdg/mcluster/client.toml");
    check_path(None, &all[2..], "/home/u/.config/mcluster/client.toml");
    check_path(
        None,
        &[
            ("MCLUSTER_CLIENT_CONFIG", ""),
            ("XDG_CONFIG_HOME", "relative"),
            ("HOME", "/h"),
        ],
        "/h/.config/mcluster/client.toml",
    );
}

#[test]
fn path_resolution_without_home_fails() {
    assert!(resolve_path(None, |_| None).is_err());
}

/// A config that speaks HTTPS keeps to it: a joined node's URL is `https://`, and an address is
/// added or removed once whatever the scheme it was listed with.
#[test]
fn https_configs_list_new_nodes_by_https_and_addresses_once() {
    let mut config = sample();
    config.admin_urls = vec!["http://10.0.0.1:7070".into()];
    assert_eq!(config.url_for("10.0.0.2:7070"), "http://10.0.0.2:7070");
    config.admin_urls = vec!["https://10.0.0.1:7070".into()];
    assert_eq!(config.url_for("10.0.0.2:7070"), "https://10.0.0.2:7070");
    config.add_admin_url("http://10.0.0.1:7070");
    assert_eq!(config.admin_urls, ["https://10.0.0.1:7070"]);
    assert!(config.remove_admin_url("http://10.0.0.1:7070/"));
    assert!(config.admin_urls.is_empty());
    config.admin_urls = vec!["ftp://10.0.0.1:7070".into()];
    assert!(config.validate().is_err());
    config.admin_urls = vec!["https://10.0.0.1:7070".into()];
    config.ca_cert_pem = Some("not a certificate".into());
    assert!(config.validate().is_err());
}
