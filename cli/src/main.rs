//! mclusterctl: parses flags and hands each command to the `cli` library.

use std::path::PathBuf;
use std::process::ExitCode;
use std::str::FromStr;

use clap::{Args, Parser, Subcommand};

use cli::access;
use cli::api::{DkimAlgorithm, QueueAction, Role};
use cli::commands::{
    self, Context, DEFAULT_QUEUE_LIMIT, DEFAULT_QUOTA_MB, InitOptions, JoinOptions,
    MAX_QUEUE_LIMIT, TokenKind,
};
use cli::demo::{self, DemoOptions};
use cli::node_config::MailSection;
use cli::node_dir::JoinPlan;
use cli::outbound_policy;
use cli::protection;
use cli::upgrade;
use cli::vip::{VipAddr, VipOptions};

/// Build and administer an mcluster mail cluster through its admin API.
#[derive(Debug, Parser)]
#[command(name = "mclusterctl", version)]
struct Cli {
    /// Client config file [default: $MCLUSTER_CLIENT_CONFIG, else
    /// $XDG_CONFIG_HOME/mcluster/client.toml, else ~/.config/mcluster/client.toml]
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a cluster: its CA, the first node's directory and the client config
    Init(InitArgs),
    /// Admit a new node to the cluster and write its directory
    Join(JoinArgs),
    /// Remove a node from the cluster
    Leave {
        /// Node id or name
        node: String,
        /// Remove a data node even when no other data node can take the copies it holds (its
        /// messages then have one copy until a replacement joins)
        #[arg(long)]
        force: bool,
    },
    /// Show the cluster, its leader and every node's replication state
    Status(JsonArg),
    /// List the cluster's members
    Members(JsonArg),
    /// Move leadership to another data node; with a virtual IP, wait (up to 5 s) until the new
    /// leader holds it, and only warn if it does not (leadership did move)
    Failover {
        /// Node id or name of the new leader [default: the cluster picks one]
        #[arg(long, value_name = "NODE")]
        to: Option<String>,
    },
    /// Manage mail domains
    #[command(subcommand)]
    Domain(DomainCommand),
    /// Manage mail accounts
    #[command(subcommand)]
    User(UserCommand),
    /// Show or replace the TLS certificate that mail clients see
    #[command(subcommand)]
    Tls(TlsCommand),
    /// Show or change the cluster-wide mail policy (limits, timeouts, degraded mode)
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Look at and act on the outbound queue (mail waiting for remote servers)
    #[command(subcommand)]
    Queue(QueueCommand),
    /// Show or change the cluster-wide outbound delivery policy (retries, concurrency, TLS,
    /// smarthost)
    #[command(subcommand)]
    Outbound(OutboundCommand),
    /// Manage the DKIM keys that sign outbound mail, one per domain
    #[command(subcommand)]
    Dkim(DkimCommand),
    /// Show or change the cluster-wide abuse limits (connection rate, login lockouts, sender
    /// checks)
    #[command(subcommand)]
    Protection(ProtectionCommand),
    /// List, impose or lift login lockouts (an account or a client IP)
    #[command(subcommand)]
    Lockouts(LockoutsCommand),
    /// Manage the cluster-wide block and allow lists (client IPs and networks, HELO and
    /// sender domains, sender and recipient addresses)
    #[command(subcommand)]
    Access(AccessCommand),
    /// Replace the join token (or, with --admin, the admin token)
    #[command(subcommand)]
    Token(TokenCommand),
    /// Follow a rolling upgrade: the cluster version, each member's build; finalize it
    #[command(subcommand)]
    Upgrade(UpgradeCommand),
    /// Change this machine's client config
    #[command(subcommand)]
    ClientConfig(ClientConfigCommand),
    /// Run a three-node cluster on this machine until Ctrl-C
    Demo(DemoArgs),
    /// Write mclusterctl's manual pages (mclusterctl.1 and one per subcommand) into DIR, for
    /// packaging
    #[command(hide = true)]
    Man { dir: PathBuf },
}

#[derive(Debug, PartialEq, Eq, Subcommand)]
enum ClientConfigCommand {
    /// Speak HTTPS to the admin API, checking the nodes' certificates against the cluster CA
    /// (for a client config an older `mclusterctl init` wrote with http:// URLs)
    UseHttps {
        /// The cluster CA certificate: ca.crt in the directory `mclusterctl init` wrote, or in
        /// any node's directory [default: the one the client config already holds]
        #[arg(long, value_name = "FILE")]
        ca_cert: Option<PathBuf>,
    },
}

#[derive(Debug, PartialEq, Eq, Subcommand)]
enum TokenCommand {
    /// Make a new random join token: the cluster refuses the old one from then on, and the
    /// client config gets the new one
    Rotate {
        /// Rotate the admin token instead (every other machine's client config must then get
        /// the new one)
        #[arg(long, conflicts_with = "read_only")]
        admin: bool,
        /// Make a new read-only token instead (it opens every GET and nothing else; the
        /// previous read-only token stops working)
        #[arg(long)]
        read_only: bool,
    },
}

