//! The receiving side: accepts peers on the QUIC endpoint, checks who they are, and hands each
//! request to the local Raft node.

use std::path::{Path, PathBuf};

use openraft::ReadPolicy;
use openraft::error::{ClientWriteError, LinearizableReadError, RaftError};
use openraft::vote::RaftLeaderId;
use quinn::{Connection, RecvStream, SendStream};
use raft_store::blob_store::BlobStore;
use raft_store::{NodeId, Raft, SnapshotDir, Vote};
use rustls::pki_types::CertificateDer;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::task::JoinSet;
use tokio::time::timeout;

use crate::blob;
use crate::pki::cert_names_node;
use crate::transport::Transport;
use crate::wire::{Envelope, FrameError, Request, Response, SnapshotFile, read_frame, write_frame};

/// Serves peers until the endpoint is closed or this future is dropped. Every connection and
/// request task lives in a `JoinSet` owned here, so dropping (aborting) `serve` stops them all:
/// none is left calling into a Raft node that is shutting down.
pub async fn serve(
    transport: Transport,
    raft: Raft,
    snapshot_root: PathBuf,
    blobs: Option<BlobStore>,
) {
    let mut connections = JoinSet::new();
    while let Some(incoming) = transport.endpoint().accept().await {
        while connections.try_join_next().is_some() {}
        let raft = raft.clone();
        let snapshot_root = snapshot_root.clone();
        let blobs = blobs.clone();
        let transport = transport.clone();
        connections.spawn(async move {
            let remote = incoming.remote_address();
            match incoming.await {
                Ok(conn) => serve_connection(conn, transport, raft, snapshot_root, blobs).await,
                // A peer without a certificate from the cluster CA, or not speaking QUIC/TLS
                // properly, ends here.
                Err(err) => tracing::warn!(%remote, error = %err, "rejected peer connection"),
            }
        });
    }
}

async fn serve_connection(
    conn: Connection,
    transport: Transport,
    raft: Raft,
    snapshot_root: PathBuf,
    blobs: Option<BlobStore>,
) {
    let remote = conn.remote_address();
    let Some(cert) = peer_certificate(&conn) else {
        tracing::warn!(%remote, "peer connection without a client certificate");
        conn.close(1u32.into(), b"no certificate");
        return;
    };
    let mut requests = JoinSet::new();
    loop {
        let (send, recv) = match conn.accept_bi().await {
            Ok(streams) => streams,
            Err(
                quinn::ConnectionError::ApplicationClosed(_)
                | quinn::ConnectionError::LocallyClosed,
            ) => return,
            Err(err) => {
                tracing::debug!(%remote, error = %err, "peer connection ended");
                return;
            }
        };
        while requests.try_join_next().is_some() {}
        let raft = raft.clone();
        let snapshot_root = snapshot_root.clone();
        let cert = cert.clone();
        let blobs = blobs.clone();
        let transport = transport.clone();
        let stable_id = conn.stable_id();
        requests.spawn(async move {
            let context = StreamContext {
                transport,
                stable_id,
                raft,
                snapshot_root: &snapshot_root,
                blobs: blobs.as_ref(),
            };
            if let Err(err) = serve_stream(send, recv, &cert, context).await {
                tracing::warn!(%remote, error = %err, "bad request from peer");
            }
        });
    }
}

fn peer_certificate(conn: &Connection) -> Option<CertificateDer<'static>> {
    let identity = conn.peer_identity()?;
    let chain = identity.downcast::<Vec<CertificateDer<'static>>>().ok()?;
    chain.first().cloned()
}

/// A peer has this long to send its request once it opened a stream.
const REQUEST_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// A forwarded write or read-index request is answered within this time, or the sender is told
/// to retry (`NotLeader`; with the same request id, harmless if the write commits after all).
const FORWARDED_TIMEOUT: Duration = Duration::from_secs(8);

