//! The mclusterctl commands other than `demo`: each takes its options, talks to the cluster
//! through the admin API and prints a table (or JSON) for people.

use std::io::{BufRead, IsTerminal};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail, ensure};
use serde::Serialize;

use crate::api::{
    self, Account, Client, ClusterStatus, DkimAlgorithm, DkimKey, Domain, MailPolicy, Member,
    NODE_PROBE_TIMEOUT, NodeStatus, QueueAction, QueueEntry, QueueListing, QueueRecipient, Role,
    VipStatus, error_status,
};
use crate::calendar::unix_now;
use crate::client_config::{self, ClientConfig};
use crate::files;
use crate::node_config::{MailSection, VipSection};
use crate::node_dir::{self, InitPlan, JoinPlan};
use crate::process::{self, Launch, MclusterdSearch, NodeProcess};
use crate::secrets;
use crate::table::{
    Table, opt_u64, relative_time, size, span, truncate, unix_time, unix_time_signed, yes_no,
};
use crate::vip::{VipAddr, VipOptions};

#[cfg(test)]
mod tests;

/// How long `init --start` waits for the first node to elect itself.
pub const LEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// How long `join --start` waits for the new node to become a voter.
pub const VOTER_TIMEOUT: Duration = Duration::from_secs(120);
/// How long `failover` waits for the new leader to take the virtual IP (the node takes it about
/// a second after it leads).
pub const VIP_TAKEOVER_TIMEOUT: Duration = Duration::from_secs(5);
const VIP_POLL_INTERVAL: Duration = Duration::from_millis(50);
/// Quota of new accounts unless `--quota-mb` says otherwise.
pub const DEFAULT_QUOTA_MB: u64 = 1024;
/// Entries `queue list` asks for unless `--limit` says otherwise.
pub const DEFAULT_QUEUE_LIMIT: u32 = 100;
/// The most entries one `GET /v1/queue` returns.
pub const MAX_QUEUE_LIMIT: u32 = 1000;
/// Characters of the last error that fit in a `queue list` row.
const QUEUE_ERROR_CHARS: usize = 40;

/// Never set: the waits of commands other than `demo` end only by success or timeout.
static NOT_STOPPED: AtomicBool = AtomicBool::new(false);

/// What every command needs: where the client config lives.
#[derive(Debug, Clone)]
pub struct Context {
    pub client_config_path: PathBuf,
}

impl Context {
    /// `--config`, or the default location from the environment.
    pub fn from_env(explicit: Option<PathBuf>) -> Result<Context> {
        let client_config_path =
            client_config::resolve_path(explicit, |name| std::env::var_os(name))?;
        Ok(Context { client_config_path })
    }

    pub fn client_config(&self) -> Result<ClientConfig> {
        ClientConfig::load(&self.client_config_path)
    }

    /// A client for the configured cluster, presenting the admin token.
    pub fn admin_client(&self) -> Result<Client> {
        admin_client(&self.client_config()?)
            .with_context(|| format!("use {}", self.client_config_path.display()))
    }
}

/// A client for the cluster of `client_config`, presenting its admin token.
pub fn admin_client(client_config: &ClientConfig) -> Result<Client> {
    Client::new(
        client_config.admin_urls.clone(),
        client_config.admin_token()?,
        client_config.ca_cert_pem.as_deref(),
    )
}

// ---------------------------------------------------------------------------------------------
// init, join, leave
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct InitOptions {
    pub dir: PathBuf,
    pub name: String,
    pub raft_addr: String,
    pub admin_addr: String,
    pub cluster_name: String,
    pub data_dir: String,
    pub mail: MailSection,
    pub vip: VipOptions,
    pub start: bool,
    pub mclusterd: Option<PathBuf>,
}

/// `mclusterctl init`: makes the CA, the first node's directory and the client config, and with
/// `--start` starts the node and waits until it leads.
pub fn init(ctx: &Context, options: &InitOptions) -> Result<()> {
    // Before making anything, so that a missing binary does not leave a half-done init.
    let mclusterd = find_mclusterd_if(options.start, &options.mclusterd)?;
    let outcome = node_dir::init_files(&InitPlan {
        dir: options.dir.clone(),
        name: options.name.clone(),
        raft_addr: options.raft_addr.clone(),
        admin_addr: options.admin_addr.clone(),
        cluster_name: options.cluster_name.clone(),
        data_dir: options.data_dir.clone(),
        mail: options.mail.clone(),
        vip: options.vip.clone(),
    })?;
    let backup = save_client_config(&outcome.client_config, &ctx.client_config_path)?;

    let node_url = outcome.client_config.url_for(&options.admin_addr);
    let mut made = Table::headless();
    made.push_row(vec![
        format!("{}", outcome.ca_cert.display()),
        "cluster CA certificate".to_owned(),
    ]);
    made.push_row(vec![
        format!("{}", outcome.ca_key.display()),
        "cluster CA key (private; the cluster keeps a copy to sign new nodes)".to_owned(),
    ]);
    made.push_row(vec![
        format!("{}/", outcome.node.dir.display()),
        format!(
            "node 1 ({}, data): raft {}, admin {node_url}{}",
            options.name,
            options.raft_addr,
            vip_note(outcome.node_file.vip.as_ref())
        ),
    ]);
    made.push_row(vec![
        format!("{}", ctx.client_config_path.display()),
        "client config with the admin and join tokens (private)".to_owned(),
    ]);
    println!("created cluster {:?}:", options.cluster_name);
    print!("{}", indent(&made.render()));
    print_backup_note(backup.as_deref());

    if let Some(mclusterd) = mclusterd {
        let mut node_process =
            NodeProcess::spawn(&mclusterd, &options.name, &outcome.node, Launch::Detached)?;
        print_started(&node_process);
        let client = admin_client(&outcome.client_config)?.with_no_leader_patience(Duration::ZERO);
        let status = wait_for_leader(
            &client,
            LEADER_TIMEOUT,
            &NOT_STOPPED,
            &mut [&mut node_process],
        )?;
        println!("{}", leader_line(&status));
        println!("next steps:");
    } else {
        println!("next steps:");
        for line in start_lines(&outcome.node, &options.data_dir) {
            println!("  {line}");
        }
    }
    println!("  check it:        mclusterctl status");
    println!(
        "  add a node:      mclusterctl join --dir {} --name n2 --raft-addr HOST:PORT \
         --admin-addr HOST:PORT{}",
        options.dir.display(),
        if options.start {
            " --start"
        } else {
            " [--data-dir /var/lib/mcluster]"
        }
    );
    println!("  add mail:        mclusterctl domain add example.test");
    Ok(())
}

/// `mclusterctl client-config use-https`: makes the client config's admin URLs `https://` with
/// the cluster CA, once at least one node answers that way with the config's token (a URL that
/// does not answer yet stays in, as `https://`). Nothing changes when none answers.
pub fn use_https(ctx: &Context, ca_cert: Option<&Path>) -> Result<()> {
    let mut client_config = ctx.client_config()?;
    let ca_pem = match ca_cert {
        Some(path) => files::read_text(path)?,
        None => client_config.ca_cert_pem.clone().with_context(|| {
            format!(
                "{} holds no cluster CA: pass --ca-cert with the cluster's ca.crt (in the \
                 directory mclusterctl init wrote, or in any node's directory)",
                ctx.client_config_path.display()
            )
        })?,
    };
    let mut https = client_config.clone();
    https.use_https(ca_pem);
    https.validate().context("check the new client config")?;
    let client = admin_client(&https)?;
    let mut table = Table::new(&["ADMIN URL", "HTTPS"]);
    let mut answered = 0;
    for url in client.urls() {
        let outcome = match client.node_at(url, NODE_PROBE_TIMEOUT) {
            Ok(node) => {
                answered += 1;
                format!("ok (node {} {})", node.node_id, node.name)
            }
            Err(err) => format!("no answer yet: {err:#}"),
        };
        table.push_row(vec![url.clone(), outcome]);
    }
    print!("{}", table.render());
    if answered == 0 {
        bail!(
            "no node answered over HTTPS with that CA and the client config's token; {} is \
             unchanged",
            ctx.client_config_path.display()
        );
    }
    client_config = https;
    client_config
        .save(&ctx.client_config_path)
        .context("save the client config")?;
    println!(
        "{} speaks HTTPS to the admin API now",
        ctx.client_config_path.display()
    );
    Ok(())
}

