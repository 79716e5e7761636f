//! `mclusterctl demo`: a real three-node cluster on this machine (data nodes n1 and n2, witness
//! n3, each its own mclusterd child process) that runs until Ctrl-C or SIGTERM. The data nodes
//! serve SMTP, submission, POP3 and IMAP on unprivileged ports of their own addresses, and the
//! leader also on the virtual IP 127.0.0.10 (loopback mode: nothing is added to any interface, so
//! the demo needs no privileges).
//!
//! SIGINT, SIGTERM and SIGHUP only set a flag (signal-hook), which the demo polls. Blocking the
//! signals and taking them with sigwait() would need no handler, but children inherit a blocked
//! mask across exec and would then ignore our SIGTERM.

use std::ffi::OsString;
use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

use crate::api::{Client, Role, error_status};
use crate::client_config::{ClientConfig, DEFAULT_CLUSTER_NAME};
use crate::commands::{
    Context, LEADER_TIMEOUT, VOTER_TIMEOUT, admin_client, print_backup_note, save_client_config,
    wait_for_leader, wait_for_voter,
};
use crate::files::{self, PRIVATE};
use crate::node_config::{
    MailSection, VipSection, add_mail_section, add_missing_mail_keys, add_vip_section,
};
use crate::node_dir::{self, InitPlan, JoinPlan, NodePaths};
use crate::process::{Interrupted, Launch, MclusterdSearch, NodeProcess, STOP_GRACE, log_tail};
use crate::secrets;
use crate::table::Table;
use crate::vip::{LOOPBACK_INTERFACE, VipOptions, vip_section};

#[cfg(test)]
mod tests;

/// One node of the demo cluster.
#[derive(Debug, Clone)]
pub struct DemoNode {
    pub name: &'static str,
    pub role: Role,
    pub ip: String,
    /// The data nodes' virtual IP, as `--vip` takes it.
    pub vip: String,
}

impl DemoNode {
    pub fn admin_addr(&self) -> String {
        format!("{}:{ADMIN_PORT}", self.ip)
    }

    pub fn raft_addr(&self) -> String {
        format!("{}:{RAFT_PORT}", self.ip)
    }

    /// `n1.example.test`, for data nodes.
    pub fn mail_hostname(&self) -> Option<String> {
        (self.role == Role::Data).then(|| format!("{}.{DEMO_DOMAIN}", self.name))
    }

    /// Each mail service and its listen address, for data nodes (none for the witness).
    pub fn mail_addrs(&self) -> Vec<(&'static str, String)> {
        if self.role != Role::Data {
            return Vec::new();
        }
        MAIL_PORTS
            .iter()
            .map(|(service, port)| (*service, format!("{}:{port}", self.ip)))
            .collect()
    }

    /// The virtual IP options of a data node (none for the witness).
    pub fn vip_options(&self) -> VipOptions {
        if self.role != Role::Data {
            return VipOptions::default();
        }
        VipOptions {
            addresses: vec![self.vip.parse().expect("the demo's VIP is a valid --vip")],
            interface: Some(LOOPBACK_INTERFACE.to_owned()),
        }
    }

    /// The `[vip]` section of a data node's mclusterd.toml.
    pub fn vip_section(&self) -> Result<Option<VipSection>> {
        vip_section(
            &self.vip_options(),
            self.role,
            &self.mail_section().unwrap_or_default(),
            &self.raft_addr(),
        )
    }

    /// The `[mail]` section of a data node's mclusterd.toml.
    pub fn mail_section(&self) -> Option<MailSection> {
        let hostname = self.mail_hostname()?;
        let addr = |port: u16| Some(format!("{}:{port}", self.ip));
        Some(MailSection {
            hostname: Some(hostname),
            smtp: addr(SMTP_PORT),
            submission: addr(SUBMISSION_PORT),
            smtps: addr(SMTPS_PORT),
            pop3: addr(POP3_PORT),
            pop3s: addr(POP3S_PORT),
            imap: addr(IMAP_PORT),
            imaps: addr(IMAPS_PORT),
        })
    }
}

/// The loopback addresses a demo uses: the virtual IP is NET.10 and the nodes n1, n2 and n3
/// are NET.11 to NET.13, where NET is the first three numbers (127.0.0 unless `--net` says
/// otherwise, so that a second demo, or a test, can run beside the first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoNet {
    prefix: String,
}

