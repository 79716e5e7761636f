//! Unit tests of the node: configuration parsing and validation.

use std::path::Path;

use crate::config::{ConfigFile, parse};

#[track_caller]
fn check_rejected(toml: &str, expected_fragment: &str) {
    let err = match parse(toml, Path::new("/etc/mcluster")) {
        Ok(_) => panic!("config was accepted:\n{toml}"),
        Err(err) => format!("{err:#}"),
    };
    assert!(
        err.contains(expected_fragment),
        "error {err:?} does not mention {expected_fragment:?}"
    );
}

#[test]
fn example_config_lists_every_option_at_its_default() {
    let text = include_str!("../../deploy/mclusterd.example.toml");
    let mut unknown = Vec::new();
    let file: ConfigFile =
        serde_ignored::deserialize(toml::Deserializer::parse(text).unwrap(), |k| {
            unknown.push(k.to_string())
        })
        .unwrap();
    assert!(
        unknown.is_empty(),
        "example has keys the node does not know: {unknown:?}"
    );
    assert_eq!(file, ConfigFile::default());
}

#[test]
fn relative_paths_resolve_against_the_config_directory() {
    let loaded = parse(
        "data-dir = \"d\"\n[tls]\ncert = \"/abs/node.crt\"\n",
        Path::new("/etc/mcluster"),
    )
    .unwrap();
    assert_eq!(loaded.config.data_dir, Path::new("/etc/mcluster/d"));
    assert_eq!(loaded.config.cert, Path::new("/abs/node.crt"));
    assert_eq!(loaded.config.ca_cert, Path::new("/etc/mcluster/ca.crt"));
}

#[test]
fn unknown_keys_are_reported_not_fatal() {
    let loaded = parse("nmae = \"typo\"\n[raft]\nheartbeat = 5\n", Path::new("/")).unwrap();
    assert_eq!(
        loaded.unknown_keys,
        vec!["nmae".to_string(), "raft.heartbeat".to_string()]
    );
}

#[test]
fn invalid_settings_are_refused_with_the_reason() {
    check_rejected("node-id = 0", "node-id");
    check_rejected("raft-addr = \"nowhere\"", "raft-addr");
    check_rejected("role = \"boss\"", "role");
    check_rejected(
        "[inbound-checks]\ndmarc-quarantine = \"reject\"",
        "dmarc-quarantine",
    );
    check_rejected("[inbound-checks]\nspf-fail = \"maybe\"", "spf-fail");
    check_rejected(
        "[inbound-checks]\ndnsbl-zones = [\"bad zone\"]",
        "dnsbl-zones",
    );
    check_rejected("[inbound-checks]\ndns-timeout-ms = 0", "dns-timeout-ms");
    check_rejected(
        "[raft]\nelection-timeout-min-ms = 50",
        "election-timeout-min-ms",
    );
    check_rejected(
        "[bootstrap]\nfile = \"b.toml\"\n[join]\nseeds = [\"http://x\"]\ntoken = \"t\"",
        "not both",
    );
    check_rejected("[join]\nseeds = [\"http://x\"]", "join.token");
}

/// Plain HTTP carries the admin token in clear: a node keeps it open only on a loopback admin
/// address.
#[test]
fn plain_http_on_the_admin_port_needs_a_loopback_address() {
    check_rejected(
        "admin-addr = \"192.0.2.1:7070\"\nadmin-plain-http = true",
        "admin-plain-http is allowed only when admin-addr is a loopback address",
    );
    check_rejected(
        "admin-addr = \"0.0.0.0:7070\"\nadmin-plain-http = true",
        "loopback",
    );
    for addr in ["127.0.0.1:7070", "[::1]:7070"] {
        let text = format!("admin-addr = \"{addr}\"\nadmin-plain-http = true");
        let config = parse(&text, Path::new("/etc/mcluster")).expect("loopback is allowed");
        assert!(config.config.admin_plain_http, "{addr}");
    }
    let config = parse("", Path::new("/etc/mcluster")).expect("defaults");
    assert!(!config.config.admin_plain_http);
}

