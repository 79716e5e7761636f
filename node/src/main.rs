//! `mclusterd`: parses flags, sets up logging, and runs the node until SIGTERM or Ctrl-C.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser};
use node::config;
use raft_store::ClusterVersion;

/// The mcluster node daemon.
#[derive(Parser)]
#[command(name = "mclusterd", about)]
struct Flags {
    /// The node's configuration file (TOML).
    #[arg(long, short, required_unless_present_any = ["vip_guard", "man_page"])]
    config: Option<PathBuf>,
    /// Write mclusterd.8, the manual page, into DIR (for packaging) and exit.
    #[arg(long, hide = true, value_name = "DIR")]
    man_page: Option<PathBuf>,
    /// Internal: the virtual IP guard mclusterd starts beside itself (see node::vip::guard).
    #[arg(long, hide = true, num_args = 2.., value_names = ["INTERFACE", "CIDR"])]
    vip_guard: Vec<String>,
}

/// mclusterd.8 (a daemon's page is in section 8), generated from the flag definitions.
fn write_man_page(dir: &std::path::Path, version: &'static str) -> ExitCode {
    let command = Flags::command().version(version);
    let page = clap_mangen::Man::new(command).section("8");
    let mut text = Vec::new();
    let written = page
        .render(&mut text)
        .and_then(|()| std::fs::create_dir_all(dir))
        .and_then(|()| std::fs::write(dir.join("mclusterd.8"), text));
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("mclusterd: write {}/mclusterd.8: {err}", dir.display());
            ExitCode::FAILURE
        }
    }
}

/// `mclusterd --version`: the build and the cluster versions it runs.
fn version() -> String {
    format!(
        "{} (cluster versions {} to {})",
        raft_store::version::BUILD,
        ClusterVersion::OLDEST,
        ClusterVersion::NEWEST
    )
}

fn main() -> ExitCode {
    // Built at run time from the version constants; clap keeps it for the process's life.
    let version: &'static str = version().leak();
    let matches = Flags::command().version(version).get_matches();
    let flags = match Flags::from_arg_matches(&matches) {
        Ok(flags) => flags,
        Err(err) => err.exit(),
    };
    if let Some(dir) = &flags.man_page {
        return write_man_page(dir, version);
    }
    if !flags.vip_guard.is_empty() {
        return node::vip::guard::run(&flags.vip_guard);
    }
    let Some(config_path) = flags.config else {
        eprintln!("mclusterd: --config is required");
        return ExitCode::from(2);
    };
    let loaded = match config::load(&config_path) {
        Ok(loaded) => loaded,
        Err(err) => {
            eprintln!("mclusterd: {err:#}");
            return ExitCode::from(2);
        }
    };
    node::logging::init(loaded.config.log_format);
    for key in &loaded.unknown_keys {
        tracing::warn!(key = %key, file = %config_path.display(), "unknown configuration key ignored");
    }
    // Before the runtime: capability sets belong to threads (see node::privilege).
    if let Err(err) = drop_privileges(&loaded.config) {
        tracing::error!(error = format!("{err:#}"), "cannot drop privileges");
        return ExitCode::FAILURE;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("mclusterd: start tokio runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(node::run(loaded.config, shutdown_signal())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = format!("{err:#}"), "node failed");
            ExitCode::FAILURE
        }
    }
}

/// Becomes the configured service user, or warns about running as root without one.
fn drop_privileges(config: &node::Config) -> anyhow::Result<()> {
    let Some(account) = &config.account else {
        if nix::unistd::Uid::effective().is_root() {
            tracing::warn!(
                "running as root: set `user` in the configuration (or run from \
                 deploy/mclusterd.service) to keep only the three capabilities the node needs"
            );
        }
        return Ok(());
    };
    let mut dirs = vec![config.data_dir.as_path()];
    if config.role == raft_store::Role::Data {
        dirs.push(config.blob_dir.as_path());
    }
    let identity = node::privilege::become_user(account, &dirs)?;
    tracing::info!(
        user = %account.name,
        uid = identity.uid,
        gid = identity.gid,
        capabilities = %identity.capabilities.join(","),
        "running as the service user"
    );
    Ok(())
}

/// Completes on SIGTERM or SIGINT.
async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(term) => term,
        Err(err) => {
            tracing::error!(error = %err, "cannot listen for SIGTERM");
            return std::future::pending().await;
        }
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("received SIGTERM"),
        _ = tokio::signal::ctrl_c() => tracing::info!("received SIGINT"),
    }
}
