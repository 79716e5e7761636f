//! The guard: a small child process that removes the virtual IP the moment mclusterd dies.
//!
//! A killed mclusterd cannot remove its address, and until the kernel's one-second lifetime
//! ends, its kernel keeps answering ARP for the VIP and resetting connections to it, while
//! clients that send to it once the lifetime ends lose their SYN for a whole retransmission
//! timeout. The guard holds the read end of a pipe whose write end only mclusterd holds: when
//! mclusterd dies in any way, the kernel closes the pipe, and the guard removes the addresses at
//! once. It cannot help a frozen (SIGSTOP) mclusterd, whose pipe stays open: the address
//! lifetime covers that case.

use std::io::Read;
use std::process::{ExitCode, Stdio};

use crate::config::{VipAddress, VipConfig};
use crate::vip::netlink::Netlink;

/// Starts the guard for `config` beside this process.
pub fn spawn(config: &VipConfig) -> std::io::Result<tokio::process::Child> {
    let exe = std::env::current_exe()?;
    let mut command = tokio::process::Command::new(exe);
    command
        .arg("--vip-guard")
        .arg(&config.interface)
        .args(config.addresses.iter().map(ToString::to_string))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        // Ctrl-C at a terminal signals the whole process group; the guard must outlive
        // mclusterd's shutdown to do its one job, so it gets a group of its own.
        .process_group(0)
        .kill_on_drop(false);
    command.spawn()
}

/// The guard's `main`: `args` is the interface followed by the addresses.
pub fn run(args: &[String]) -> ExitCode {
    let Some((interface, addresses)) = args.split_first() else {
        return ExitCode::from(2);
    };
    let addresses: Vec<VipAddress> = match addresses.iter().map(|a| a.parse()).collect() {
        Ok(addresses) => addresses,
        Err(err) => {
            eprintln!("mclusterd vip guard: {err:#}");
            return ExitCode::from(2);
        }
    };
    // Block until the parent is gone: end of file on stdin, whatever the way it ended.
    let mut stdin = std::io::stdin();
    let mut buf = [0u8; 64];
    loop {
        match stdin.read(&mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("mclusterd vip guard: {err}");
            return ExitCode::FAILURE;
        }
    };
    let removed = runtime.block_on(async {
        let netlink = Netlink::open()?;
        let link = netlink.link(interface).await?;
        let mut removed = Vec::new();
        for address in &addresses {
            if netlink.remove(link.index, address.ip).await? {
                removed.push(address.to_string());
            }
        }
        anyhow::Ok(removed)
    });
    match removed {
        Ok(removed) if removed.is_empty() => ExitCode::SUCCESS,
        Ok(removed) => {
            eprintln!(
                "mclusterd vip guard: mclusterd ended while holding the virtual IP; removed {}",
                removed.join(", ")
            );
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("mclusterd vip guard: could not remove the virtual IP: {err:#}");
            ExitCode::FAILURE
        }
    }
}