/// How to start a node whose directory `init` or `join` wrote: on a server, and on this machine
/// (as the demo and `--start` do). A data directory inside the node's directory suits only the
/// second, which the lines say.
pub fn start_lines(node: &node_dir::NodePaths, data_dir: &str) -> Vec<String> {
    let mut lines = vec![format!(
        "on a server:     copy {}/ to it as /etc/mcluster/ (owned by the mcluster user), \
         then `systemctl enable --now mclusterd` (deploy/mclusterd.service)",
        node.dir.display()
    )];
    if !Path::new(data_dir).is_absolute() {
        lines.push(format!(
            "                 (its data-dir is {data_dir:?}, inside that directory: on a \
             server set data-dir = \"/var/lib/mcluster\" in mclusterd.toml, or pass --data-dir)"
        ));
    }
    lines.push(format!(
        "on this machine: mclusterd --config {}",
        node.config.display()
    ));
    lines
}

#[derive(Debug, Clone)]
pub struct JoinOptions {
    /// `seeds` empty: the client config's admin-urls.
    pub plan: JoinPlan,
    pub start: bool,
    pub mclusterd: Option<PathBuf>,
}

/// `mclusterctl join`: gets a node id and certificate from the cluster, writes the node's
/// directory, and with `--start` starts it and waits until it is a voter.
pub fn join(ctx: &Context, options: &JoinOptions) -> Result<()> {
    let mut client_config = ctx.client_config()?;
    let join_token = client_config
        .join_token()
        .with_context(|| format!("use {}", ctx.client_config_path.display()))?
        .to_owned();
    let mut plan = options.plan.clone();
    plan.seeds = if plan.seeds.is_empty() {
        client_config.admin_urls.clone()
    } else {
        plan.seeds
            .iter()
            .map(|seed| normalize_url(seed, &client_config))
            .collect()
    };
    let mclusterd = find_mclusterd_if(options.start, &options.mclusterd)?;
    let outcome = node_dir::join_files(&plan, &join_token, client_config.ca_cert_pem.as_deref())?;
    let node_id = outcome.node_file.node_id;
    let url = client_config.url_for(&plan.admin_addr);
    client_config.add_admin_url(&url);
    client_config
        .save(&ctx.client_config_path)
        .context("add the new node to the client config")?;
    println!(
        "cluster {:?} admitted {} as node {node_id} ({}{}); its files are in {}/",
        outcome.cluster_name,
        plan.name,
        plan.role,
        vip_note(outcome.node_file.vip.as_ref()),
        outcome.node.dir.display()
    );

    let Some(mclusterd) = mclusterd else {
        println!("on its first start the node asks the cluster to make it a voter; start it");
        for line in start_lines(&outcome.node, &plan.data_dir) {
            println!("  {line}");
        }
        return Ok(());
    };
    let mut node_process =
        NodeProcess::spawn(&mclusterd, &plan.name, &outcome.node, Launch::Detached)?;
    print_started(&node_process);
    if client_config.admin_token.is_none() {
        println!("the client config has no admin-token, so mclusterctl cannot watch it join;");
        println!("check with `mclusterctl members` where the admin token is known");
        return Ok(());
    }
    let client = admin_client(&client_config)?;
    wait_for_voter(
        &client,
        node_id,
        VOTER_TIMEOUT,
        &NOT_STOPPED,
        &mut [&mut node_process],
    )?;
    println!("node {node_id} ({}) is a voter", plan.name);
    Ok(())
}

/// `, virtual IP 192.0.2.10/24 on eth0` for a node that has one, else nothing.
pub fn vip_note(vip: Option<&VipSection>) -> String {
    vip.map_or_else(String::new, |vip| {
        format!(
            ", virtual IP {} on {}",
            vip.addresses.join(", "),
            vip.interface
        )
    })
}

/// `mclusterctl leave NODE`: removes the node from the cluster and from the client config.
/// How often `leave` asks again while the cluster copies a leaving data node's blobs.
const LEAVE_POLL: std::time::Duration = std::time::Duration::from_secs(1);
/// After this long without progress `leave` says what may be wrong.
const LEAVE_STALL: std::time::Duration = std::time::Duration::from_secs(30);

pub fn leave(ctx: &Context, node: &str, force: bool) -> Result<()> {
    let mut client_config = ctx.client_config()?;
    let client = admin_client(&client_config)?;
    let members = client.members().context("list members")?;
    let member = find_member(&members, node)?;
    // A data node leaves once every blob it holds has two copies on other data nodes: the
    // cluster makes them, and this asks again until it has.
    let mut last_shown = None;
    let mut progress_at = std::time::Instant::now();
    let mut stall_said = false;
    while let Some(waiting) = client
        .remove_member(member.node_id, force)
        .with_context(|| format!("remove node {} ({})", member.node_id, member.name))?
    {
        if last_shown != Some(waiting) {
            println!(
                "copying what node {} ({}) holds to the other data nodes: {waiting} {} to go",
                member.node_id,
                member.name,
                if waiting == 1 { "blob" } else { "blobs" }
            );
            last_shown = Some(waiting);
            progress_at = std::time::Instant::now();
        } else if !stall_said && progress_at.elapsed() >= LEAVE_STALL {
            println!(
                "no progress for {} s: some of these blobs may be only on node {} ({}), and it \
                 or the node that should copy them is not answering (see `mclusterctl status`); \
                 Ctrl-C stops waiting and the node stays a member, `leave --force` removes it \
                 anyway",
                LEAVE_STALL.as_secs(),
                member.node_id,
                member.name
            );
            stall_said = true;
        }
        std::thread::sleep(LEAVE_POLL);
    }
    println!(
        "removed node {} ({}) from the cluster; stop its mclusterd, then its directory can go",
        member.node_id, member.name
    );
    if client_config.remove_admin_url(&member.admin_addr) {
        client_config
            .save(&ctx.client_config_path)
            .context("remove the node from the client config")?;
    }
    Ok(())
}

/// Which of the cluster's tokens `token rotate` replaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Admin,
    Join,
    ReadOnly,
}

impl TokenKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Admin => "admin",
            TokenKind::Join => "join",
            TokenKind::ReadOnly => "read-only",
        }
    }
}

/// `mclusterctl token rotate [--admin]`: a new random token replaces the join (or admin) token
/// in the cluster, which from then on refuses the old one, and in the client config. The new
/// config is written beside the old one (`<file>.new`) before the cluster is asked, so the new
/// token is on disk whatever happens next, and renamed over it after.
pub fn token_rotate(ctx: &Context, kind: TokenKind) -> Result<()> {
    let path = &ctx.client_config_path;
    let mut client_config = ctx.client_config()?;
    let client = admin_client(&client_config).with_context(|| format!("use {}", path.display()))?;
    let token = secrets::random_token();
    let sha256 = secrets::sha256_hex(&token);
    match kind {
        TokenKind::Admin => client_config.admin_token = Some(token),
        TokenKind::Join => client_config.join_token = Some(token),
        TokenKind::ReadOnly => client_config.read_only_token = Some(token),
    }
    let mut staged = path.as_os_str().to_owned();
    staged.push(".new");
    let staged = PathBuf::from(staged);
    files::write_atomic(&staged, client_config.to_toml()?.as_bytes(), files::PRIVATE)?;
    let kind_name = kind.as_str();
    if let Err(err) = client.put(
        &format!("/v1/tokens/{kind_name}"),
        &serde_json::json!({ "sha256": sha256 }),
    ) {
        if api::error_status(&err).is_some() {
            // The cluster answered no: the old token stays the one it accepts.
            let _ = std::fs::remove_file(&staged);
            return Err(err).context(format!("rotate the {kind_name} token"));
        }
        return Err(err).context(format!(
            "rotate the {kind_name} token: the cluster may have taken the new one, which is in \
             {}; if the old one is refused now, move that file to {}",
            staged.display(),
            path.display()
        ));
    }
    std::fs::rename(&staged, path).with_context(|| {
        format!(
            "the cluster accepts only the new {kind_name} token, which is in {}: move that file \
             to {}",
            staged.display(),
            path.display()
        )
    })?;
    println!("{}", rotation_note(kind, path));
    Ok(())
}

/// The one sentence `token rotate` ends with: what changed and what the operator does next.
pub fn rotation_note(kind: TokenKind, path: &Path) -> String {
    match kind {
        TokenKind::Join => format!(
            "rotated the join token: the cluster refuses the old one from now on and accepts the \
             new one, saved as join-token in {}; copy it to the machine that runs the next \
             `mclusterctl join` (nodes that are already voters need nothing)",
            path.display()
        ),
        TokenKind::Admin => format!(
            "rotated the admin token: the cluster refuses the old one from now on and accepts the \
             new one, saved as admin-token in {}; replace the client config on every other \
             machine that administers this cluster with this file",
            path.display()
        ),
        TokenKind::ReadOnly => format!(
            "made a new read-only token: the cluster takes it for reads (every GET) and refuses \
             it for changes, and refuses the previous one; saved as read-only-token in {}. Give \
             a monitoring machine a client config with only admin-urls and that read-only-token",
            path.display()
        ),
    }
}