#[derive(Debug, PartialEq, Eq, Args)]
struct JsonArg {
    /// Print JSON instead of a table
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct DataDirArg {
    /// Where the node keeps its store and message files: an absolute path on the server, such
    /// as /var/lib/mcluster (what deploy/mclusterd.service allows), or a path relative to the
    /// node's directory
    #[arg(long, value_name = "DIR", default_value = cli::node_dir::DEFAULT_DATA_DIR)]
    data_dir: String,
}

#[derive(Debug, Args)]
struct StartArgs {
    /// Start mclusterd in the background and wait until the node is ready
    #[arg(long)]
    start: bool,
    /// The mclusterd binary [default: $MCLUSTERD, else next to mclusterctl, else on PATH]
    #[arg(long, value_name = "PATH")]
    mclusterd: Option<PathBuf>,
}

/// Mail listeners of a data node; an option not given takes mclusterd's default.
#[derive(Debug, Args)]
#[command(next_help_heading = "Mail options (data nodes only)")]
struct MailArgs {
    /// Name in mail greetings and Received headers [default: the machine's host name]
    #[arg(long, value_name = "NAME")]
    mail_hostname: Option<String>,
    /// SMTP listen address for inbound mail; "" turns it off [default: 0.0.0.0:25]
    #[arg(long, value_name = "HOST:PORT")]
    smtp_addr: Option<String>,
    /// Submission (STARTTLS, AUTH) listen address; "" turns it off [default: 0.0.0.0:587]
    #[arg(long, value_name = "HOST:PORT")]
    submission_addr: Option<String>,
    /// Submission over implicit TLS listen address; "" turns it off [default: 0.0.0.0:465]
    #[arg(long, value_name = "HOST:PORT")]
    smtps_addr: Option<String>,
    /// POP3 listen address; "" turns it off [default: 0.0.0.0:110]
    #[arg(long, value_name = "HOST:PORT")]
    pop3_addr: Option<String>,
    /// POP3 over implicit TLS listen address; "" turns it off [default: 0.0.0.0:995]
    #[arg(long, value_name = "HOST:PORT")]
    pop3s_addr: Option<String>,
    /// IMAP (STARTTLS) listen address; "" turns it off [default: 0.0.0.0:143]
    #[arg(long, value_name = "HOST:PORT")]
    imap_addr: Option<String>,
    /// IMAP over implicit TLS listen address; "" turns it off [default: 0.0.0.0:993]
    #[arg(long, value_name = "HOST:PORT")]
    imaps_addr: Option<String>,
}

impl MailArgs {
    fn into_section(self) -> MailSection {
        let MailArgs {
            mail_hostname,
            smtp_addr,
            submission_addr,
            smtps_addr,
            pop3_addr,
            pop3s_addr,
            imap_addr,
            imaps_addr,
        } = self;
        MailSection {
            hostname: mail_hostname,
            smtp: smtp_addr,
            submission: submission_addr,
            smtps: smtps_addr,
            pop3: pop3_addr,
            pop3s: pop3s_addr,
            imap: imap_addr,
            imaps: imaps_addr,
        }
    }
}

/// The virtual IP of a data node: it holds these addresses while it is the Raft leader.
#[derive(Debug, Args)]
#[command(next_help_heading = "Virtual IP options (data nodes only)")]
struct VipArgs {
    /// A floating address with the prefix length of its subnet, such as 192.0.2.10/24 or
    /// 2001:db8::10/64 (repeatable); give every data node the same ones. Needs every mail
    /// listener on the node's own address (no 0.0.0.0 or ::)
    #[arg(long = "vip", value_name = "CIDR", value_parser = VipAddr::from_str)]
    vips: Vec<VipAddr>,
    /// Interface the addresses go on, such as eth0 or ens18 [default: lo if every --vip is in
    /// 127.0.0.0/8 (loopback mode: nothing is added), else required]
    #[arg(long, value_name = "NAME", requires = "vips")]
    vip_interface: Option<String>,
}

impl VipArgs {
    fn into_options(self) -> VipOptions {
        let VipArgs {
            vips,
            vip_interface,
        } = self;
        VipOptions {
            addresses: vips,
            interface: vip_interface,
        }
    }
}

#[derive(Debug, Args)]
struct InitArgs {
    /// Directory for the CA and the node directories
    #[arg(long)]
    dir: PathBuf,
    /// Name of the first node
    #[arg(long, default_value = "n1")]
    name: String,
    /// Raft (QUIC, UDP) address of the first node
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.11:7071")]
    raft_addr: String,
    /// Admin API (HTTP) address of the first node
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.11:7070")]
    admin_addr: String,
    /// Cluster name, shown by `status` and in the CA's name
    #[arg(long, value_name = "NAME", default_value = "mcluster")]
    cluster_name: String,
    #[command(flatten)]
    data: DataDirArg,
    #[command(flatten)]
    start: StartArgs,
    #[command(flatten)]
    mail: MailArgs,
    #[command(flatten)]
    vip: VipArgs,
}

#[derive(Debug, Args)]
struct JoinArgs {
    /// Directory to hold the node's directory
    #[arg(long)]
    dir: PathBuf,
    /// Name of the new node
    #[arg(long)]
    name: String,
    /// Raft (QUIC, UDP) address of the new node
    #[arg(long, value_name = "HOST:PORT")]
    raft_addr: String,
    /// Admin API (HTTP) address of the new node
    #[arg(long, value_name = "HOST:PORT")]
    admin_addr: String,
    /// data or witness
    #[arg(long, default_value = "data")]
    role: Role,
    #[command(flatten)]
    data: DataDirArg,
    /// Admin URL of a member to ask (repeatable) [default: the client config's admin-urls]
    #[arg(long = "seed", value_name = "URL")]
    seeds: Vec<String>,
    #[command(flatten)]
    start: StartArgs,
    #[command(flatten)]
    mail: MailArgs,
    #[command(flatten)]
    vip: VipArgs,
}

#[derive(Debug, Subcommand)]
enum DomainCommand {
    /// Add a mail domain
    Add {
        /// Domain name, such as example.test
        name: String,
    },
    /// List mail domains
    List(JsonArg),
    /// Delete a mail domain (it must have no accounts or aliases)
    Del {
        /// Domain name
        name: String,
    },
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Add an account; without --password, read one line from standard input if it is not a
    /// terminal, else make up a password and print it
    Add {
        /// Mail address, user@domain
        address: String,
        #[command(flatten)]
        password: PasswordArg,
        /// Mailbox quota in MB
        #[arg(long, value_name = "N", default_value_t = DEFAULT_QUOTA_MB)]
        quota_mb: u64,
    },
    /// List accounts
    List {
        /// Only the accounts of this domain
        #[arg(long)]
        domain: Option<String>,
        #[command(flatten)]
        json: JsonArg,
    },
    /// Show one account
    Show {
        /// Mail address, user@domain
        address: String,
        #[command(flatten)]
        json: JsonArg,
    },
    /// Delete an account
    Del {
        /// Mail address, user@domain
        address: String,
    },
    /// Set an account's password (read or made up as for `user add`)
    Passwd {
        /// Mail address, user@domain
        address: String,
        #[command(flatten)]
        password: PasswordArg,
    },
    /// Let an account log in and receive mail again
    Enable {
        /// Mail address, user@domain
        address: String,
    },
    /// Refuse logins and mail for an account
    Disable {
        /// Mail address, user@domain
        address: String,
    },
}

#[derive(Debug, Subcommand)]
enum TlsCommand {
    /// Print the certificate chain (PEM) that SMTP, POP3 and IMAP present to mail clients
    Show,
    /// Replace the certificate and key that every node presents to mail clients
    Set {
        /// The certificate chain, leaf first (PEM)
        #[arg(long, value_name = "FILE")]
        cert: PathBuf,
        /// The private key of the leaf certificate (PEM)
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum PolicyCommand {
    /// Show the mail policy
    Show(JsonArg),
    /// Change some keys of the mail policy, such as `degraded-accept=refuse max-recipients=200`
    Set {
        /// KEY=VALUE; a value that reads as a number or true/false is sent as one
        #[arg(value_name = "KEY=VALUE", required = true)]
        settings: Vec<String>,
    },
}

#[derive(Debug, PartialEq, Eq, Subcommand)]
enum QueueCommand {
    /// List queued messages in queue id order, one page at a time
    List {
        /// Show at most N messages
        #[arg(long, value_name = "N", default_value_t = DEFAULT_QUEUE_LIMIT,
              value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_QUEUE_LIMIT)))]
        limit: u32,
        /// Start after this queue id (the last one of the previous page)
        #[arg(long, value_name = "ID")]
        after: Option<String>,
        #[command(flatten)]
        json: JsonArg,
    },
    /// Show one queued message and each of its recipients
    Show {
        /// Queue id
        id: String,
        #[command(flatten)]
        json: JsonArg,
    },
    /// Make a message due now (and release it if held)
    Retry {
        /// Queue id
        id: String,
    },
    /// Keep a message from being attempted until it is released
    Hold {
        /// Queue id
        id: String,
    },
    /// Let a held message be attempted again at its next attempt time
    Release {
        /// Queue id
        id: String,
    },
    /// Remove a message from the queue without telling its sender
    Delete {
        /// Queue id
        id: String,
    },
}

