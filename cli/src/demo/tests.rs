//! Tests for the demo's fixed layout.

use std::ffi::OsString;
use std::path::PathBuf;

use std::sync::atomic::Ordering;

use nix::sys::signal::{Signal, raise};

use crate::api::Role;
use crate::demo::{DEMO_NODES, catch_stop_signals, default_dir, render_mail_listeners};
use crate::node_config::MailSection;

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
    let layout: Vec<(&str, Role, String, String)> = DEMO_NODES
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
    let n1 = DEMO_NODES[0].mail_section().expect("n1 serves mail");
    assert_eq!(
        n1,
        MailSection {
            hostname: Some("n1.example.test".to_owned()),
            smtp: Some("127.0.0.11:2525".to_owned()),
            submission: Some("127.0.0.11:2587".to_owned()),
            smtps: Some("127.0.0.11:2465".to_owned()),
            pop3: Some("127.0.0.11:2110".to_owned()),
            pop3s: Some("127.0.0.11:2995".to_owned()),
        }
    );
    let n2 = DEMO_NODES[1].mail_section().expect("n2 serves mail");
    assert_eq!(n2.hostname.as_deref(), Some("n2.example.test"));
    assert_eq!(n2.smtp.as_deref(), Some("127.0.0.12:2525"));
    assert_eq!(DEMO_NODES[2].mail_section(), None);
    assert!(DEMO_NODES[2].mail_addrs().is_empty());
}

#[test]
fn summary_lists_the_mail_listeners() {
    assert_eq!(
        render_mail_listeners(),
        "SERVICE     n1               n2\n\
         hostname    n1.example.test  n2.example.test\n\
         smtp        127.0.0.11:2525  127.0.0.12:2525\n\
         submission  127.0.0.11:2587  127.0.0.12:2587\n\
         smtps       127.0.0.11:2465  127.0.0.12:2465\n\
         pop3        127.0.0.11:2110  127.0.0.12:2110\n\
         pop3s       127.0.0.11:2995  127.0.0.12:2995\n"
    );
}

#[test]
fn stop_signals_set_the_flag_instead_of_ending_the_process() {
    let stop = catch_stop_signals().expect("install handlers");
    raise(Signal::SIGHUP).expect("raise SIGHUP");
    assert!(stop.load(Ordering::SeqCst));
}