impl Default for DemoNet {
    fn default() -> DemoNet {
        DemoNet {
            prefix: "127.0.0".to_owned(),
        }
    }
}

impl std::str::FromStr for DemoNet {
    type Err = String;

    fn from_str(text: &str) -> Result<DemoNet, String> {
        let numbers: Vec<Option<u8>> = text.split('.').map(|n| n.parse().ok()).collect();
        match numbers.as_slice() {
            [Some(127), Some(b), Some(c)] => Ok(DemoNet {
                prefix: format!("127.{b}.{c}"),
            }),
            _ => Err(format!(
                "{text:?} is not the first three numbers of a loopback address, such as 127.0.1"
            )),
        }
    }
}

impl DemoNet {
    /// The virtual IP's address.
    pub fn vip_ip(&self) -> String {
        format!("{}.10", self.prefix)
    }

    pub fn nodes(&self) -> [DemoNode; 3] {
        let node = |name, role, last: u8| DemoNode {
            name,
            role,
            ip: format!("{}.{last}", self.prefix),
            vip: format!("{}/32", self.vip_ip()),
        };
        [
            node("n1", Role::Data, 11),
            node("n2", Role::Data, 12),
            node("n3", Role::Witness, 13),
        ]
    }
}

pub const ADMIN_PORT: u16 = 7070;
pub const RAFT_PORT: u16 = 7071;
// The usual mail ports plus 2000 (2525 is a common alternative SMTP port anyway), so that the
// demo needs no privileges and leaves a real mail server alone.
pub const SMTP_PORT: u16 = 2525;
pub const SUBMISSION_PORT: u16 = 2587;
pub const SMTPS_PORT: u16 = 2465;
pub const POP3_PORT: u16 = 2110;
pub const POP3S_PORT: u16 = 2995;
pub const IMAP_PORT: u16 = 2143;
pub const IMAPS_PORT: u16 = 2993;
/// Each mail service (its mclusterd.toml key) and its port, in the order the summary shows.
pub const MAIL_PORTS: [(&str, u16); 7] = [
    ("smtp", SMTP_PORT),
    ("submission", SUBMISSION_PORT),
    ("smtps", SMTPS_PORT),
    ("pop3", POP3_PORT),
    ("pop3s", POP3S_PORT),
    ("imap", IMAP_PORT),
    ("imaps", IMAPS_PORT),
];
pub const DEMO_DOMAIN: &str = "example.test";
pub const DEMO_USER: &str = "demo@example.test";
const DEMO_QUOTA_MB: u64 = 1024;
/// A restarted cluster needs a quorum of processes up before anyone can lead.
const RESTART_LEADER_TIMEOUT: Duration = Duration::from_secs(60);
const SUPERVISE_INTERVAL: Duration = Duration::from_millis(500);
/// Where the demo keeps its own copy of the client config.
const DEMO_CLIENT_CONFIG: &str = "client.toml";

#[derive(Debug, Clone, Default)]
pub struct DemoOptions {
    /// Default: [`default_dir`].
    pub dir: Option<PathBuf>,
    pub password: Option<String>,
    pub mclusterd: Option<PathBuf>,
    pub net: DemoNet,
}

/// `$XDG_RUNTIME_DIR/mcluster-demo`, else `/tmp/mcluster-demo`.
pub fn default_dir(env: impl Fn(&str) -> Option<OsString>) -> PathBuf {
    env("XDG_RUNTIME_DIR")
        .filter(|dir| !dir.is_empty() && Path::new(dir).is_absolute())
        .map_or_else(|| PathBuf::from("/tmp"), PathBuf::from)
        .join("mcluster-demo")
}

