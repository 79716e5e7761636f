//! The mail listeners: binding them, accepting connections within the limits (a refused client
//! is told why, inside TLS on the implicit-TLS ports), and handing each connection to its
//! protocol's session.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use crate::mail_service::{MailContext, Refusal, Service, VIP_LEAVING};

/// Binds a mail listener.
pub async fn bind(service: Service, addr: SocketAddr) -> anyhow::Result<TcpListener> {
    use anyhow::Context;
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("bind {} on {addr}", service.name()))
}

/// Accepts connections until the task is aborted; sessions run in `sessions`, so aborting the
/// owner of that set ends them too.
/// `leaving` is the VIP manager's hand-over signal for listeners on the virtual IP (None for a
/// node's own addresses); sessions see it through [`MailContext::closing`].
pub async fn accept_loop(
    context: Arc<MailContext>,
    listener: TcpListener,
    service: Service,
    sessions: Arc<tokio::sync::Mutex<JoinSet<()>>>,
    leaving: Option<tokio::sync::watch::Receiver<bool>>,
) {
    tracing::info!(service = service.name(), addr = ?listener.local_addr().ok(), "listening");
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(err) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(service = service.name(), error = %err, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        // Before the limits: a blocked client takes no slot and uses up no rate.
        if let Some(blocked) = context.access.refuse_client(peer.ip()) {
            tracing::info!(service = service.name(), %peer, reason = %blocked.reason, "connection refused: blocked");
            let line = match service {
                Service::Pop3 | Service::Pop3s => format!("-ERR {}", blocked.reason),
                Service::Imap | Service::Imaps => format!("* BYE {}", blocked.reason),
                // RFC 5321 3.1: a 554 greeting.
                _ => format!("554 5.7.1 {}", blocked.reason),
            };
            tokio::spawn(refuse(context.clone(), stream, service, line));
            continue;
        }
        let slot = match context.admit(peer.ip(), service) {
            Ok(slot) => slot,
            Err(refusal) => {
                context
                    .metrics
                    .connections_refused
                    .fetch_add(1, Ordering::Relaxed);
                if let Refusal::RatePerIp { .. } = refusal {
                    context
                        .metrics
                        .connections_rate_limited
                        .fetch_add(1, Ordering::Relaxed);
                }
                tracing::info!(service = service.name(), %peer, ?refusal, "connection refused");
                tokio::spawn(refuse(
                    context.clone(),
                    stream,
                    service,
                    refusal.line(service),
                ));
                continue;
            }
        };
        let context = context.clone();
        let mut sessions = sessions.lock().await;
        while sessions.try_join_next().is_some() {}
        let session = async move {
            let _slot = slot;
            serve(context, stream, peer, service).await;
        };
        match &leaving {
            Some(leaving) => sessions.spawn(VIP_LEAVING.scope(leaving.clone(), session)),
            None => sessions.spawn(session),
        };
    }
}

/// Tells a refused client why (`line`, without its CRLF) and closes, within 5 s. On the
/// implicit-TLS ports the line goes inside TLS, since a client there reads nothing before
/// the handshake, and the session ends with close_notify.
async fn refuse(context: Arc<MailContext>, mut stream: TcpStream, service: Service, line: String) {
    let line = format!("{line}\r\n");
    let limit = Duration::from_secs(5);
    if !service.implicit_tls() {
        let _ = tokio::time::timeout(limit, stream.write_all(line.as_bytes())).await;
        return;
    }
    let Ok(_permit) = context.tls_refusals.try_acquire() else {
        return;
    };
    let Some(acceptor) = context.tls.acceptor() else {
        return;
    };
    let _ = tokio::time::timeout(limit, async {
        let mut tls = acceptor.accept(stream).await?;
        tls.write_all(line.as_bytes()).await?;
        tls.shutdown().await
    })
    .await;
}

async fn serve(context: Arc<MailContext>, stream: TcpStream, peer: SocketAddr, service: Service) {
    match service {
        Service::Smtp | Service::Submission | Service::Smtps => {
            context
                .metrics
                .smtp_sessions
                .fetch_add(1, Ordering::Relaxed);
            crate::smtp::serve(context, stream, peer, service).await;
        }
        Service::Pop3 | Service::Pop3s => {
            context
                .metrics
                .pop3_sessions
                .fetch_add(1, Ordering::Relaxed);
            crate::pop3::serve(context, stream, peer, service).await;
        }
        Service::Imap | Service::Imaps => {
            context
                .metrics
                .imap_sessions
                .fetch_add(1, Ordering::Relaxed);
            crate::imap::session::serve(context, stream, peer, service).await;
        }
    }
}
