//! Tests for `--vip` parsing and the checks before a `[vip]` section is written.

use crate::api::Role;
use crate::node_config::{MailSection, VipSection};
use crate::vip::{VipAddr, VipOptions, validate_interface, vip_section};

/// Every listener on the node's own address, as a VIP needs.
fn own_listeners() -> MailSection {
    let own = |port: u16| Some(format!("192.0.2.11:{port}"));
    MailSection {
        hostname: None,
        smtp: own(25),
        submission: own(587),
        smtps: own(465),
        pop3: own(110),
        pop3s: own(995),
        imap: own(143),
        imaps: own(993),
    }
}

fn options(addresses: &[&str], interface: Option<&str>) -> VipOptions {
    VipOptions {
        addresses: addresses
            .iter()
            .map(|text| text.parse().expect("a valid --vip"))
            .collect(),
        interface: interface.map(str::to_owned),
    }
}

#[track_caller]
fn check_section(options: &VipOptions, mail: &MailSection, expected: Option<VipSection>) {
    let section = vip_section(options, Role::Data, mail, "192.0.2.11:7071").expect("accepted");
    assert_eq!(section, expected);
}

#[track_caller]
fn check_refused(options: &VipOptions, role: Role, mail: &MailSection, expected: &str) {
    let err = vip_section(options, role, mail, "192.0.2.11:7071").expect_err("refused");
    let message = format!("{err:#}");
    assert!(message.contains(expected), "{message}");
}

#[test]
fn addresses_parse_as_cidrs_and_print_canonically() {
    for (text, canonical) in [
        ("192.0.2.10/24", "192.0.2.10/24"),
        ("192.0.2.10/32", "192.0.2.10/32"),
        ("10.1.2.3/8", "10.1.2.3/8"),
        ("192.0.2.0/31", "192.0.2.0/31"),
        ("127.0.0.10/32", "127.0.0.10/32"),
        ("2001:DB8::A/64", "2001:db8::a/64"),
        ("2001:db8::10/128", "2001:db8::10/128"),
    ] {
        let vip: VipAddr = text.parse().unwrap_or_else(|err| panic!("{err}"));
        assert_eq!(vip.to_string(), canonical);
    }
}

#[test]
fn bad_addresses_say_what_is_wrong() {
    for (text, why) in [
        ("192.0.2.10", "expected an address with the prefix length"),
        ("", "expected an address with the prefix length"),
        ("eth0/24", "not an IPv4 or IPv6 address"),
        ("[2001:db8::1]/64", "not an IPv4 or IPv6 address"),
        ("192.0.2.10/", "not a number"),
        ("192.0.2.10/+24", "not a number"),
        ("192.0.2.10/24/1", "not a number"),
        ("192.0.2.10/33", "must be 8 to 32 for an IPv4 address"),
        ("192.0.2.10/7", "must be 8 to 32"),
        ("192.0.2.10/0", "must be 8 to 32"),
        ("2001:db8::10/129", "must be 16 to 128 for an IPv6 address"),
        ("2001:db8::10/8", "must be 16 to 128"),
        ("0.0.0.0/24", "not an address one host can hold"),
        ("::/64", "not an address one host can hold"),
        ("224.0.0.5/24", "not an address one host can hold"),
        ("ff02::1/64", "not an address one host can hold"),
        ("192.0.2.0/24", "the network address of the subnet"),
        ("192.0.2.255/24", "the broadcast address of the subnet"),
        ("192.0.2.7/30", "the broadcast address of the subnet"),
    ] {
        let err = text.parse::<VipAddr>().expect_err(text);
        assert!(
            err.starts_with(&format!("bad virtual IP {text:?}: ")),
            "{err}"
        );
        assert!(err.contains(why), "{text}: {err}");
    }
}

#[test]
fn a_data_node_gets_the_addresses_and_interface_given() {
    check_section(
        &options(&["192.0.2.10/24", "2001:DB8::10/64"], Some("ens18")),
        &own_listeners(),
        Some(VipSection {
            addresses: vec!["192.0.2.10/24".to_owned(), "2001:db8::10/64".to_owned()],
            interface: "ens18".to_owned(),
        }),
    );
    check_section(&VipOptions::default(), &MailSection::default(), None);
}

#[test]
fn loopback_addresses_default_to_loopback_mode() {
    check_section(
        &options(&["127.0.0.10/32"], None),
        &own_listeners(),
        Some(VipSection {
            addresses: vec!["127.0.0.10/32".to_owned()],
            interface: "lo".to_owned(),
        }),
    );
}

#[test]
fn other_addresses_need_an_interface() {
    check_refused(
        &options(&["192.0.2.10/24"], None),
        Role::Data,
        &own_listeners(),
        "--vip-interface NAME is required",
    );
    check_refused(
        &options(&["127.0.0.10/32", "192.0.2.10/24"], None),
        Role::Data,
        &own_listeners(),
        "--vip-interface NAME is required",
    );
}

#[test]
fn loopback_mode_and_real_interfaces_do_not_mix() {
    check_refused(
        &options(&["192.0.2.10/24"], Some("lo")),
        Role::Data,
        &own_listeners(),
        "--vip 192.0.2.10/24 on interface lo: loopback mode takes addresses in 127.0.0.0/8 only",
    );
    check_refused(
        &options(&["::1/128"], Some("lo")),
        Role::Data,
        &own_listeners(),
        "loopback mode takes addresses in 127.0.0.0/8 only",
    );
    check_refused(
        &options(&["127.0.0.10/32"], Some("eth0")),
        Role::Data,
        &own_listeners(),
        "--vip 127.0.0.10/32 is a loopback address, which only works in loopback mode",
    );
}