#[derive(Debug, thiserror::Error)]
enum StreamError {
    #[error("the request did not arrive in time")]
    Timeout,
    #[error("{0}")]
    Frame(#[from] FrameError),
    #[error("certificate does not name node {claimed}")]
    Impostor { claimed: NodeId },
    #[error("request claims node {claimed} but its vote names node {in_vote}")]
    VoteMismatch { claimed: NodeId, in_vote: NodeId },
    #[error("node {from} is not a member of the cluster")]
    NotMember { from: NodeId },
    #[error("snapshot file name {0:?} is not a plain file name")]
    BadFileName(String),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

/// What a request may use.
struct StreamContext<'a> {
    transport: Transport,
    /// quinn's id of the connection the request came on.
    stable_id: usize,
    raft: Raft,
    snapshot_root: &'a Path,
    blobs: Option<&'a BlobStore>,
}

async fn serve_stream(
    mut send: SendStream,
    mut recv: RecvStream,
    cert: &CertificateDer<'static>,
    context: StreamContext<'_>,
) -> Result<(), StreamError> {
    let StreamContext {
        transport,
        stable_id,
        raft,
        snapshot_root,
        blobs,
    } = context;
    let read = tokio::time::timeout(REQUEST_READ_TIMEOUT, read_frame(&mut recv))
        .await
        .map_err(|_| StreamError::Timeout)?;
    let Envelope { from, request } = match read {
        Ok(envelope) => envelope,
        // A request this build cannot read (a newer build's, or garbage) gets an answer that
        // says so, so the sender logs why instead of a vanished stream.
        Err(err @ (FrameError::Decode(_) | FrameError::Version { .. })) => {
            let _ = write_frame(&mut send, &Response::Failed(err.to_string())).await;
            return Err(err.into());
        }
        Err(err) => return Err(err.into()),
    };
    // The TLS handshake proved the peer holds a certificate from the cluster CA; this proves the
    // certificate is the one of the node the request claims to come from.
    if !cert_names_node(cert, from) {
        let _ = write_frame(
            &mut send,
            &Response::Failed(format!("certificate does not name node {from}")),
        )
        .await;
        return Err(StreamError::Impostor { claimed: from });
    }
    transport.note_incoming(from, stable_id).await;
    let response = match request {
        // Forwarded writes and reads are for members only: a node that was removed (or never
        // added) holds a valid certificate but must not write. Raft RPCs are not gated on this
        // node's view of the membership: a node restarting from an old disk may not know a new
        // member yet, and refusing its votes could leave the cluster without a leader; a removed
        // node's elections are held off by openraft's leader lease instead.
        Request::ClientWrite(_)
        | Request::ReadIndex
        | Request::BlobPut { .. }
        | Request::BlobGet { .. }
            if !is_member(&raft, from) =>
        {
            let _ = write_frame(
                &mut send,
                &Response::Failed(format!("node {from} is not a member")),
            )
            .await;
            return Err(StreamError::NotMember { from });
        }
        Request::Append(rpc) => {
            check_vote(from, &rpc.vote)?;
            match raft.append_entries(rpc).await {
                Ok(r) => Response::Append(r),
                Err(err) => Response::Failed(err.to_string()),
            }
        }
        Request::Vote(rpc) => {
            check_vote(from, &rpc.vote)?;
            match raft.vote(rpc).await {
                Ok(r) => Response::Vote(r),
                Err(err) => Response::Failed(err.to_string()),
            }
        }
        Request::PreVote(rpc) => {
            check_vote(from, &rpc.vote)?;
            match raft.pre_vote(rpc).await {
                Ok(r) => Response::Vote(r),
                Err(err) => Response::Failed(err.to_string()),
            }
        }
        Request::TransferLeader(rpc) => {
            check_vote(from, rpc.from_leader())?;
            match raft.handle_transfer_leader(rpc).await {
                Ok(r) => Response::TransferLeader(r),
                Err(err) => Response::Failed(err.to_string()),
            }
        }
        Request::Snapshot { vote, meta, files } => {
            check_vote(from, &vote)?;
            let path = receive_snapshot_files(&mut recv, snapshot_root, &files).await?;
            let snapshot = raft_store::Snapshot {
                meta,
                snapshot: SnapshotDir { path: path.clone() },
            };
            let result = raft.install_full_snapshot(vote, snapshot).await;
            // Installed snapshots were moved into place; one openraft declined (stale vote, not
            // newer than what is committed here) is still in its incoming directory.
            if tokio::fs::try_exists(&path).await.unwrap_or(false) {
                tokio::fs::remove_dir_all(&path).await?;
            }
            match result {
                Ok(r) => Response::Snapshot(r),
                Err(err) => Response::Failed(err.to_string()),
            }
        }
        Request::ClientWrite(request) => {
            match timeout(FORWARDED_TIMEOUT, raft.client_write(request)).await {
                Err(_elapsed) => Response::NotLeader { leader: None },
                Ok(Ok(r)) => Response::ClientWrite {
                    result: r.data,
                    index: r.log_id.index,
                },
                // Not the leader, or lost leadership before the entry committed: either way the
                // sender retries with the same request id.
                Ok(Err(RaftError::APIError(
                    ClientWriteError::ForwardToLeader(f) | ClientWriteError::LogEntryDiscarded(f),
                ))) => Response::NotLeader {
                    leader: f.leader_id,
                },
                Ok(Err(err)) => Response::Failed(err.to_string()),
            }
        }
        Request::BlobPut { hash, len } => blob::serve_put(&mut recv, blobs, hash, len).await,
        Request::BlobGet { hash } => {
            blob::serve_get(&mut send, blobs, hash).await?;
            return Ok(());
        }
        Request::ReadIndex => {
            match timeout(
                FORWARDED_TIMEOUT,
                raft.ensure_linearizable(ReadPolicy::ReadIndex),
            )
            .await
            {
                Err(_elapsed) => Response::NotLeader { leader: None },
                Ok(Ok(read_log_id)) => Response::ReadIndex(read_log_id.index()),
                Ok(Err(RaftError::APIError(LinearizableReadError::ForwardToLeader(f)))) => {
                    Response::NotLeader {
                        leader: f.leader_id,
                    }
                }
                Ok(Err(err)) => Response::Failed(err.to_string()),
            }
        }
    };
    write_frame(&mut send, &response).await?;
    send.finish()
        .map_err(|e| StreamError::Io(std::io::Error::other(e)))?;
    Ok(())
}

/// Forwarded writes and reads are taken only from members: a certificate alone (any node that
/// ever joined holds one) is not enough to write.
fn is_member(raft: &Raft, from: NodeId) -> bool {
    use openraft::async_runtime::watch::WatchReceiver;
    raft.metrics()
        .borrow_watched()
        .membership_config
        .membership()
        .get_node(&from)
        .is_some()
}

fn check_vote(from: NodeId, vote: &Vote) -> Result<(), StreamError> {
    let in_vote = *vote.leader_id().node_id();
    if in_vote == from {
        Ok(())
    } else {
        Err(StreamError::VoteMismatch {
            claimed: from,
            in_vote,
        })
    }
}

/// Writes the snapshot's files into a fresh incoming directory, each fsync'd, then the directory.
async fn receive_snapshot_files(
    recv: &mut RecvStream,
    snapshot_root: &Path,
    files: &[SnapshotFile],
) -> Result<PathBuf, StreamError> {
    let dir = raft_store::incoming_dir(snapshot_root)?;
    match write_snapshot_files(recv, &dir, files).await {
        Ok(()) => Ok(dir),
        Err(err) => {
            let _ = tokio::fs::remove_dir_all(&dir).await;
            Err(err)
        }
    }
}

async fn write_snapshot_files(
    recv: &mut RecvStream,
    dir: &Path,
    files: &[SnapshotFile],
) -> Result<(), StreamError> {
    use tokio::io::AsyncReadExt;
    for file in files {
        let plain = Path::new(&file.name)
            .file_name()
            .is_some_and(|n| n == file.name.as_str());
        if !plain || file.name.starts_with('.') {
            return Err(StreamError::BadFileName(file.name.clone()));
        }
        let mut out = tokio::fs::File::create(dir.join(&file.name)).await?;
        let mut limited = (&mut *recv).take(file.len);
        let copied = tokio::io::copy(&mut limited, &mut out).await?;
        if copied != file.len {
            return Err(StreamError::Io(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!(
                    "snapshot file {} ended after {copied} of {} bytes",
                    file.name, file.len
                ),
            )));
        }
        out.flush().await?;
        out.sync_all().await?;
    }
    tokio::fs::File::open(dir).await?.sync_all().await?;
    Ok(())
}