// ---------------------------------------------------------------------------------------------
// status, members, failover
// ---------------------------------------------------------------------------------------------

/// `status --json` (its shape is in docs/ADMIN_API.md).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatusReport {
    pub cluster: ClusterStatus,
    pub nodes: Vec<NodeReport>,
    /// Null when no node that answered has a virtual IP configured.
    pub vip: Option<VipReport>,
}

/// The virtual IP as the nodes report it; each node's own report is in its `node.vip`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VipReport {
    /// As the holder reports them; with no holder (or several), as the first node that has a
    /// virtual IP does.
    pub addresses: Vec<String>,
    /// That node's interface (it may differ from machine to machine).
    pub interface: String,
    /// The nodes that say they hold it: one when all is well, none while no node holds it; two
    /// or more must never happen.
    pub held_by: Vec<u64>,
    /// Data nodes that did not answer: one of them might hold it unseen.
    pub unreachable: Vec<u64>,
    /// Every data node that answered has the same addresses (in any order).
    pub consistent: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NodeReport {
    pub member: Member,
    /// Null when the node did not answer within a second.
    pub node: Option<NodeStatus>,
    /// The leader's last log index minus this node's applied index.
    pub lag: Option<u64>,
    /// Blobs this data node still has to confirm, as the cluster sees it; null on a witness.
    pub blobs_missing: Option<u64>,
    /// Blobs this data node must hold, as the cluster sees it; null on a witness (or from a
    /// cluster that does not say).
    pub blobs_assigned: Option<u64>,
}

/// The cluster's status plus each member's own view, asked of all members at once.
pub fn collect_status(client: &Client) -> Result<StatusReport> {
    let cluster = client.status().context("get cluster status")?;
    let views = probe_nodes(client, &cluster.members);
    Ok(build_report(cluster, views))
}

/// `GET /v1/node` of each member at once, in their order; `None` for one that did not answer
/// within [`NODE_PROBE_TIMEOUT`].
pub fn probe_nodes(client: &Client, members: &[Member]) -> Vec<Option<NodeStatus>> {
    std::thread::scope(|scope| {
        let probes: Vec<_> = members
            .iter()
            .map(|member| {
                let url = client.url_of(&member.admin_addr);
                scope.spawn(move || client.node_at(&url, NODE_PROBE_TIMEOUT).ok())
            })
            .collect();
        probes
            .into_iter()
            .map(|probe| probe.join().ok().flatten())
            .collect()
    })
}

/// Pairs members with their views (in the same order) and works out each one's lag.
pub fn build_report(cluster: ClusterStatus, views: Vec<Option<NodeStatus>>) -> StatusReport {
    let leader_last_log = cluster.leader_id.and_then(|leader_id| {
        cluster
            .members
            .iter()
            .zip(&views)
            .find(|(member, _)| member.node_id == leader_id)
            .and_then(|(_, view)| view.as_ref())
            .and_then(|view| view.last_log_index)
    });
    let nodes = cluster
        .members
        .iter()
        .cloned()
        .zip(views)
        .map(|(member, node)| {
            // A node that has applied nothing yet lags by the whole log.
            let lag = match (&node, leader_last_log) {
                (Some(node), Some(last)) => {
                    Some(last.saturating_sub(node.applied_index.unwrap_or(0)))
                }
                _ => None,
            };
            let blobs_missing = cluster.blobs_missing.get(&member.node_id).copied();
            let blobs_assigned = cluster.blobs_assigned.get(&member.node_id).copied();
            NodeReport {
                member,
                node,
                lag,
                blobs_missing,
                blobs_assigned,
            }
        })
        .collect::<Vec<NodeReport>>();
    let vip = vip_report(&nodes);
    StatusReport {
        cluster,
        nodes,
        vip,
    }
}

/// Sums up the nodes' virtual IP reports; `None` if no node that answered has one.
pub fn vip_report(nodes: &[NodeReport]) -> Option<VipReport> {
    let with_vip: Vec<(u64, &VipStatus)> = nodes
        .iter()
        .filter_map(|node| Some((node.member.node_id, node.node.as_ref()?.vip.as_ref()?)))
        .collect();
    let held_by: Vec<u64> = with_vip
        .iter()
        .filter(|(_, vip)| vip.held)
        .map(|(node_id, _)| *node_id)
        .collect();
    let (_, reference) = with_vip
        .iter()
        .find(|(_, vip)| vip.held)
        .or_else(|| with_vip.first())?;
    let expected = canonical_addresses(Some(reference));
    let data_nodes = || nodes.iter().filter(|node| node.member.role == Role::Data);
    let consistent = data_nodes()
        .filter_map(|node| node.node.as_ref())
        .all(|node| canonical_addresses(node.vip.as_ref()) == expected);
    let unreachable = data_nodes()
        .filter(|node| node.node.is_none())
        .map(|node| node.member.node_id)
        .collect();
    Some(VipReport {
        addresses: reference.addresses.clone(),
        interface: reference.interface.clone(),
        held_by,
        unreachable,
        consistent,
    })
}

/// The addresses in a comparable form: canonical text, sorted. No virtual IP: none.
fn canonical_addresses(vip: Option<&VipStatus>) -> Vec<String> {
    let mut addresses: Vec<String> = vip
        .map(|vip| vip.addresses.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|text| {
            text.parse::<VipAddr>()
                .map_or_else(|_| text.clone(), |vip| vip.to_string())
        })
        .collect();
    addresses.sort_unstable();
    addresses
}

/// `vip: 192.0.2.10/24 on eth0, held by n1`, or what is wrong with the virtual IP; nothing for a
/// cluster without one.
pub fn vip_lines(report: &StatusReport) -> Vec<String> {
    let Some(vip) = &report.vip else {
        return Vec::new();
    };
    let members = &report.cluster.members;
    let addresses = vip.addresses.join(", ");
    let mut lines = Vec::new();
    match vip.held_by.as_slice() {
        [] => {
            let mut line = format!("vip: {addresses}, NOT HELD");
            if !vip.unreachable.is_empty() {
                line.push_str(&format!(
                    " by any node that answered ({} did not answer)",
                    join_names(members, &vip.unreachable, "and")
                ));
            }
            let witness_leads = report.cluster.leader_id.and_then(|leader_id| {
                members
                    .iter()
                    .find(|member| member.node_id == leader_id && member.role == Role::Witness)
            });
            if let Some(leader) = witness_leads {
                line.push_str(&format!(
                    "; the leader {} is a witness, which never holds it",
                    leader.name
                ));
            }
            lines.push(line);
        }
        [holder] => {
            let mut line = format!(
                "vip: {addresses} on {}, held by {}",
                vip.interface,
                member_name(members, *holder)
            );
            if let Some(leader_id) = report.cluster.leader_id.filter(|id| id != holder) {
                line.push_str(&format!(
                    ", which is NOT THE LEADER ({})",
                    member_name(members, leader_id)
                ));
            }
            lines.push(line);
        }
        holders => lines.push(format!(
            "vip: HELD BY {} ({addresses}): only the leader may hold it",
            join_names(members, holders, "AND")
        )),
    }
    for node in &report.nodes {
        if let Some(problem) = node
            .node
            .as_ref()
            .and_then(|view| view.vip.as_ref()?.problem.as_ref())
        {
            lines.push(format!(
                "vip: {} CANNOT HOLD IT ({problem}); it hands leadership to another data node",
                node.member.name
            ));
        }
    }
    if !vip.consistent {
        let each: Vec<String> = report
            .nodes
            .iter()
            .filter(|node| node.member.role == Role::Data)
            .filter_map(|node| {
                let addresses = match node.node.as_ref()?.vip.as_ref() {
                    Some(vip) => vip.addresses.join(", "),
                    None => "none".to_owned(),
                };
                Some(format!("{} {addresses}", node.member.name))
            })
            .collect();
        lines.push(format!(
            "vip: WARNING: the data nodes have different virtual IPs: {}",
            each.join("; ")
        ));
    }
    lines
}

/// A member's name, or its id if it is not a member.
fn member_name(members: &[Member], node_id: u64) -> String {
    members
        .iter()
        .find(|member| member.node_id == node_id)
        .map_or_else(|| node_id.to_string(), |member| member.name.clone())
}