#[test]
fn a_witness_gets_no_vip() {
    check_refused(
        &options(&["192.0.2.10/24"], Some("eth0")),
        Role::Witness,
        &MailSection::default(),
        "a witness never holds the virtual IP",
    );
    let section = vip_section(
        &VipOptions::default(),
        Role::Witness,
        &MailSection::default(),
        "192.0.2.13:7071",
    )
    .expect("no VIP is fine");
    assert_eq!(section, None);
}

#[test]
fn an_interface_alone_is_refused() {
    check_refused(
        &options(&[], Some("eth0")),
        Role::Data,
        &own_listeners(),
        "--vip-interface without --vip",
    );
}

#[test]
fn the_same_address_twice_is_refused() {
    check_refused(
        &options(&["192.0.2.10/24", "192.0.2.10/32"], Some("eth0")),
        Role::Data,
        &own_listeners(),
        "--vip 192.0.2.10 is given twice",
    );
}

#[test]
fn interface_names_are_checked() {
    for good in ["eth0", "ens18", "enp0s31f6", "lo", "br-lan.100", "a"] {
        validate_interface(good).expect(good);
    }
    for bad in ["", ".", "..", "eth0:1", "a/b", "a b", "abcdefghijklmnop"] {
        let err = validate_interface(bad).expect_err(bad);
        assert!(
            err.to_string().starts_with("bad interface name"),
            "{bad}: {err}"
        );
    }
    check_refused(
        &options(&["192.0.2.10/24"], Some("eth 0")),
        Role::Data,
        &own_listeners(),
        "bad interface name \"eth 0\"",
    );
}

#[test]
fn wildcard_mail_listeners_are_refused_with_the_flags_to_pass() {
    let vip = options(&["192.0.2.10/24"], Some("eth0"));
    // Nothing given: every listener takes the node's default, 0.0.0.0.
    check_refused(
        &vip,
        Role::Data,
        &MailSection::default(),
        "but these would listen on all addresses: smtp on 0.0.0.0:25 (the default), submission \
         on 0.0.0.0:587 (the default), smtps on 0.0.0.0:465 (the default), pop3 on 0.0.0.0:110 \
         (the default), pop3s on 0.0.0.0:995 (the default), imap on 0.0.0.0:143 (the default), \
         imaps on 0.0.0.0:993 (the default). Pass --smtp-addr 192.0.2.11:25 --submission-addr \
         192.0.2.11:587 --smtps-addr 192.0.2.11:465 --pop3-addr 192.0.2.11:110 --pop3s-addr \
         192.0.2.11:995 --imap-addr 192.0.2.11:143 --imaps-addr 192.0.2.11:993 (or \"\" to \
         turn a listener off)",
    );
    // Only IMAP left out, as a config from before IMAP has it: only its flags are asked for.
    let before_imap = MailSection {
        imap: None,
        imaps: None,
        ..own_listeners()
    };
    check_refused(
        &vip,
        Role::Data,
        &before_imap,
        "would listen on all addresses: imap on 0.0.0.0:143 (the default), imaps on \
         0.0.0.0:993 (the default). Pass --imap-addr 192.0.2.11:143 --imaps-addr \
         192.0.2.11:993 (or",
    );
    // Given as a wildcard, IPv6 too; one turned off and the rest on the node's own address.
    let mail = MailSection {
        smtp: Some("[::]:2525".to_owned()),
        pop3: Some(String::new()),
        ..own_listeners()
    };
    check_refused(
        &vip,
        Role::Data,
        &mail,
        "would listen on all addresses: smtp on [::]:2525 (given). Pass --smtp-addr \
         192.0.2.11:2525 (or",
    );
    let err = vip_section(&vip, Role::Data, &mail, "mail1.example:7071").expect_err("wildcard");
    assert!(
        err.to_string().contains("Pass --smtp-addr HOST:2525"),
        "{err}"
    );
    // Turned off entirely is fine.
    let all_off = MailSection {
        smtp: Some(String::new()),
        submission: Some(String::new()),
        smtps: Some(String::new()),
        pop3: Some(String::new()),
        pop3s: Some(String::new()),
        imap: Some(String::new()),
        imaps: Some(String::new()),
        hostname: None,
    };
    vip_section(&vip, Role::Data, &all_off, "192.0.2.11:7071").expect("no listeners");
}

#[test]
fn a_mail_listener_on_the_vip_itself_is_refused() {
    let mail = MailSection {
        submission: Some("192.0.2.10:587".to_owned()),
        ..own_listeners()
    };
    check_refused(
        &options(&["192.0.2.10/24"], Some("eth0")),
        Role::Data,
        &mail,
        "the submission listener 192.0.2.10:587 is on the virtual IP 192.0.2.10/24",
    );
    let mail = MailSection {
        imaps: Some("192.0.2.10:993".to_owned()),
        ..own_listeners()
    };
    check_refused(
        &options(&["192.0.2.10/24"], Some("eth0")),
        Role::Data,
        &mail,
        "the imaps listener 192.0.2.10:993 is on the virtual IP 192.0.2.10/24: listen on the \
         node's own address instead, and the node adds the listener on the VIP while it holds \
         it (pass --imaps-addr OWN-ADDRESS:993)",
    );
}