/// Runs the demo until a stop signal.
pub fn run(ctx: &Context, options: &DemoOptions) -> Result<()> {
    let stop = catch_stop_signals()?;
    let dir = match &options.dir {
        Some(dir) => dir.clone(),
        None => default_dir(|name| std::env::var_os(name)),
    };
    files::create_dir(&dir)?;
    let dir = std::path::absolute(&dir).context("make the demo directory absolute")?;
    let mclusterd = MclusterdSearch::from_env(options.mclusterd.clone()).find()?;
    check_addresses_free(&options.net)?;

    let mut demo = Demo {
        dir,
        mclusterd,
        client_config_path: ctx.client_config_path.clone(),
        net: options.net.clone(),
        nodes: Vec::new(),
    };
    let mail = match demo.set_up(stop, options.password.as_deref()) {
        Ok(mail) => mail,
        Err(err) if err.is::<Interrupted>() => {
            println!("interrupted: stopping the nodes");
            demo.stop_all();
            return Ok(());
        }
        Err(err) => {
            demo.stop_all();
            return Err(err);
        }
    };
    demo.print_summary(&mail);
    let supervised = demo.supervise(stop);
    println!("stopping the demo");
    demo.stop_all();
    supervised
}

/// Makes SIGINT, SIGTERM and SIGHUP set the returned flag instead of ending the process.
/// Interrupted system calls restart (SA_RESTART), so blocking I/O goes on undisturbed; exec()
/// resets handled signals to their default action, so children are unaffected.
pub fn catch_stop_signals() -> Result<&'static AtomicBool> {
    static STOP_REQUESTED: OnceLock<Arc<AtomicBool>> = OnceLock::new();
    let flag = STOP_REQUESTED.get_or_init(|| Arc::new(AtomicBool::new(false)));
    for signal in [SIGINT, SIGTERM, SIGHUP] {
        signal_hook::flag::register(signal, Arc::clone(flag))
            .with_context(|| format!("install a handler for signal {signal}"))?;
    }
    Ok(flag.as_ref())
}

/// Fails early, and clearly, if another cluster holds the demo's addresses.
fn check_addresses_free(net: &DemoNet) -> Result<()> {
    for node in net.nodes() {
        let admin_addr = node.admin_addr();
        TcpListener::bind(&admin_addr).with_context(|| {
            format!(
                "cannot listen on {admin_addr} for {}: is another mcluster (a demo, or one \
                 started with `init --start`) running?",
                node.name
            )
        })?;
        let raft_addr = node.raft_addr();
        UdpSocket::bind(&raft_addr).with_context(|| {
            format!(
                "cannot bind {raft_addr} (UDP) for {}: is another mcluster running?",
                node.name
            )
        })?;
        for (service, addr) in node.mail_addrs() {
            TcpListener::bind(&addr).with_context(|| {
                format!(
                    "cannot listen on {addr} ({service}) for {}: is another mcluster or mail \
                     server running?",
                    node.name
                )
            })?;
        }
    }
    for (service, port) in MAIL_PORTS {
        let addr = format!("{}:{port}", net.vip_ip());
        TcpListener::bind(&addr).with_context(|| {
            format!(
                "cannot listen on {addr} ({service} on the virtual IP): is another mcluster or \
                 mail server running?"
            )
        })?;
    }
    Ok(())
}

/// The demo's mail account, for the summary.
struct Mail {
    /// The password to show, if the demo set one.
    password: Option<String>,
}

struct Demo {
    dir: PathBuf,
    mclusterd: PathBuf,
    client_config_path: PathBuf,
    net: DemoNet,
    nodes: Vec<NodeProcess>,
}