#[derive(Debug, PartialEq, Eq, Subcommand)]
enum ProtectionCommand {
    /// Show the protection policy
    Show(JsonArg),
    /// Change some keys, such as `imap-connections-per-minute-per-ip=600
    /// min-password-length=12 exempt-networks=127.0.0.0/8,10.1.0.0/16`
    Set {
        /// KEY=VALUE; exempt-networks takes a comma-separated list (empty: none)
        #[arg(value_name = "KEY=VALUE", required = true)]
        settings: Vec<String>,
    },
}

#[derive(Debug, PartialEq, Eq, Subcommand)]
enum UpgradeCommand {
    /// The active cluster version, the build each member runs, and what waits for a newer
    /// cluster version
    Status(JsonArg),
    /// Raise the cluster version to the newest every member runs (after this, no member can
    /// go back to the previous build)
    Finalize,
}

#[derive(Debug, PartialEq, Eq, Subcommand)]
enum LockoutsCommand {
    /// List the lockouts that still run
    List {
        /// Also those that have ended
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        json: JsonArg,
    },
    /// Lock logins out: ip:ADDRESS (every login from it) or account:NAME (from anywhere)
    Add {
        target: String,
        /// For this long (default: the policy's lockout-secs)
        #[arg(long)]
        secs: Option<u64>,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Lift a lockout before it ends
    Remove { target: String },
}

#[derive(Debug, PartialEq, Eq, Subcommand)]
enum AccessCommand {
    /// List the entries that still match
    List {
        /// Only this list: block or allow
        list: Option<String>,
        /// Also expired entries
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        json: JsonArg,
    },
    /// Add (or replace) an entry: block|allow, then an IP, a CIDR, a domain (`*.example.com`
    /// for its subdomains) or an address (`user@example.com`, `*@example.com`, `user@*`)
    Add {
        list: String,
        pattern: String,
        /// Why; refused clients are told this
        #[arg(long)]
        comment: Option<String>,
        /// Stop matching after this long: 90s, 30m, 1h, 7d, 2w
        #[arg(long, value_name = "SPAN")]
        expires: Option<String>,
    },
    /// Remove an entry
    Remove { list: String, pattern: String },
}

#[derive(Debug, PartialEq, Eq, Subcommand)]
enum OutboundCommand {
    /// Show the outbound policy (of the smarthost password, only whether one is set)
    Show(JsonArg),
    /// Change some keys of the outbound policy, such as `retry-interval-secs=600
    /// smarthost=relay.example.net:587 smarthost-mode=on-failure smarthost-user=mx1`
    Set {
        /// KEY=VALUE; a number or true/false is sent as one, except for the text keys (tls and
        /// the smarthost keys)
        #[arg(
            value_name = "KEY=VALUE",
            required_unless_present = "smarthost_password_file"
        )]
        settings: Vec<String>,
        /// Read the smarthost password from FILE (one line; "-": standard input), which keeps
        /// it out of the process list and the shell history
        #[arg(long, value_name = "FILE")]
        smarthost_password_file: Option<PathBuf>,
    },
}