/// `n1 and n2`, `n1, n2 and n3`.
fn join_names(members: &[Member], node_ids: &[u64], and: &str) -> String {
    let names: Vec<String> = node_ids
        .iter()
        .map(|node_id| member_name(members, *node_id))
        .collect();
    match names.split_last() {
        Some((last, rest)) if !rest.is_empty() => format!("{} {and} {last}", rest.join(", ")),
        _ => names.join(""),
    }
}

pub fn render_status(report: &StatusReport) -> String {
    let mut table = Table::new(&[
        "ID",
        "NAME",
        "ROLE",
        "VOTER",
        "STATE",
        "TERM",
        "COMMITTED",
        "APPLIED",
        "LAG",
        "ADMIN",
    ]);
    for NodeReport {
        member, node, lag, ..
    } in &report.nodes
    {
        let (state, term, committed, applied) = match node {
            Some(node) => (
                node.state.clone(),
                node.term.to_string(),
                opt_u64(node.committed_index),
                opt_u64(node.applied_index),
            ),
            None => (
                "unreachable".to_owned(),
                "-".to_owned(),
                "-".to_owned(),
                "-".to_owned(),
            ),
        };
        table.push_row(vec![
            member.node_id.to_string(),
            member.name.clone(),
            member.role.to_string(),
            yes_no(member.voter),
            state,
            term,
            committed,
            applied,
            opt_u64(*lag),
            member.admin_addr.clone(),
        ]);
    }
    let vip_lines: String = vip_lines(report)
        .into_iter()
        .map(|line| line + "\n")
        .collect();
    format!(
        "{}\n{vip_lines}{}\n{}",
        leader_line(&report.cluster),
        table.render(),
        render_blobs(report)
    )
}

/// The redundancy line and, per data node: whether it answers, the blobs it must hold, holds
/// and lacks, and how its resync is going.
fn render_blobs(report: &StatusReport) -> String {
    let mut table = Table::new(&[
        "ID",
        "NAME",
        "REACHABLE",
        "MUST HOLD",
        "HOLDS",
        "MISSING",
        "COPIED",
        "RESYNCED",
        "DEGRADED",
    ]);
    for NodeReport {
        member,
        node,
        blobs_missing,
        blobs_assigned,
        ..
    } in &report.nodes
    {
        if member.role != Role::Data {
            continue;
        }
        let mail = node.as_ref().and_then(|node| node.mail.as_ref());
        let reachable = if report.cluster.unreachable.contains(&member.node_id) {
            "no"
        } else if node.is_some() {
            "yes"
        } else {
            "no answer"
        };
        let holds = blobs_assigned.map(|must| must.saturating_sub(blobs_missing.unwrap_or(0)));
        let copied = match (holds, *blobs_assigned) {
            (Some(_), Some(0)) => "100%".to_owned(),
            // Rounded down: 100% only when nothing is missing.
            (Some(holds), Some(must)) => format!("{}%", holds * 100 / must),
            _ => "-".to_owned(),
        };
        table.push_row(vec![
            member.node_id.to_string(),
            member.name.clone(),
            reachable.to_owned(),
            opt_u64(*blobs_assigned),
            opt_u64(holds),
            opt_u64(*blobs_missing),
            copied,
            opt_u64(mail.map(|mail| mail.resync_fetched)),
            mail.map_or_else(|| "-".to_owned(), |mail| yes_no(mail.degraded)),
        ]);
    }
    format!("{}\n{}", redundancy_line(report), table.render())
}

/// `redundancy: full`, or what keeps mail from being held twice.
pub fn redundancy_line(report: &StatusReport) -> String {
    match report.cluster.redundant {
        Some(true) => return "redundancy: full".to_owned(),
        None => return "redundancy: unknown (the cluster does not report it)".to_owned(),
        Some(false) => {}
    }
    let lacking: Vec<(&str, u64)> = report
        .nodes
        .iter()
        .filter_map(|node| {
            let n_missing = node.blobs_missing.filter(|n_missing| *n_missing > 0)?;
            Some((node.member.name.as_str(), n_missing))
        })
        .collect();
    let mut reasons = Vec::new();
    let unreachable: Vec<&str> = report
        .cluster
        .members
        .iter()
        .filter(|member| member.role == Role::Data)
        .filter(|member| report.cluster.unreachable.contains(&member.node_id))
        .map(|member| member.name.as_str())
        .collect();
    if !unreachable.is_empty() {
        reasons.push(format!("{} not reachable", unreachable.join(", ")));
    }
    let misplaced = report.cluster.blobs_misplaced;
    if misplaced > 0 {
        reasons.push(format!(
            "{misplaced} {} not yet placed on two member data nodes",
            plural(misplaced, "blob", "blobs")
        ));
    }
    if !lacking.is_empty() {
        let n_missing: u64 = lacking.iter().map(|(_, n_missing)| n_missing).sum();
        let names: Vec<&str> = lacking.iter().map(|(name, _)| *name).collect();
        reasons.push(format!(
            "{n_missing} {} missing on {}",
            plural(n_missing, "blob", "blobs"),
            names.join(", ")
        ));
    }
    let n_data_voters = report
        .cluster
        .members
        .iter()
        .filter(|member| member.role == Role::Data && member.voter)
        .count();
    if n_data_voters < 2 {
        reasons.push(format!(
            "{n_data_voters} data {}, 2 needed",
            plural(n_data_voters as u64, "voter", "voters")
        ));
    }
    if reasons.is_empty() {
        "redundancy: DEGRADED".to_owned()
    } else {
        format!("redundancy: DEGRADED ({})", reasons.join("; "))
    }
}

fn plural<'a>(n: u64, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 { one } else { many }
}

/// `cluster mcluster: leader 1 (n1), term 3`.
pub fn leader_line(status: &ClusterStatus) -> String {
    match status.leader_id {
        Some(leader_id) => {
            let name = status
                .members
                .iter()
                .find(|member| member.node_id == leader_id)
                .map_or("?", |member| member.name.as_str());
            format!(
                "cluster {}: leader {leader_id} ({name}), term {}",
                status.cluster_name, status.term
            )
        }
        None => format!(
            "cluster {}: no leader, term {}",
            status.cluster_name, status.term
        ),
    }
}

pub fn status(ctx: &Context, json: bool) -> Result<()> {
    let report = collect_status(&ctx.admin_client()?)?;
    if json {
        print_json(&report)
    } else {
        print!("{}", render_status(&report));
        Ok(())
    }
}

pub fn render_members(members: &[Member]) -> String {
    let mut table = Table::new(&["ID", "NAME", "ROLE", "VOTER", "MATCHED", "RAFT", "ADMIN"]);
    for member in members {
        table.push_row(vec![
            member.node_id.to_string(),
            member.name.clone(),
            member.role.to_string(),
            yes_no(member.voter),
            opt_u64(member.matched_index),
            member.raft_addr.clone(),
            member.admin_addr.clone(),
        ]);
    }
    table.render()
}

pub fn members(ctx: &Context, json: bool) -> Result<()> {
    let members = ctx.admin_client()?.members().context("list members")?;
    if json {
        print_json(&members)
    } else {
        print!("{}", render_members(&members));
        Ok(())
    }
}

/// `mclusterctl failover [--to NODE]`: moves leadership and, if the cluster has a virtual IP,
/// waits (up to [`VIP_TAKEOVER_TIMEOUT`]) until the new leader holds it. Leadership has moved once
/// the cluster answers, so a VIP that does not follow is a warning, not a failure.
pub fn failover(ctx: &Context, to: Option<&str>) -> Result<()> {
    let outcome = fail_over(&ctx.admin_client()?, to, VIP_TAKEOVER_TIMEOUT)?;
    let (lines, warnings) = failover_lines(&outcome);
    for line in lines {
        println!("{line}");
    }
    for warning in warnings {
        eprintln!("warning: {warning}");
    }
    Ok(())
}

/// What `failover` saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailoverOutcome {
    pub leader: u64,
    /// "?" if the new leader is not among the members listed before.
    pub leader_name: String,
    pub vip: VipMove,
}

/// Where the virtual IP went with leadership.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VipMove {
    /// Neither the new leader nor any other data node that answered has a virtual IP.
    NoVip,
    /// The new leader holds it `elapsed` after the failover request went out; `also_held_by`
    /// names other nodes that still say they hold it (which must not happen).
    Held {
        addresses: Vec<String>,
        elapsed: Duration,
        also_held_by: Vec<String>,
    },
    /// The new leader did not hold it within `waited`; `addresses` is `None` if it never
    /// answered.
    NotHeld {
        addresses: Option<Vec<String>>,
        waited: Duration,
    },
    /// The new leader has no virtual IP, but these data nodes (name, addresses) do.
    LeaderHasNone { others: Vec<(String, Vec<String>)> },
}