impl Demo {
    /// Creates or restarts the cluster and makes sure the demo domain and user exist.
    fn set_up(&mut self, stop: &AtomicBool, password: Option<&str>) -> Result<Mail> {
        let [first, others @ ..] = self.net.nodes();
        let first_paths = self.paths(&first)?;
        let saved_client_config = self.dir.join(DEMO_CLIENT_CONFIG);
        let fresh = !first_paths.config.exists();
        let mut client_config = if fresh {
            let outcome = node_dir::init_files(&InitPlan {
                dir: self.dir.clone(),
                name: first.name.to_owned(),
                raft_addr: first.raft_addr(),
                admin_addr: first.admin_addr(),
                cluster_name: DEFAULT_CLUSTER_NAME.to_owned(),
                data_dir: node_dir::DEFAULT_DATA_DIR.to_owned(),
                mail: first.mail_section().unwrap_or_default(),
                vip: first.vip_options(),
            })?;
            println!("created a new demo cluster in {}", self.dir.display());
            outcome.client_config
        } else {
            println!(
                "restarting the demo cluster in {} (remove that directory to start afresh)",
                self.dir.display()
            );
            ClientConfig::load(&saved_client_config).with_context(|| {
                format!(
                    "{} holds a demo cluster but not its client config; remove the directory \
                     to start afresh",
                    self.dir.display()
                )
            })?
        };
        if !fresh {
            self.check_same_net(&first_paths, &first)?;
            // A demo an older build made speaks plain HTTP, which the cluster refuses once
            // this build raises its version: speak HTTPS with the CA init left here.
            if client_config.ca_cert_pem.is_none() {
                let ca_pem = crate::files::read_text(&self.dir.join(node_dir::CA_CERT_FILE))?;
                client_config.use_https(ca_pem);
            }
        }
        self.save_client_config(&client_config, true)?;
        if !fresh {
            self.add_missing_sections()?;
        }

        // Start every node that exists, then wait: after a restart no node can lead alone.
        for node in self.net.nodes() {
            let paths = self.paths(&node)?;
            if paths.config.exists() {
                self.start(node.name, &paths)?;
            }
        }
        let timeout = if fresh {
            LEADER_TIMEOUT
        } else {
            RESTART_LEADER_TIMEOUT
        };
        let client = self.client(&client_config)?;
        let status = wait_for_leader(&client, timeout, stop, &mut self.processes())?;
        println!("{}", crate::commands::leader_line(&status));

        for node in &others {
            let paths = self.paths(node)?;
            if paths.config.exists() {
                continue;
            }
            let join_token = client_config.join_token()?.to_owned();
            let outcome = node_dir::join_files(
                &JoinPlan {
                    dir: self.dir.clone(),
                    name: node.name.to_owned(),
                    role: node.role,
                    raft_addr: node.raft_addr(),
                    admin_addr: node.admin_addr(),
                    data_dir: node_dir::DEFAULT_DATA_DIR.to_owned(),
                    seeds: client_config.admin_urls.clone(),
                    mail: node.mail_section().unwrap_or_default(),
                    vip: node.vip_options(),
                },
                &join_token,
                client_config.ca_cert_pem.as_deref(),
            )?;
            let url = client_config.url_for(&node.admin_addr());
            client_config.add_admin_url(&url);
            self.save_client_config(&client_config, false)?;
            let node_id = outcome.node_file.node_id;
            println!(
                "{} joined as node {node_id} ({}); starting it",
                node.name, node.role
            );
            self.start(node.name, &outcome.node)?;
            let client = self.client(&client_config)?;
            wait_for_voter(&client, node_id, VOTER_TIMEOUT, stop, &mut self.processes())?;
            println!("{} is a voter", node.name);
        }

        let client = admin_client(&client_config)?;
        ensure_domain(&client)?;
        ensure_user(&client, password)
    }

    /// A demo made before the demo served mail has data nodes without a `[mail]` section, which
    /// would listen on the privileged default ports, one made before the virtual IP has no
    /// `[vip]`, and one made before IMAP has no `imap` and `imaps` in `[mail]`, whose defaults
    /// listen on all addresses (a node with a VIP refuses that): give them the demo's.
    fn add_missing_sections(&self) -> Result<()> {
        for node in self.net.nodes() {
            let paths = self.paths(&node)?;
            if !paths.config.exists() {
                continue;
            }
            if let Some(mail) = node.mail_section() {
                self.update_config(&paths, "mail listeners", |text| {
                    add_mail_section(text, &mail)
                })?;
                self.update_config(&paths, "missing mail listeners", |text| {
                    add_missing_mail_keys(text, &mail)
                })?;
            }
            if let Some(vip) = node.vip_section()? {
                self.update_config(&paths, "virtual IP", |text| add_vip_section(text, &vip))?;
            }
        }
        Ok(())
    }

    /// Rewrites a node's config with `add` if it changes anything.
    fn update_config(
        &self,
        paths: &NodePaths,
        what: &str,
        add: impl Fn(&str) -> Result<Option<String>>,
    ) -> Result<()> {
        let text = files::read_text(&paths.config)?;
        let updated =
            add(&text).with_context(|| format!("add the {what} to {}", paths.config.display()))?;
        if let Some(updated) = updated {
            files::write_atomic(&paths.config, updated.as_bytes(), PRIVATE)?;
            println!(
                "added the demo's {what} to {} (written by an older mclusterctl)",
                paths.config.display()
            );
        }
        Ok(())
    }