const NODE_MAIL: &str = "[mail]\nsmtp = \"192.0.2.1:25\"\nsubmission = \"\"\nsmtps = \"\"\n\
                         pop3 = \"192.0.2.1:110\"\npop3s = \"\"\nimap = \"\"\nimaps = \"\"\n";

#[test]
fn vip_config_parses_both_families_and_loopback_mode() {
    let text = format!(
        "{NODE_MAIL}[vip]\naddresses = [\"192.0.2.10/24\", \"2001:db8::10/64\"]\ninterface = \"eth0\"\n"
    );
    let vip = parse(&text, Path::new("/etc/mcluster"))
        .unwrap()
        .config
        .vip
        .expect("a vip");
    assert_eq!(vip.interface, "eth0");
    assert!(!vip.loopback);
    let shown: Vec<String> = vip.addresses.iter().map(ToString::to_string).collect();
    assert_eq!(shown, ["192.0.2.10/24", "2001:db8::10/64"]);

    let text = "[mail]\nsmtp = \"127.0.0.11:2525\"\nsubmission = \"\"\nsmtps = \"\"\npop3 = \"\"\n\
                pop3s = \"\"\nimap = \"\"\nimaps = \"\"\n[vip]\naddresses = [\"127.0.0.10/32\"]\ninterface = \"lo\"\n";
    let vip = parse(text, Path::new("/")).unwrap().config.vip.unwrap();
    assert!(vip.loopback);
    assert!(parse("", Path::new("/")).unwrap().config.vip.is_none());
}

#[test]
fn vip_config_mistakes_are_refused() {
    let vip = |body: &str| format!("{NODE_MAIL}[vip]\n{body}\n");
    check_rejected(
        &vip("addresses = [\"192.0.2.10\"]\ninterface = \"eth0\""),
        "not a CIDR",
    );
    check_rejected(
        &vip("addresses = [\"192.0.2.10/33\"]\ninterface = \"eth0\""),
        "prefix length",
    );
    check_rejected(
        &vip("addresses = [\"192.0.2.10/24\"]"),
        "vip.interface is required",
    );
    check_rejected(
        &vip("addresses = [\"192.0.2.10/24\"]\ninterface = \"lo\""),
        "127.0.0.0/8",
    );
    check_rejected(
        &vip("addresses = [\"127.0.0.10/32\"]\ninterface = \"eth0\""),
        "loopback",
    );
    check_rejected(
        &vip("addresses = [\"192.0.2.1/24\"]\ninterface = \"eth0\""),
        "is on the virtual IP",
    );
    // The default mail listeners are wildcards: they would answer on the VIP everywhere.
    check_rejected(
        "[vip]\naddresses = [\"192.0.2.10/24\"]\ninterface = \"eth0\"\n",
        "listens on every address",
    );
    check_rejected(
        &format!(
            "role = \"witness\"\n{}",
            vip("addresses = [\"192.0.2.10/24\"]\ninterface = \"eth0\"")
        ),
        "witness never holds",
    );
}

#[test]
fn filters_are_off_by_default_and_parse_when_configured() {
    use std::time::Duration;

    use crate::smtp::filters::{Endpoint, OnError, VirusAction};

    let loaded = parse("", Path::new("/")).unwrap();
    assert_eq!(loaded.config.filters, Default::default());
    let loaded = parse(
        "[filters.spamd]\naddress = \"127.0.0.1:783\"\ntag-score = 4.5\nreject-score = 0\n\
         on-error = \"tempfail\"\n[filters.clamd]\naddress = \"/run/clamav/clamd.ctl\"\n\
         action = \"junk\"\ntimeout-ms = 2500\n",
        Path::new("/"),
    )
    .unwrap();
    let spamd = loaded.config.filters.spamd.expect("spamd is on");
    assert_eq!(spamd.endpoint, Endpoint::Tcp("127.0.0.1:783".into()));
    assert_eq!(
        (spamd.tag_score, spamd.junk_score, spamd.reject_score),
        (Some(4.5), Some(8.0), None)
    );
    assert_eq!(spamd.on_error, OnError::TempFail);
    assert_eq!(spamd.max_bytes, 500 * 1024);
    assert!(!spamd.scan_authenticated);
    let clamd = loaded.config.filters.clamd.expect("clamd is on");
    assert_eq!(
        clamd.endpoint,
        Endpoint::Unix("/run/clamav/clamd.ctl".into())
    );
    assert_eq!(clamd.action, VirusAction::Junk);
    assert_eq!(clamd.timeout, Duration::from_millis(2500));
    assert_eq!(clamd.on_error, OnError::Accept);
}