#[derive(Debug, PartialEq, Eq, Subcommand)]
enum DkimCommand {
    /// Make a new signing key for a domain, replacing its key, and print the DNS TXT record to
    /// publish
    Generate {
        /// Domain name
        domain: String,
        /// The key's DNS selector [default: mc and today's date, such as mc20251122]
        #[arg(long, value_name = "S")]
        selector: Option<String>,
        /// rsa (2048 bits) or ed25519 (RFC 8463; not every receiver checks it) [default: rsa]
        #[arg(long, value_name = "ALG")]
        algorithm: Option<DkimAlgorithm>,
        #[command(flatten)]
        json: JsonArg,
    },
    /// Use a private key of your own (PKCS#8 PEM, or PKCS#1 PEM for RSA) as a domain's
    /// signing key, replacing its key
    Import {
        /// Domain name
        domain: String,
        /// The DNS selector its record is published under
        #[arg(long, value_name = "S")]
        selector: String,
        /// The private key file
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        #[command(flatten)]
        json: JsonArg,
    },
    /// Show a domain's key and the DNS TXT record that publishes it
    Show {
        /// Domain name
        domain: String,
        #[command(flatten)]
        json: JsonArg,
    },
    /// List every domain's signing key
    List(JsonArg),
    /// Delete a domain's signing key: its mail goes out unsigned
    Delete {
        /// Domain name
        domain: String,
    },
}

#[derive(Debug, Args)]
struct PasswordArg {
    /// The password (visible to other local users in the process list; prefer standard input)
    #[arg(long, value_name = "PW")]
    password: Option<String>,
}