    /// A demo directory keeps the addresses it was made with: restarted with another `--net`,
    /// its nodes would listen on the old ones while the summary showed the new.
    fn check_same_net(&self, paths: &NodePaths, first: &DemoNode) -> Result<()> {
        let made_with = paths.load_config()?.raft_addr;
        if made_with != first.raft_addr() {
            bail!(
                "{} holds a demo made on other addresses ({} has {made_with}, this --net gives \
                 {}): pass the --net it was made with, or another --dir",
                self.dir.display(),
                first.name,
                first.raft_addr()
            );
        }
        Ok(())
    }

    fn paths(&self, node: &DemoNode) -> Result<NodePaths> {
        NodePaths::new(&self.dir.join(node.name))
    }

    fn client(&self, client_config: &ClientConfig) -> Result<Client> {
        // The waits poll on their own; a single request need not wait out an election.
        Ok(admin_client(client_config)?.with_no_leader_patience(Duration::ZERO))
    }

    fn processes(&mut self) -> Vec<&mut NodeProcess> {
        self.nodes.iter_mut().collect()
    }

    fn start(&mut self, name: &str, paths: &NodePaths) -> Result<()> {
        let node_process = NodeProcess::spawn(&self.mclusterd, name, paths, Launch::Attached)?;
        self.nodes.push(node_process);
        Ok(())
    }

    /// Writes the client config to the demo directory and to where `mclusterctl` looks for it.
    fn save_client_config(&self, client_config: &ClientConfig, first_time: bool) -> Result<()> {
        client_config.save(&self.dir.join(DEMO_CLIENT_CONFIG))?;
        let backup = save_client_config(client_config, &self.client_config_path)?;
        if first_time {
            print_backup_note(backup.as_deref());
        }
        Ok(())
    }

    fn print_summary(&self, mail: &Mail) {
        let mut table = Table::new(&["NODE", "ROLE", "PID", "ADMIN", "RAFT", "LOG"]);
        for node_process in &self.nodes {
            let demo_node = self
                .net
                .nodes()
                .into_iter()
                .find(|demo_node| demo_node.name == node_process.name);
            let (role, admin, raft) = demo_node.map_or_else(
                || ("?".to_owned(), "?".to_owned(), "?".to_owned()),
                |demo_node| {
                    (
                        demo_node.role.to_string(),
                        // set_up made the demo's client config speak HTTPS.
                        format!("https://{}", demo_node.admin_addr()),
                        demo_node.raft_addr(),
                    )
                },
            );
            table.push_row(vec![
                node_process.name.clone(),
                role,
                node_process.pid().to_string(),
                admin,
                raft,
                node_process.paths.log.display().to_string(),
            ]);
        }
        println!();
        print!("{}", table.render());
        println!();
        print!("{}", render_mail_listeners(&self.net));
        println!("{}", vip_banner(&self.net));
        println!();
        match &mail.password {
            Some(password) => println!("mail user {DEMO_USER}, password {password}"),
            None => println!("mail user {DEMO_USER} (password unchanged; --password sets one)"),
        }
        println!(
            "TLS (STARTTLS, SMTPS, POP3S, IMAPS) presents the cluster's certificate, self-signed \
             until `mclusterctl tls set` replaces it; `mclusterctl tls show` prints it"
        );
        println!(
            "client config {}: try `mclusterctl status` in another terminal",
            self.client_config_path.display()
        );
        println!(
            "Ctrl-C stops the cluster; its data stays in {} and `mclusterctl demo` starts it again",
            self.dir.display()
        );
    }