/// Asks for the failover, then watches the new leader's `GET /v1/node` for the virtual IP for up
/// to `vip_timeout` after leadership moved.
pub fn fail_over(
    client: &Client,
    to: Option<&str>,
    vip_timeout: Duration,
) -> Result<FailoverOutcome> {
    let members = client.members().context("list members")?;
    let to = to
        .map(|node| find_member(&members, node).map(|member| member.node_id))
        .transpose()?;
    let started = Instant::now();
    let leader = client.failover(to).context("fail over")?;
    let Some(leader_member) = members.iter().find(|member| member.node_id == leader) else {
        return Ok(FailoverOutcome {
            leader,
            leader_name: "?".to_owned(),
            vip: VipMove::NoVip,
        });
    };
    let deadline = Instant::now() + vip_timeout;
    let url = client.url_of(&leader_member.admin_addr);
    let others: Vec<Member> = members
        .iter()
        .filter(|member| member.node_id != leader && member.role == Role::Data)
        .cloned()
        .collect();
    let mut addresses = None;
    let vip = loop {
        let timeout = NODE_PROBE_TIMEOUT.min(deadline.saturating_duration_since(Instant::now()));
        match client.node_at(&url, timeout.max(VIP_POLL_INTERVAL)) {
            Ok(NodeStatus { vip: None, .. }) => {
                break leader_has_no_vip(client, &others);
            }
            Ok(NodeStatus { vip: Some(vip), .. }) if vip.held => {
                let elapsed = started.elapsed();
                break VipMove::Held {
                    addresses: vip.addresses,
                    elapsed,
                    also_held_by: still_held_by(client, &others),
                };
            }
            Ok(NodeStatus { vip: Some(vip), .. }) => addresses = Some(vip.addresses),
            // Busy becoming leader, perhaps: ask again until the deadline.
            Err(_) => {}
        }
        if Instant::now() + VIP_POLL_INTERVAL >= deadline {
            break VipMove::NotHeld {
                addresses,
                waited: vip_timeout,
            };
        }
        std::thread::sleep(VIP_POLL_INTERVAL);
    };
    Ok(FailoverOutcome {
        leader,
        leader_name: leader_member.name.clone(),
        vip,
    })
}

/// `NoVip`, or the data nodes that do have one.
fn leader_has_no_vip(client: &Client, others: &[Member]) -> VipMove {
    let with_vip: Vec<(String, Vec<String>)> = others
        .iter()
        .zip(probe_nodes(client, others))
        .filter_map(|(member, node)| Some((member.name.clone(), node?.vip?.addresses)))
        .collect();
    if with_vip.is_empty() {
        VipMove::NoVip
    } else {
        VipMove::LeaderHasNone { others: with_vip }
    }
}

/// The names of the nodes among `others` that say they hold the virtual IP.
fn still_held_by(client: &Client, others: &[Member]) -> Vec<String> {
    others
        .iter()
        .zip(probe_nodes(client, others))
        .filter(|(_, node)| {
            node.as_ref()
                .and_then(|node| node.vip.as_ref())
                .is_some_and(|vip| vip.held)
        })
        .map(|(member, _)| member.name.clone())
        .collect()
}

/// What `failover` prints: lines for standard output, and warnings.
pub fn failover_lines(outcome: &FailoverOutcome) -> (Vec<String>, Vec<String>) {
    let FailoverOutcome {
        leader,
        leader_name,
        vip,
    } = outcome;
    let node = format!("node {leader} ({leader_name})");
    let leader_is_now = format!("leader is now {node}");
    match vip {
        VipMove::NoVip => (vec![leader_is_now], vec![]),
        VipMove::Held {
            addresses,
            elapsed,
            also_held_by,
        } => {
            let moved = format!(
                "leadership and VIP {} moved to {node} in {} ms",
                addresses.join(", "),
                elapsed.as_millis()
            );
            let warnings = if also_held_by.is_empty() {
                vec![]
            } else {
                vec![format!(
                    "{} still {} to hold the VIP too: check `mclusterctl status` and its log",
                    also_held_by.join(" and "),
                    if also_held_by.len() == 1 {
                        "says"
                    } else {
                        "say"
                    }
                )]
            };
            (vec![moved], warnings)
        }
        VipMove::NotHeld {
            addresses: Some(addresses),
            waited,
        } => (
            vec![leader_is_now],
            vec![format!(
                "{leader_name} leads but has not taken the VIP {} within {}; check `mclusterctl \
                 status` and {leader_name}'s log",
                addresses.join(", "),
                short_duration(*waited)
            )],
        ),
        VipMove::NotHeld {
            addresses: None,
            waited,
        } => (
            vec![leader_is_now],
            vec![format!(
                "{leader_name} did not answer within {}, so whether it took the virtual IP is \
                 unknown; check `mclusterctl status`",
                short_duration(*waited)
            )],
        ),
        VipMove::LeaderHasNone { others } => {
            let others: Vec<String> = others
                .iter()
                .map(|(name, addresses)| format!("{name} has {}", addresses.join(", ")))
                .collect();
            (
                vec![leader_is_now],
                vec![format!(
                    "{leader_name} has no virtual IP configured but {}: no node holds it while \
                     {leader_name} leads; give every data node the same [vip] addresses",
                    others.join(" and ")
                )],
            )
        }
    }
}

/// `5 s`, or `300 ms` when not whole seconds.
fn short_duration(duration: Duration) -> String {
    if duration.subsec_millis() == 0 {
        format!("{} s", duration.as_secs())
    } else {
        format!("{} ms", duration.as_millis())
    }
}

/// The member named by `node`: an id if it is a number, else a name.
/// The member `node` names: a node id, or a name that exactly one member has (a cluster joined
/// before names were checked may have two members of one name; then only the id will do).
pub fn find_member<'a>(members: &'a [Member], node: &str) -> Result<&'a Member> {
    let by_id = node.parse::<u64>().ok();
    if let Some(member) = members.iter().find(|member| Some(member.node_id) == by_id) {
        return Ok(member);
    }
    let named: Vec<&Member> = members.iter().filter(|m| m.name == node).collect();
    if named.len() > 1 {
        let ids: Vec<String> = named.iter().map(|m| m.node_id.to_string()).collect();
        bail!(
            "{node:?} names {} members (nodes {}): give the node id instead",
            named.len(),
            ids.join(", ")
        );
    }
    named.first().copied().with_context(|| {
        let known: Vec<String> = members
            .iter()
            .map(|member| format!("{} ({})", member.node_id, member.name))
            .collect();
        format!("no member {node:?}; members are {}", known.join(", "))
    })
}

// ---------------------------------------------------------------------------------------------
// domains and accounts
// ---------------------------------------------------------------------------------------------

pub fn domain_add(ctx: &Context, name: &str) -> Result<()> {
    let domain = ctx
        .admin_client()?
        .add_domain(name)
        .with_context(|| format!("add domain {name}"))?;
    println!("added domain {}", domain.name);
    Ok(())
}

pub fn render_domains(domains: &[Domain]) -> String {
    let mut table = Table::new(&["NAME", "ENABLED", "CREATED"]);
    for domain in domains {
        table.push_row(vec![
            domain.name.clone(),
            yes_no(domain.enabled),
            unix_time(domain.created_at),
        ]);
    }
    table.render()
}

pub fn domain_list(ctx: &Context, json: bool) -> Result<()> {
    let mut domains = ctx.admin_client()?.domains().context("list domains")?;
    domains.sort_by(|a, b| a.name.cmp(&b.name));
    if json {
        print_json(&domains)
    } else {
        print!("{}", render_domains(&domains));
        Ok(())
    }
}

pub fn domain_del(ctx: &Context, name: &str) -> Result<()> {
    ctx.admin_client()?
        .delete_domain(name)
        .with_context(|| format!("delete domain {name}"))?;
    println!("deleted domain {name}");
    Ok(())
}

pub fn user_add(
    ctx: &Context,
    address: &str,
    password: Option<String>,
    quota_mb: u64,
) -> Result<()> {
    let client = ctx.admin_client()?;
    let password = choose_password(password, || policy_password_length(&client))?;
    let account = client
        .add_account(address, password.text(), quota_mb)
        .with_context(|| format!("add account {address}"))?;
    println!(
        "added account {} (quota {} MB)",
        account.address, account.quota_mb
    );
    password.print_if_generated();
    Ok(())
}

pub fn render_accounts(accounts: &[Account]) -> String {
    let mut table = Table::new(&["ADDRESS", "DOMAIN", "QUOTA", "ENABLED", "CREATED"]);
    for account in accounts {
        table.push_row(vec![
            account.address.clone(),
            account.domain.clone(),
            format!("{} MB", account.quota_mb),
            yes_no(account.enabled),
            unix_time(account.created_at),
        ]);
    }
    table.render()
}