#[test]
fn filter_mistakes_are_refused() {
    check_rejected(
        "[filters.spamd]\naddress = \"localhost\"",
        "filters.spamd.address",
    );
    check_rejected(
        "[filters.clamd]\naddress = \"clamd.ctl\"",
        "filters.clamd.address",
    );
    check_rejected(
        "[filters.spamd]\naddress = \"127.0.0.1:783\"\ntimeout-ms = 0",
        "filters.spamd.timeout-ms",
    );
    check_rejected(
        "[filters.spamd]\naddress = \"127.0.0.1:783\"\njunk-score = -1.0",
        "filters.spamd.junk-score",
    );
    check_rejected(
        "[filters.spamd]\naddress = \"127.0.0.1:783\"\nsubject-tag = \"a\\nb\"",
        "subject-tag",
    );
    check_rejected("[filters.clamd]\naction = \"quarantine\"", "action");
    check_rejected("[filters.clamd]\non-error = \"ignore\"", "on-error");
}

/// The config `mclusterctl join` writes (with a comment, an IPv6 seed and a table after
/// `[join]`, as an operator might add), and what a voter leaves of it.
const JOINED: &str = "# written by mclusterctl\n\
node-id = 2\n\
name = \"n2\"\n\
\n\
[join]\n\
seeds = [\n    \"http://[2001:db8::1]:7070\", # n1\n    \"http://192.0.2.1:7070\",\n]\n\
token = \"abababab\"\n\
\n\
[raft]\n\
heartbeat-interval-ms = 60\n";

#[test]
fn a_voter_drops_the_join_section_and_keeps_everything_else() {
    let kept = crate::config::without_join_section(JOINED)
        .unwrap()
        .expect("there is a token to remove");
    let expected = format!(
        "# written by mclusterctl\nnode-id = 2\nname = \"n2\"\n\n{}\n[raft]\nheartbeat-interval-ms = 60\n",
        crate::config::JOIN_REMOVED_NOTE
    );
    assert_eq!(kept, expected);
    assert!(!kept.contains("abababab"));
    // Nothing left to remove.
    assert_eq!(crate::config::without_join_section(&kept).unwrap(), None);
    // A token written another way is left for the operator, not half-removed.
    let inline = "join = { seeds = [\"http://x\"], token = \"ab\" }\n";
    let err = crate::config::without_join_section(inline).unwrap_err();
    assert!(
        format!("{err:#}").contains("not in a [join] section"),
        "{err:#}"
    );
}

#[test]
fn the_config_file_is_rewritten_in_place_with_its_mode() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mclusterd.toml");
    std::fs::write(&path, JOINED).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    assert!(crate::bootstrap::remove_join_section(&path).unwrap());
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(!text.contains("abababab"), "{text}");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640);
    // The node still starts from it (no [join]: nothing to ask), and a second pass is a no-op.
    let loaded = parse(&text, dir.path()).unwrap();
    assert!(loaded.config.join.is_none());
    assert!(!crate::bootstrap::remove_join_section(&path).unwrap());
    let n_files = std::fs::read_dir(dir.path()).unwrap().count();
    assert_eq!(n_files, 1, "no temporary file is left behind");
}