    /// Waits for a stop signal, reporting nodes that die meanwhile. Fails if all of them die.
    fn supervise(&mut self, stop: &AtomicBool) -> Result<()> {
        let mut reported = vec![false; self.nodes.len()];
        while !stop.load(Ordering::SeqCst) {
            thread::sleep(SUPERVISE_INTERVAL);
            if stop.load(Ordering::SeqCst) {
                break;
            }
            for (node_process, reported) in self.nodes.iter_mut().zip(&mut reported) {
                if *reported {
                    continue;
                }
                let status = match node_process.exit_status() {
                    Ok(Some(status)) => status.to_string(),
                    Ok(None) => continue,
                    Err(err) => format!("{err:#}"),
                };
                *reported = true;
                println!(
                    "{} (pid {}) exited unexpectedly ({status}); the others keep running. \
                     The end of {}:\n{}",
                    node_process.name,
                    node_process.pid(),
                    node_process.paths.log.display(),
                    log_tail(&node_process.paths.log)
                );
            }
            if reported.iter().all(|reported| *reported) {
                bail!("every node of the demo has exited");
            }
        }
        Ok(())
    }

    /// SIGTERM to every node, then up to 10 s for each before SIGKILL.
    fn stop_all(&mut self) {
        for node_process in &mut self.nodes {
            if let Err(err) = node_process.terminate() {
                eprintln!("{}: {err:#}", node_process.name);
            }
        }
        for node_process in &mut self.nodes {
            let stopped = node_process.wait_or_kill(STOP_GRACE);
            println!("{}: {stopped}", node_process.name);
        }
        self.nodes.clear();
    }
}

/// The data nodes' mail host names and listen addresses, one column per node, after a column
/// for the virtual IP.
pub fn render_mail_listeners(net: &DemoNet) -> String {
    let mail_nodes: Vec<DemoNode> = net
        .nodes()
        .into_iter()
        .filter(|node| node.role == Role::Data)
        .collect();
    let headers: Vec<&str> = ["SERVICE", "VIRTUAL IP"]
        .into_iter()
        .chain(mail_nodes.iter().map(|node| node.name))
        .collect();
    let mut table = Table::new(&headers);
    let mut hostnames = vec!["hostname".to_owned(), "the leader's".to_owned()];
    hostnames.extend(mail_nodes.iter().filter_map(DemoNode::mail_hostname));
    table.push_row(hostnames);
    for (service, port) in MAIL_PORTS {
        let mut row = vec![service.to_owned(), format!("{}:{port}", net.vip_ip())];
        row.extend(mail_nodes.iter().map(|node| format!("{}:{port}", node.ip)));
        table.push_row(row);
    }
    table.render()
}

/// Which address mail clients should use, and why.
pub fn vip_banner(net: &DemoNet) -> String {
    let vip = net.vip_ip();
    format!(
        "SMTP via the virtual IP: {vip}:{SMTP_PORT} (POP3 {vip}:{POP3_PORT}, IMAP \
         {vip}:{IMAP_PORT}): the leader answers there, and after a failover the new leader \
         does; each node's own address reaches only that node"
    )
}

impl Drop for Demo {
    /// Children must not outlive the demo, even when it ends by a panic.
    fn drop(&mut self) {
        self.stop_all();
    }
}

fn ensure_domain(client: &Client) -> Result<()> {
    match client.add_domain(DEMO_DOMAIN) {
        Ok(_) => println!("added domain {DEMO_DOMAIN}"),
        Err(err) if error_status(&err) == Some(409) => println!("domain {DEMO_DOMAIN} exists"),
        Err(err) => return Err(err).context(format!("add domain {DEMO_DOMAIN}")),
    }
    Ok(())
}

/// Creates the demo user (with `password` or a random one), or sets the password of an existing
/// one if `password` is given.
fn ensure_user(client: &Client, password: Option<&str>) -> Result<Mail> {
    let chosen = password.map_or_else(secrets::random_password, str::to_owned);
    match client.add_account(DEMO_USER, &chosen, DEMO_QUOTA_MB) {
        Ok(_) => {
            println!("added user {DEMO_USER}");
            Ok(Mail {
                password: Some(chosen),
            })
        }
        Err(err) if error_status(&err) == Some(409) => match password {
            Some(password) => {
                client
                    .set_password(DEMO_USER, password)
                    .with_context(|| format!("set the password of {DEMO_USER}"))?;
                println!("user {DEMO_USER} exists; set its password");
                Ok(Mail {
                    password: Some(password.to_owned()),
                })
            }
            None => Ok(Mail { password: None }),
        },
        Err(err) => Err(err).context(format!("add user {DEMO_USER}")),
    }
}