pub fn user_list(ctx: &Context, domain: Option<&str>, json: bool) -> Result<()> {
    let mut accounts = ctx
        .admin_client()?
        .accounts(domain)
        .context("list accounts")?;
    accounts.sort_by(|a, b| (&a.domain, &a.address).cmp(&(&b.domain, &b.address)));
    if json {
        print_json(&accounts)
    } else {
        print!("{}", render_accounts(&accounts));
        Ok(())
    }
}

pub fn render_account(account: &Account) -> String {
    let Account {
        address,
        domain,
        quota_mb,
        enabled,
        created_at,
    } = account;
    let mut table = Table::headless();
    table.push_row(vec!["address:".to_owned(), address.clone()]);
    table.push_row(vec!["domain:".to_owned(), domain.clone()]);
    table.push_row(vec!["quota:".to_owned(), format!("{quota_mb} MB")]);
    table.push_row(vec!["enabled:".to_owned(), yes_no(*enabled)]);
    table.push_row(vec!["created:".to_owned(), unix_time(*created_at)]);
    table.render()
}

pub fn user_show(ctx: &Context, address: &str, json: bool) -> Result<()> {
    let account = ctx
        .admin_client()?
        .account(address)
        .with_context(|| format!("get account {address}"))?;
    if json {
        print_json(&account)
    } else {
        print!("{}", render_account(&account));
        Ok(())
    }
}

pub fn user_del(ctx: &Context, address: &str) -> Result<()> {
    ctx.admin_client()?
        .delete_account(address)
        .with_context(|| format!("delete account {address}"))?;
    println!("deleted account {address}");
    Ok(())
}

pub fn user_passwd(ctx: &Context, address: &str, password: Option<String>) -> Result<()> {
    let client = ctx.admin_client()?;
    let password = choose_password(password, || policy_password_length(&client))?;
    client
        .set_password(address, password.text())
        .with_context(|| format!("set the password of {address}"))?;
    println!("set the password of {address}");
    password.print_if_generated();
    Ok(())
}

pub fn user_set_enabled(ctx: &Context, address: &str, enabled: bool) -> Result<()> {
    let verb = if enabled { "enable" } else { "disable" };
    ctx.admin_client()?
        .set_enabled(address, enabled)
        .with_context(|| format!("{verb} account {address}"))?;
    println!("{verb}d account {address}");
    Ok(())
}

/// A password from `--password`, from standard input, or made up.
pub enum Password {
    Given(String),
    Generated(String),
}

impl Password {
    pub fn text(&self) -> &str {
        match self {
            Password::Given(text) | Password::Generated(text) => text,
        }
    }

    pub fn print_if_generated(&self) {
        if let Password::Generated(text) = self {
            println!("password: {text}");
        }
    }
}

/// The length the cluster's password policy asks of a new password (0 if the cluster does not
/// say: an older build).
fn policy_password_length(client: &Client) -> usize {
    client
        .get::<serde_json::Map<String, serde_json::Value>>("/v1/protection-policy")
        .ok()
        .and_then(|policy| policy.get("min-password-length")?.as_u64())
        .map_or(0, |n| n as usize)
}

/// `--password` if given; else the first line of standard input if that is not a terminal;
/// else a random one (which the caller prints) of at least `min_length()` characters.
pub fn choose_password(
    given: Option<String>,
    min_length: impl FnOnce() -> usize,
) -> Result<Password> {
    if let Some(text) = given {
        ensure!(!text.is_empty(), "the password is empty");
        return Ok(Password::Given(text));
    }
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        return Ok(Password::Generated(secrets::random_password_of(
            min_length(),
        )));
    }
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .context("read the password from standard input")?;
    password_from_line(&line).map(Password::Given)
}

/// The password in one line of input, without its line ending.
pub fn password_from_line(line: &str) -> Result<String> {
    let text = line.trim_end_matches(['\n', '\r']);
    if text.is_empty() {
        bail!("no password on standard input: pass --password, or pipe one in");
    }
    Ok(text.to_owned())
}

// ---------------------------------------------------------------------------------------------
// the outbound queue
// ---------------------------------------------------------------------------------------------

/// The envelope sender as SMTP writes it: `<>` for the null sender of a bounce.
fn sender_text(sender: &str) -> String {
    if sender.is_empty() {
        "<>".to_owned()
    } else {
        sender.to_owned()
    }
}

/// Where the message stands: `held` by an operator; `bouncing` when no recipient is pending
/// but the sender has still to be told of a failure; else `due` or `deferred` by its next
/// attempt time.
pub fn queue_state(entry: &QueueEntry, now: i64) -> &'static str {
    if entry.held {
        "held"
    } else if !entry.recipients.iter().any(|r| r.state == "pending") {
        "bouncing"
    } else if entry.next_attempt_at <= now {
        "due"
    } else {
        "deferred"
    }
}

/// When the next attempt is, seen from `now`: `-` while held (not until released), `now` once
/// due.
fn next_attempt_text(entry: &QueueEntry, now: i64) -> String {
    if entry.held {
        "-".to_owned()
    } else if entry.next_attempt_at <= now {
        "now".to_owned()
    } else {
        relative_time(entry.next_attempt_at, now)
    }
}

/// `4.4.1 connection refused`: a recipient's last failure, status code first.
fn recipient_error(recipient: &QueueRecipient) -> Option<String> {
    match (&recipient.last_status, &recipient.last_error) {
        (None, None) => None,
        (status, error) => Some(
            [status.as_deref(), error.as_deref()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" "),
        ),
    }
}

/// The most recent failure among the entry's recipients.
fn latest_error(entry: &QueueEntry) -> Option<String> {
    entry
        .recipients
        .iter()
        .filter_map(|r| Some((r.last_attempt_at, recipient_error(r)?)))
        .max_by_key(|(at, _)| *at)
        .map(|(_, error)| error)
}

/// `queue list`: one row per entry, then the total and, when the page is full, how to see
/// the next one.
pub fn render_queue(listing: &QueueListing, limit: u32, now: i64) -> String {
    let QueueListing { total, entries } = listing;
    let mut table = Table::new(&[
        "ID",
        "AGE",
        "SIZE",
        "SENDER",
        "RCPTS",
        "ATTEMPTS",
        "NEXT",
        "STATE",
        "LAST ERROR",
    ]);
    for entry in entries {
        let n_pending = entry
            .recipients
            .iter()
            .filter(|r| r.state == "pending")
            .count();
        table.push_row(vec![
            entry.id.clone(),
            span(now.saturating_sub(entry.arrived_at).max(0).unsigned_abs()),
            size(entry.size),
            sender_text(&entry.sender),
            format!("{n_pending}/{}", entry.recipients.len()),
            entry.attempts.to_string(),
            next_attempt_text(entry, now),
            queue_state(entry, now).to_owned(),
            latest_error(entry).map_or_else(|| "-".to_owned(), |e| truncate(&e, QUEUE_ERROR_CHARS)),
        ]);
    }
    let mut out = table.render();
    let plural = if *total == 1 { "" } else { "s" };
    out.push_str(&format!("total: {total} queued message{plural}\n"));
    if let Some(last) = entries.last().filter(|_| entries.len() >= limit as usize) {
        out.push_str(&format!(
            "more may follow: mclusterctl queue list --after {}\n",
            last.id
        ));
    }
    out
}