#[derive(Debug, Args)]
struct DemoArgs {
    /// Directory of the demo cluster [default: $XDG_RUNTIME_DIR/mcluster-demo, else
    /// /tmp/mcluster-demo]
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Password of demo@example.test [default: a random one, printed]
    #[arg(long, value_name = "PW")]
    password: Option<String>,
    /// The mclusterd binary [default: $MCLUSTERD, else next to mclusterctl, else on PATH]
    #[arg(long, value_name = "PATH")]
    mclusterd: Option<PathBuf>,
    /// The first three numbers of the demo's loopback addresses: the virtual IP is NET.10 and
    /// the nodes NET.11 to NET.13 (another NET runs a second demo beside the first)
    #[arg(long, value_name = "NET", default_value = "127.0.0")]
    net: demo::DemoNet,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// The manual pages of every visible command, generated from the flag definitions.
fn write_man_pages(dir: &std::path::Path) -> anyhow::Result<()> {
    use anyhow::Context as _;
    use clap::CommandFactory;
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    clap_mangen::generate_to(Cli::command(), dir)
        .with_context(|| format!("write manual pages into {}", dir.display()))
}

fn run(cli: Cli) -> anyhow::Result<()> {
    if let Command::Man { dir } = &cli.command {
        return write_man_pages(dir);
    }
    let ctx = Context::from_env(cli.config)?;
    match cli.command {
        Command::Init(args) => commands::init(
            &ctx,
            &InitOptions {
                dir: args.dir,
                name: args.name,
                raft_addr: args.raft_addr,
                admin_addr: args.admin_addr,
                cluster_name: args.cluster_name,
                data_dir: args.data.data_dir,
                mail: args.mail.into_section(),
                vip: args.vip.into_options(),
                start: args.start.start,
                mclusterd: args.start.mclusterd,
            },
        ),
        Command::Join(args) => commands::join(
            &ctx,
            &JoinOptions {
                plan: JoinPlan {
                    dir: args.dir,
                    name: args.name,
                    role: args.role,
                    raft_addr: args.raft_addr,
                    admin_addr: args.admin_addr,
                    data_dir: args.data.data_dir,
                    seeds: args.seeds,
                    mail: args.mail.into_section(),
                    vip: args.vip.into_options(),
                },
                start: args.start.start,
                mclusterd: args.start.mclusterd,
            },
        ),
        Command::Leave { node, force } => commands::leave(&ctx, &node, force),
        Command::Status(JsonArg { json }) => commands::status(&ctx, json),
        Command::Members(JsonArg { json }) => commands::members(&ctx, json),
        Command::Failover { to } => commands::failover(&ctx, to.as_deref()),
        Command::Domain(DomainCommand::Add { name }) => commands::domain_add(&ctx, &name),
        Command::Domain(DomainCommand::List(JsonArg { json })) => commands::domain_list(&ctx, json),
        Command::Domain(DomainCommand::Del { name }) => commands::domain_del(&ctx, &name),
        Command::User(UserCommand::Add {
            address,
            password,
            quota_mb,
        }) => commands::user_add(&ctx, &address, password.password, quota_mb),
        Command::User(UserCommand::List { domain, json }) => {
            commands::user_list(&ctx, domain.as_deref(), json.json)
        }
        Command::User(UserCommand::Show { address, json }) => {
            commands::user_show(&ctx, &address, json.json)
        }
        Command::User(UserCommand::Del { address }) => commands::user_del(&ctx, &address),
        Command::User(UserCommand::Passwd { address, password }) => {
            commands::user_passwd(&ctx, &address, password.password)
        }
        Command::User(UserCommand::Enable { address }) => {
            commands::user_set_enabled(&ctx, &address, true)
        }
        Command::User(UserCommand::Disable { address }) => {
            commands::user_set_enabled(&ctx, &address, false)
        }
        Command::Tls(TlsCommand::Show) => commands::tls_show(&ctx),
        Command::Tls(TlsCommand::Set { cert, key }) => commands::tls_set(&ctx, &cert, &key),
        Command::Policy(PolicyCommand::Show(JsonArg { json })) => commands::policy_show(&ctx, json),
        Command::Policy(PolicyCommand::Set { settings }) => commands::policy_set(&ctx, &settings),
        Command::Queue(QueueCommand::List { limit, after, json }) => {
            commands::queue_list(&ctx, after.as_deref(), limit, json.json)
        }
        Command::Queue(QueueCommand::Show { id, json }) => {
            commands::queue_show(&ctx, &id, json.json)
        }
        Command::Queue(QueueCommand::Retry { id }) => {
            commands::queue_act(&ctx, &id, QueueAction::Retry)
        }
        Command::Queue(QueueCommand::Hold { id }) => {
            commands::queue_act(&ctx, &id, QueueAction::Hold)
        }
        Command::Queue(QueueCommand::Release { id }) => {
            commands::queue_act(&ctx, &id, QueueAction::Release)
        }
        Command::Queue(QueueCommand::Delete { id }) => commands::queue_delete(&ctx, &id),
        Command::Protection(ProtectionCommand::Show(JsonArg { json })) => {
            protection::show(&ctx, json)
        }
        Command::Protection(ProtectionCommand::Set { settings }) => {
            protection::set(&ctx, &settings)
        }
        Command::Lockouts(LockoutsCommand::List {
            all,
            json: JsonArg { json },
        }) => protection::list(&ctx, json, all),
        Command::Lockouts(LockoutsCommand::Add {
            target,
            secs,
            reason,
        }) => protection::add(&ctx, &target, secs, reason.as_deref()),
        Command::Lockouts(LockoutsCommand::Remove { target }) => protection::remove(&ctx, &target),
        Command::Upgrade(UpgradeCommand::Status(JsonArg { json })) => upgrade::status(&ctx, json),
        Command::Upgrade(UpgradeCommand::Finalize) => upgrade::finalize(&ctx),
        Command::Access(AccessCommand::List {
            list,
            all,
            json: JsonArg { json },
        }) => access::list(&ctx, json, all, list.as_deref()),
        Command::Access(AccessCommand::Add {
            list,
            pattern,
            comment,
            expires,
        }) => access::add(
            &ctx,
            &list,
            &pattern,
            comment.as_deref(),
            expires.as_deref(),
        ),
        Command::Access(AccessCommand::Remove { list, pattern }) => {
            access::remove(&ctx, &list, &pattern)
        }
        Command::Outbound(OutboundCommand::Show(JsonArg { json })) => {
            outbound_policy::show(&ctx, json)
        }
        Command::Outbound(OutboundCommand::Set {
            settings,
            smarthost_password_file,
        }) => outbound_policy::set(&ctx, &settings, smarthost_password_file.as_deref()),
        Command::Dkim(DkimCommand::Generate {
            domain,
            selector,
            algorithm,
            json,
        }) => commands::dkim_generate(&ctx, &domain, selector.as_deref(), algorithm, json.json),
        Command::Dkim(DkimCommand::Import {
            domain,
            selector,
            key,
            json,
        }) => commands::dkim_import(&ctx, &domain, &selector, &key, json.json),
        Command::Dkim(DkimCommand::Show { domain, json }) => {
            commands::dkim_show(&ctx, &domain, json.json)
        }
        Command::Dkim(DkimCommand::List(JsonArg { json })) => commands::dkim_list(&ctx, json),
        Command::Dkim(DkimCommand::Delete { domain }) => commands::dkim_delete(&ctx, &domain),
        Command::ClientConfig(ClientConfigCommand::UseHttps { ca_cert }) => {
            commands::use_https(&ctx, ca_cert.as_deref())
        }
        Command::Token(TokenCommand::Rotate { admin, read_only }) => commands::token_rotate(
            &ctx,
            match (admin, read_only) {
                (true, _) => TokenKind::Admin,
                (_, true) => TokenKind::ReadOnly,
                _ => TokenKind::Join,
            },
        ),
        Command::Demo(args) => demo::run(
            &ctx,
            &DemoOptions {
                dir: args.dir,
                password: args.password,
                mclusterd: args.mclusterd,
                net: args.net,
            },
        ),
        Command::Man { dir } => write_man_pages(&dir),
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use cli::api::DkimAlgorithm;
    use cli::node_config::MailSection;
    use cli::vip::VipOptions;

    use crate::{Cli, Command, DkimCommand, JsonArg, QueueCommand};

    #[test]
    fn flags_are_consistent() {
        Cli::command().debug_assert();
    }

    /// The words of one shell command line: quotes group and are removed, `#` at the start
    /// of a word ends the line.
    fn shell_words(line: &str) -> Vec<String> {
        let mut words = Vec::new();
        let mut word: Option<String> = None;
        let mut quote = None;
        for c in line.chars() {
            match (quote, c) {
                (Some(q), c) if c == q => quote = None,
                (Some(_), c) => word.get_or_insert_with(String::new).push(c),
                (None, '\'' | '"') => {
                    quote = Some(c);
                    word.get_or_insert_with(String::new);
                }
                (None, '#') if word.is_none() => break,
                (None, c) if c.is_whitespace() => words.extend(word.take()),
                (None, c) => word.get_or_insert_with(String::new).push(c),
            }
        }
        words.extend(word);
        words
    }

    /// The `mclusterctl` command lines of a Markdown text's indented code blocks, with
    /// continuation lines joined. `[a|b]` is optional: each command comes without it and with
    /// its first choice.
    fn doc_commands(text: &str) -> Vec<Vec<String>> {
        let mut lines = Vec::new();
        let mut pending = String::new();
        for line in text.lines() {
            if !pending.is_empty() {
                pending.push(' ');
                pending.push_str(line.trim());
            } else if line.starts_with("    ") && line.trim_start().starts_with("mclusterctl ") {
                pending.push_str(line.trim());
            } else {
                continue;
            }
            if let Some(joined) = pending.strip_suffix('\\') {
                pending = joined.trim_end().to_owned();
            } else {
                lines.push(std::mem::take(&mut pending));
            }
        }
        let mut commands = Vec::new();
        for line in lines {
            let words = shell_words(&line);
            let optional = |w: &String| w.starts_with('[') && w.ends_with(']');
            commands.push(words.iter().filter(|w| !optional(w)).cloned().collect());
            commands.push(
                words
                    .iter()
                    .map(|w| {
                        let inner = w.trim_start_matches('[').trim_end_matches(']');
                        inner.split('|').next().unwrap_or(inner).to_owned()
                    })
                    .collect(),
            );
        }
        commands
    }

    #[test]
    fn doc_commands_are_read_as_a_shell_would() {
        let text = "text\n\n    mclusterctl a 'x y' --b \"z\"   # note\n    mclusterctl c \\\n        --d [e|f]\n";
        let commands = doc_commands(text);
        let expected: Vec<Vec<&str>> = vec![
            vec!["mclusterctl", "a", "x y", "--b", "z"],
            vec!["mclusterctl", "a", "x y", "--b", "z"],
            vec!["mclusterctl", "c", "--d"],
            vec!["mclusterctl", "c", "--d", "e"],
        ];
        assert_eq!(commands, expected);
    }

    /// docs/OPERATIONS.md shows only commands that parse: a renamed command or flag cannot
    /// leave the guide behind. (That each also runs against a cluster is the scenarios' job.)
    #[test]
    fn every_command_in_the_operations_guide_parses() {
        let commands = doc_commands(include_str!("../../docs/OPERATIONS.md"));
        assert!(commands.len() > 100, "found only {}", commands.len());
        for command in &commands {
            if let Err(err) = Cli::try_parse_from(command) {
                panic!(
                    "docs/OPERATIONS.md: `{}` does not parse:\n{err}",
                    command.join(" ")
                );
            }
        }
    }

    #[track_caller]
    fn check_vip_flags(flags: &[&str], expected: Result<(&[&str], Option<&str>), &str>) {
        let args = ["mclusterctl", "init", "--dir", "d"].iter().chain(flags);
        let parsed = Cli::try_parse_from(args).map(|cli| match cli.command {
            Command::Init(args) => args.vip.into_options(),
            other => panic!("parsed as {other:?}"),
        });
        match (parsed, expected) {
            (Ok(options), Ok((addresses, interface))) => {
                let VipOptions {
                    addresses: parsed_addresses,
                    interface: parsed_interface,
                } = options;
                let parsed_addresses: Vec<String> =
                    parsed_addresses.iter().map(ToString::to_string).collect();
                assert_eq!(parsed_addresses, addresses);
                assert_eq!(parsed_interface.as_deref(), interface);
            }
            (Err(err), Err(fragment)) => {
                assert!(err.to_string().contains(fragment), "{err}");
            }
            (parsed, expected) => panic!("{flags:?}: got {parsed:?}, expected {expected:?}"),
        }
    }

    #[test]
    fn the_data_directory_defaults_to_one_inside_the_node_directory() {
        let data_dir = |flags: &[&str]| {
            let args = ["mclusterctl", "init", "--dir", "d"].iter().chain(flags);
            match Cli::try_parse_from(args).expect("parse").command {
                Command::Init(args) => args.data.data_dir,
                other => panic!("parsed as {other:?}"),
            }
        };
        assert_eq!(data_dir(&[]), "data");
        assert_eq!(
            data_dir(&["--data-dir", "/var/lib/mcluster"]),
            "/var/lib/mcluster"
        );
    }

    #[test]
    fn vip_flags() {
        check_vip_flags(&[], Ok((&[], None)));
        check_vip_flags(
            &[
                "--vip",
                "192.0.2.10/24",
                "--vip",
                "2001:DB8::10/64",
                "--vip-interface",
                "ens18",
            ],
            Ok((&["192.0.2.10/24", "2001:db8::10/64"], Some("ens18"))),
        );
        check_vip_flags(&["--vip", "127.0.0.10/32"], Ok((&["127.0.0.10/32"], None)));
        check_vip_flags(
            &["--vip", "192.0.2.10"],
            Err("bad virtual IP \"192.0.2.10\": expected an address with the prefix length"),
        );
        check_vip_flags(
            &["--vip-interface", "eth0"],
            Err("the following required arguments were not provided:\n  --vip <CIDR>"),
        );
    }

    #[track_caller]
    fn check_mail_flags(command: &[&str], flags: &[&str], expected: &MailSection) {
        let args = ["mclusterctl"].iter().chain(command).chain(flags);
        let cli = Cli::try_parse_from(args).unwrap_or_else(|err| panic!("{flags:?}: {err}"));
        let mail = match cli.command {
            Command::Init(args) => args.mail.into_section(),
            Command::Join(args) => args.mail.into_section(),
            other => panic!("parsed as {other:?}"),
        };
        assert_eq!(mail, *expected, "{command:?} {flags:?}");
    }

    #[test]
    fn mail_flags() {
        let init: &[&str] = &["init", "--dir", "d"];
        let join: &[&str] = &[
            "join",
            "--dir",
            "d",
            "--name",
            "n2",
            "--raft-addr",
            "192.0.2.12:7071",
            "--admin-addr",
            "192.0.2.12:7070",
        ];
        let own = |port: u16| Some(format!("192.0.2.12:{port}"));
        for command in [init, join] {
            check_mail_flags(command, &[], &MailSection::default());
            check_mail_flags(
                command,
                &["--imap-addr", "192.0.2.12:143", "--imaps-addr", ""],
                &MailSection {
                    imap: own(143),
                    imaps: Some(String::new()),
                    ..MailSection::default()
                },
            );
            check_mail_flags(
                command,
                &[
                    "--mail-hostname",
                    "mail.example.test",
                    "--smtp-addr",
                    "192.0.2.12:25",
                    "--submission-addr",
                    "192.0.2.12:587",
                    "--smtps-addr",
                    "192.0.2.12:465",
                    "--pop3-addr",
                    "192.0.2.12:110",
                    "--pop3s-addr",
                    "192.0.2.12:995",
                    "--imap-addr",
                    "192.0.2.12:143",
                    "--imaps-addr",
                    "192.0.2.12:993",
                ],
                &MailSection {
                    hostname: Some("mail.example.test".to_owned()),
                    smtp: own(25),
                    submission: own(587),
                    smtps: own(465),
                    pop3: own(110),
                    pop3s: own(995),
                    imap: own(143),
                    imaps: own(993),
                },
            );
        }
    }

    #[track_caller]
    fn check_queue_args(args: &[&str], expected: Result<QueueCommand, &str>) {
        let args = ["mclusterctl", "queue"].iter().chain(args);
        let parsed = Cli::try_parse_from(args).map(|cli| match cli.command {
            Command::Queue(queue) => queue,
            other => panic!("parsed as {other:?}"),
        });
        match (parsed, expected) {
            (Ok(parsed), Ok(expected)) => assert_eq!(parsed, expected),
            (Err(err), Err(fragment)) => {
                assert!(err.to_string().contains(fragment), "{err}");
            }
            (parsed, expected) => panic!("got {parsed:?}, expected {expected:?}"),
        }
    }

    #[test]
    fn queue_args() {
        let list = |limit, after: Option<&str>, json| QueueCommand::List {
            limit,
            after: after.map(str::to_owned),
            json: JsonArg { json },
        };
        check_queue_args(&["list"], Ok(list(100, None, false)));
        check_queue_args(
            &["list", "--json", "--limit", "5", "--after", "0001ABC"],
            Ok(list(5, Some("0001ABC"), true)),
        );
        check_queue_args(&["list", "--limit", "1000"], Ok(list(1000, None, false)));
        check_queue_args(&["list", "--limit", "0"], Err("0 is not in 1..=1000"));
        check_queue_args(&["list", "--limit", "1001"], Err("1001 is not in 1..=1000"));
        check_queue_args(
            &["show", "Q1", "--json"],
            Ok(QueueCommand::Show {
                id: "Q1".to_owned(),
                json: JsonArg { json: true },
            }),
        );
        let id = || "Q1".to_owned();
        check_queue_args(&["retry", "Q1"], Ok(QueueCommand::Retry { id: id() }));
        check_queue_args(&["hold", "Q1"], Ok(QueueCommand::Hold { id: id() }));
        check_queue_args(&["release", "Q1"], Ok(QueueCommand::Release { id: id() }));
        check_queue_args(&["delete", "Q1"], Ok(QueueCommand::Delete { id: id() }));
        check_queue_args(
            &["retry"],
            Err("the following required arguments were not provided:\n  <ID>"),
        );
        check_queue_args(&["del", "Q1"], Err("unrecognized subcommand 'del'"));
    }

    #[track_caller]
    fn check_dkim_args(args: &[&str], expected: Result<DkimCommand, &str>) {
        let args = ["mclusterctl", "dkim"].iter().chain(args);
        let parsed = Cli::try_parse_from(args).map(|cli| match cli.command {
            Command::Dkim(dkim) => dkim,
            other => panic!("parsed as {other:?}"),
        });
        match (parsed, expected) {
            (Ok(parsed), Ok(expected)) => assert_eq!(parsed, expected),
            (Err(err), Err(fragment)) => {
                assert!(err.to_string().contains(fragment), "{err}");
            }
            (parsed, expected) => panic!("got {parsed:?}, expected {expected:?}"),
        }
    }

    #[test]
    fn dkim_args() {
        let domain = || "example.test".to_owned();
        let generate = |selector: Option<&str>, algorithm, json| DkimCommand::Generate {
            domain: domain(),
            selector: selector.map(str::to_owned),
            algorithm,
            json: JsonArg { json },
        };
        check_dkim_args(
            &["generate", "example.test"],
            Ok(generate(None, None, false)),
        );
        check_dkim_args(
            &[
                "generate",
                "example.test",
                "--selector",
                "s2",
                "--algorithm",
                "ed25519",
                "--json",
            ],
            Ok(generate(Some("s2"), Some(DkimAlgorithm::Ed25519), true)),
        );
        check_dkim_args(
            &["generate", "example.test", "--algorithm", "dsa"],
            Err("unknown DKIM algorithm \"dsa\": expected rsa or ed25519"),
        );
        check_dkim_args(
            &[
                "import",
                "example.test",
                "--selector",
                "s1",
                "--key",
                "k.pem",
            ],
            Ok(DkimCommand::Import {
                domain: domain(),
                selector: "s1".to_owned(),
                key: "k.pem".into(),
                json: JsonArg { json: false },
            }),
        );
        check_dkim_args(
            &["import", "example.test", "--key", "k.pem"],
            Err("--selector <S>"),
        );
        check_dkim_args(
            &["show", "example.test", "--json"],
            Ok(DkimCommand::Show {
                domain: domain(),
                json: JsonArg { json: true },
            }),
        );
        check_dkim_args(&["list"], Ok(DkimCommand::List(JsonArg { json: false })));
        check_dkim_args(
            &["delete", "example.test"],
            Ok(DkimCommand::Delete { domain: domain() }),
        );
    }
}