/// `queue show`: every field of the entry, then one row per recipient.
pub fn render_queue_entry(entry: &QueueEntry, now: i64) -> String {
    let QueueEntry {
        id,
        blob,
        size: n_bytes,
        sender,
        arrived_at,
        attempts,
        next_attempt_at,
        held,
        recipients,
    } = entry;
    let at = |time: i64| format!("{} ({})", unix_time_signed(time), relative_time(time, now));
    let next = if entry.next_attempt_at <= now {
        // `retry` sets it far into the past: the date means nothing then.
        "due now".to_owned()
    } else {
        at(*next_attempt_at)
    };
    let mut counts = Vec::new();
    for state in ["pending", "delivered", "failed", "bounced"] {
        let n = recipients.iter().filter(|r| r.state == state).count();
        if n > 0 {
            counts.push(format!("{n} {state}"));
        }
    }
    let mut fields = Table::headless();
    for (key, value) in [
        ("id:", id.clone()),
        ("state:", queue_state(entry, now).to_owned()),
        ("sender:", sender_text(sender)),
        ("size:", format!("{} ({n_bytes} bytes)", size(*n_bytes))),
        ("blob:", blob.clone()),
        ("arrived:", at(*arrived_at)),
        ("attempts:", attempts.to_string()),
        ("next attempt:", next),
        (
            "held:",
            if *held {
                "yes (not attempted until released)".to_owned()
            } else {
                "no".to_owned()
            },
        ),
        ("recipients:", counts.join(", ")),
    ] {
        fields.push_row(vec![key.to_owned(), value]);
    }
    let mut table = Table::new(&[
        "RECIPIENT",
        "STATE",
        "ATTEMPTS",
        "STATUS",
        "REMOTE",
        "LAST ATTEMPT",
        "ERROR",
    ]);
    for recipient in recipients {
        let QueueRecipient {
            address,
            state,
            attempts,
            last_status,
            last_error,
            last_remote,
            last_attempt_at,
        } = recipient;
        let or_dash = |text: &Option<String>| text.clone().unwrap_or_else(|| "-".to_owned());
        table.push_row(vec![
            address.clone(),
            state.clone(),
            attempts.to_string(),
            or_dash(last_status),
            or_dash(last_remote),
            last_attempt_at.map_or_else(|| "-".to_owned(), at),
            // The whole diagnostic, on one line: it is what the operator came to read.
            last_error
                .as_deref()
                .map_or_else(|| "-".to_owned(), |e| truncate(e, usize::MAX)),
        ]);
    }
    format!("{}\n{}", fields.render(), table.render())
}

fn now_secs() -> i64 {
    i64::try_from(unix_now()).unwrap_or(i64::MAX)
}

/// `mclusterctl queue list`.
pub fn queue_list(ctx: &Context, after: Option<&str>, limit: u32, json: bool) -> Result<()> {
    let listing = ctx
        .admin_client()?
        .queue(after, limit)
        .context("list the outbound queue")?;
    if json {
        print_json(&listing)
    } else {
        print!("{}", render_queue(&listing, limit, now_secs()));
        Ok(())
    }
}

/// `mclusterctl queue show ID`.
pub fn queue_show(ctx: &Context, id: &str, json: bool) -> Result<()> {
    let entry = ctx
        .admin_client()?
        .queued(id)
        .with_context(|| format!("get queued message {id}"))?;
    if json {
        print_json(&entry)
    } else {
        print!("{}", render_queue_entry(&entry, now_secs()));
        Ok(())
    }
}

/// What `queue retry|hold|release` prints about the entry afterwards (`None`: it is gone).
pub fn queue_act_line(id: &str, action: QueueAction, entry: Option<&QueueEntry>) -> String {
    let Some(entry) = entry else {
        return format!("queued message {id} is gone: nothing was left to deliver or report");
    };
    let n_pending = entry
        .recipients
        .iter()
        .filter(|r| r.state == "pending")
        .count();
    match action {
        QueueAction::Retry => format!(
            "queued message {id} is due now ({n_pending} pending recipient{})",
            if n_pending == 1 { "" } else { "s" }
        ),
        QueueAction::Hold => format!("held queued message {id}: not attempted until released"),
        QueueAction::Release => format!("released queued message {id}"),
    }
}

/// `mclusterctl queue retry|hold|release ID`.
pub fn queue_act(ctx: &Context, id: &str, action: QueueAction) -> Result<()> {
    let entry = ctx
        .admin_client()?
        .queue_act(id, action)
        .with_context(|| format!("{} queued message {id}", action.as_str()))?;
    println!("{}", queue_act_line(id, action, entry.as_ref()));
    Ok(())
}

/// `mclusterctl queue delete ID`: gone without a report to the sender.
pub fn queue_delete(ctx: &Context, id: &str) -> Result<()> {
    ctx.admin_client()?
        .delete_queued(id)
        .with_context(|| format!("delete queued message {id}"))?;
    println!("deleted queued message {id}; its sender is not told");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// mail: the clients' TLS certificate and the mail policy
// ---------------------------------------------------------------------------------------------

/// `mclusterctl tls show`: the PEM chain, ready to save to a file.
pub fn tls_show(ctx: &Context) -> Result<()> {
    let cert = match ctx.admin_client()?.client_cert() {
        Ok(cert) => cert,
        Err(err) if error_status(&err) == Some(404) => bail!(
            "the cluster has no certificate for mail clients; set one with `mclusterctl tls set \
             --cert FILE --key FILE`"
        ),
        Err(err) => return Err(err).context("get the certificate for mail clients"),
    };
    println!("{}", cert.cert_pem.trim_end());
    Ok(())
}

/// `mclusterctl tls set --cert FILE --key FILE`: the chain (leaf first) and its private key.
pub fn tls_set(ctx: &Context, cert: &Path, key: &Path) -> Result<()> {
    let cert_pem = files::read_text(cert)?;
    let key_pem = files::read_text(key)?;
    check_pem(cert, &cert_pem, "CERTIFICATE-----")?;
    check_pem(key, &key_pem, "PRIVATE KEY-----")?;
    ctx.admin_client()?
        .set_client_tls(&cert_pem, &key_pem)
        .context("set the certificate for mail clients")?;
    println!(
        "set the certificate for mail clients from {}; every node presents it on new TLS \
         connections once it has applied the change",
        cert.display()
    );
    Ok(())
}

/// Catches a swapped or wrong file before its contents travel to the cluster.
fn check_pem(path: &Path, text: &str, label_end: &str) -> Result<()> {
    let wanted = label_end.trim_end_matches('-');
    ensure!(
        text.lines()
            .any(|line| line.starts_with("-----BEGIN ") && line.ends_with(label_end)),
        "{} holds no PEM {wanted}",
        path.display()
    );
    Ok(())
}

pub fn render_mail_policy(policy: &MailPolicy) -> String {
    let MailPolicy {
        max_message_bytes,
        max_recipients,
        degraded_accept,
        auth_without_tls,
        max_connections,
        max_connections_per_ip,
        smtp_connections_per_ip,
        submission_connections_per_ip,
        imap_connections_per_ip,
        pop3_connections_per_ip,
        max_errors,
        smtp_idle_timeout_secs,
        pop3_idle_timeout_secs,
        max_mime_parts,
        max_mime_depth,
        max_header_fields,
        max_header_bytes,
    } = policy;
    let limit = |value: &Option<u32>| value.map_or_else(|| "-".to_owned(), |v| v.to_string());
    let mut rows = vec![
        ("max-message-bytes", max_message_bytes.to_string()),
        ("max-recipients", max_recipients.to_string()),
        ("degraded-accept", degraded_accept.clone()),
        ("auth-without-tls", auth_without_tls.to_string()),
        ("max-connections", max_connections.to_string()),
    ];
    // Only an older server has the one shared limit; a newer one has one per service.
    if let Some(shared) = max_connections_per_ip {
        rows.push(("max-connections-per-ip", shared.to_string()));
    }
    for (key, value) in [
        ("smtp-connections-per-ip", smtp_connections_per_ip),
        (
            "submission-connections-per-ip",
            submission_connections_per_ip,
        ),
        ("imap-connections-per-ip", imap_connections_per_ip),
        ("pop3-connections-per-ip", pop3_connections_per_ip),
    ] {
        if let Some(value) = value {
            rows.push((key, value.to_string()));
        }
    }
    rows.extend([
        ("max-errors", max_errors.to_string()),
        ("smtp-idle-timeout-secs", smtp_idle_timeout_secs.to_string()),
        ("pop3-idle-timeout-secs", pop3_idle_timeout_secs.to_string()),
        ("max-mime-parts", limit(max_mime_parts)),
        ("max-mime-depth", limit(max_mime_depth)),
        ("max-header-fields", limit(max_header_fields)),
        ("max-header-bytes", limit(max_header_bytes)),
    ]);
    let mut table = Table::new(&["KEY", "VALUE"]);
    for (key, value) in rows {
        table.push_row(vec![key.to_owned(), value]);
    }
    table.render()
}

pub fn policy_show(ctx: &Context, json: bool) -> Result<()> {
    let policy = ctx
        .admin_client()?
        .mail_policy()
        .context("get the mail policy")?;
    if json {
        print_json(&policy)
    } else {
        print!("{}", render_mail_policy(&policy));
        Ok(())
    }
}

/// `mclusterctl policy set KEY=VALUE...`: the cluster checks keys and values and changes all of
/// them or none.
pub fn policy_set(ctx: &Context, settings: &[String]) -> Result<()> {
    let changes = parse_policy_settings(settings)?;
    let policy = ctx
        .admin_client()?
        .set_mail_policy(&changes)
        .context("set the mail policy")?;
    println!("set the mail policy; it is now:");
    print!("{}", render_mail_policy(&policy));
    Ok(())
}

/// `KEY=VALUE` arguments as the JSON object `PUT /v1/mail-policy` takes.
pub fn parse_policy_settings(
    settings: &[String],
) -> Result<serde_json::Map<String, serde_json::Value>> {
    ensure!(!settings.is_empty(), "no policy settings: pass KEY=VALUE");
    parse_settings(settings, "policy", "max-recipients=200", &[])
}

/// `KEY=VALUE` arguments as the JSON object a policy's `PUT` takes: the values of `text_keys`
/// as text, the others as a number or boolean when they read as one (the cluster checks the
/// keys). `what` names the policy in errors; `example` is one setting of it.
pub fn parse_settings(
    settings: &[String],
    what: &str,
    example: &str,
    text_keys: &[&str],
) -> Result<serde_json::Map<String, serde_json::Value>> {
    let mut changes = serde_json::Map::new();
    for setting in settings {
        let (key, value) = setting
            .split_once('=')
            .filter(|(key, _)| !key.is_empty())
            .with_context(|| {
                format!("bad {what} setting {setting:?}: expected KEY=VALUE, such as {example}")
            })?;
        let value = if text_keys.contains(&key) {
            serde_json::Value::String(value.to_owned())
        } else {
            policy_value(value)
        };
        if changes.insert(key.to_owned(), value).is_some() {
            bail!("{what} key {key} is given twice");
        }
    }
    Ok(changes)
}

/// A number or boolean if the text reads as one, else the text as a string.
pub fn policy_value(text: &str) -> serde_json::Value {
    match serde_json::from_str(text) {
        Ok(value @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_))) => value,
        _ => serde_json::Value::String(text.to_owned()),
    }
}

/// The longest character-string a DNS TXT record holds (RFC 1035 3.3); longer values are
/// split into several, which a verifier joins again (RFC 6376 3.6.2.2).
const TXT_STRING_MAX: usize = 255;

/// A DKIM key's TXT record as a zone file line, its value split into quoted strings.
pub fn dkim_zone_line(key: &DkimKey) -> String {
    let strings: Vec<String> = key
        .dns_value
        .as_bytes()
        .chunks(TXT_STRING_MAX)
        .map(|chunk| format!("\"{}\"", String::from_utf8_lossy(chunk)))
        .collect();
    format!("{}. IN TXT ( {} )", key.dns_name, strings.join(" "))
}

/// A domain's DKIM key and the record to publish for it.
pub fn render_dkim_key(key: &DkimKey) -> String {
    format!(
        "domain:    {}\n\
         selector:  {}\n\
         algorithm: {}\n\
         created:   {}\n\
         \n\
         DNS TXT record to publish:\n\
         name:  {}\n\
         value: {}\n\
         \n\
         As a zone file line:\n\
         {}\n",
        key.domain,
        key.selector,
        key.algorithm,
        unix_time(key.created_at),
        key.dns_name,
        key.dns_value,
        dkim_zone_line(key),
    )
}

pub fn render_dkim_keys(keys: &[DkimKey]) -> String {
    let mut table = Table::new(&["DOMAIN", "SELECTOR", "ALGORITHM", "CREATED", "DNS NAME"]);
    for key in keys {
        table.push_row(vec![
            key.domain.clone(),
            key.selector.clone(),
            key.algorithm.clone(),
            unix_time(key.created_at),
            key.dns_name.clone(),
        ]);
    }
    table.render()
}

fn print_dkim_key(key: &DkimKey, json: bool, headline: Option<String>) -> Result<()> {
    if json {
        return print_json(key);
    }
    if let Some(headline) = headline {
        println!("{headline}");
    }
    print!("{}", render_dkim_key(key));
    Ok(())
}

/// `mclusterctl dkim generate DOMAIN`: the cluster makes the key; it never leaves the cluster.
pub fn dkim_generate(
    ctx: &Context,
    domain: &str,
    selector: Option<&str>,
    algorithm: Option<DkimAlgorithm>,
    json: bool,
) -> Result<()> {
    let key = ctx
        .admin_client()?
        .set_dkim_key(domain, selector, algorithm, None)
        .with_context(|| format!("make a DKIM key for {domain}"))?;
    let headline = format!(
        "made a new {} DKIM key for {}; mail from the domain is signed with it from now on, so \
         publish its record:\n",
        key.algorithm, key.domain
    );
    print_dkim_key(&key, json, Some(headline))
}

/// `mclusterctl dkim import DOMAIN --selector S --key FILE`.
pub fn dkim_import(
    ctx: &Context,
    domain: &str,
    selector: &str,
    key_file: &Path,
    json: bool,
) -> Result<()> {
    let pem = files::read_text(key_file)?;
    check_pem(key_file, &pem, "PRIVATE KEY-----")?;
    let key = ctx
        .admin_client()?
        .set_dkim_key(domain, Some(selector), None, Some(&pem))
        .with_context(|| format!("import the DKIM key of {domain}"))?;
    let headline = format!(
        "imported a {} DKIM key for {} from {}; mail from the domain is signed with it from now \
         on:\n",
        key.algorithm,
        key.domain,
        key_file.display()
    );
    print_dkim_key(&key, json, Some(headline))
}

pub fn dkim_show(ctx: &Context, domain: &str, json: bool) -> Result<()> {
    let key = ctx
        .admin_client()?
        .dkim_key(domain)
        .with_context(|| format!("get the DKIM key of {domain}"))?;
    print_dkim_key(&key, json, None)
}

pub fn dkim_list(ctx: &Context, json: bool) -> Result<()> {
    let keys = ctx.admin_client()?.dkim_keys().context("list DKIM keys")?;
    if json {
        print_json(&keys)
    } else {
        print!("{}", render_dkim_keys(&keys));
        Ok(())
    }
}

pub fn dkim_delete(ctx: &Context, domain: &str) -> Result<()> {
    ctx.admin_client()?
        .delete_dkim_key(domain)
        .with_context(|| format!("delete the DKIM key of {domain}"))?;
    println!("deleted the DKIM key of {domain}; its mail goes out unsigned from now on");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// shared with demo
// ---------------------------------------------------------------------------------------------

/// Polls `GET /v1/status` until the cluster has a leader.
pub fn wait_for_leader(
    client: &Client,
    timeout: Duration,
    stop: &AtomicBool,
    processes: &mut [&mut NodeProcess],
) -> Result<ClusterStatus> {
    let mut found = None;
    process::wait_until("leader", timeout, stop, processes, || {
        let status = client.status()?;
        let ready = status.leader_id.is_some();
        if ready {
            found = Some(status);
        }
        Ok(ready)
    })?;
    found.context("the wait for a leader ended without a status")
}

/// Polls `GET /v1/members` until node `node_id` is a voter.
pub fn wait_for_voter(
    client: &Client,
    node_id: u64,
    timeout: Duration,
    stop: &AtomicBool,
    processes: &mut [&mut NodeProcess],
) -> Result<()> {
    process::wait_until(
        &format!("voter node {node_id}"),
        timeout,
        stop,
        processes,
        || {
            let members = client.members()?;
            Ok(members
                .iter()
                .any(|member| member.node_id == node_id && member.voter))
        },
    )
}

/// Saves a new cluster's client config, keeping a different old one as `<path>.bak`.
pub fn save_client_config(client_config: &ClientConfig, path: &Path) -> Result<Option<PathBuf>> {
    client_config
        .save_replacing(path)
        .context("write the client config")
}

pub fn print_backup_note(backup: Option<&Path>) {
    if let Some(backup) = backup {
        println!(
            "  (the previous client config is saved as {})",
            backup.display()
        );
    }
}

fn print_started(node_process: &NodeProcess) {
    println!(
        "started mclusterd for {}: pid {}, log {}",
        node_process.name,
        node_process.pid(),
        node_process.paths.log.display()
    );
}

fn find_mclusterd_if(start: bool, explicit: &Option<PathBuf>) -> Result<Option<PathBuf>> {
    if !start {
        return Ok(None);
    }
    MclusterdSearch::from_env(explicit.clone()).find().map(Some)
}

/// `host:port` becomes a URL in the scheme `client_config` uses (`https://` with the cluster
/// CA); trailing slashes go.
pub fn normalize_url(url: &str, client_config: &ClientConfig) -> String {
    let url = url.trim_end_matches('/');
    if url.contains("://") {
        url.to_owned()
    } else {
        client_config.url_for(url)
    }
}

fn indent(text: &str) -> String {
    text.lines().map(|line| format!("  {line}\n")).collect()
}

pub fn print_json<T: Serialize>(value: &T) -> Result<()> {
    let text = serde_json::to_string_pretty(value).context("encode JSON")?;
    println!("{text}");
    Ok(())
}
