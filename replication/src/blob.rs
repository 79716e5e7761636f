//! Blob mirroring and fetching between data nodes. A blob travels as raw bytes after its request
//! frame on one QUIC stream; the receiver checks the SHA-256 before it stores anything, and
//! answers a push only once the blob is fsync'd.

use std::time::Duration;

use quinn::{RecvStream, SendStream};
use raft_store::blob_store::{self, BlobStore};
use raft_store::{BlobHash, MAX_MESSAGE_BYTES_LIMIT, Member, NodeId};
use tokio::io::AsyncReadExt;

use crate::error::ReplicationError;
use crate::transport::{Transport, unexpected, unreachable};
use crate::wire::{Request, Response, read_frame, write_frame};

/// No blob is larger than the largest message plus the headers the receiver adds.
pub const MAX_BLOB_BYTES: u64 = MAX_MESSAGE_BYTES_LIMIT + 1024 * 1024;

/// How long a transfer of `len` bytes may take: a floor for the round trips and fsyncs, plus
/// time at a pessimistic 10 MB/s.
pub fn transfer_timeout(len: u64) -> Duration {
    Duration::from_secs(2) + Duration::from_millis(len / 10_000)
}

/// Pushes a blob to `target`, returning once `target` has it fsync'd.
pub async fn push(
    transport: &Transport,
    target: NodeId,
    member: &Member,
    hash: &BlobHash,
    data: &[u8],
) -> Result<(), ReplicationError> {
    let unreachable = unreachable(target);
    let len = data.len() as u64;
    let request = Request::BlobPut { hash: *hash, len };
    let exchange = async {
        let (mut send, mut recv) = transport
            .open_request(target, &member.raft_addr, request)
            .await?;
        send.write_all(data)
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        send.finish().map_err(|e| unreachable(e.to_string()))?;
        read_frame::<_, Response>(&mut recv)
            .await
            .map_err(|e| unreachable(e.to_string()))
    };
    let result = match tokio::time::timeout(transfer_timeout(len), exchange).await {
        Err(_) => Err(unreachable("blob push timed out".into())),
        Ok(Err(err)) => Err(err),
        Ok(Ok(Response::BlobStored)) => Ok(()),
        Ok(Ok(other)) => Err(unexpected(target, other)),
    };
    if matches!(result, Err(ReplicationError::PeerUnreachable { .. })) {
        // The cached connection may be to a process that has since restarted: dial afresh
        // next time.
        transport.drop_connection(target).await;
    }
    result
}

/// Fetches a blob from `source` and checks it against its hash. `Ok(None)`: `source` lacks it.
/// The answer's header must come within `transfer_timeout(0)` (a peer that is gone is given
/// up on in seconds, not after the time the largest blob could take); the bytes then get
/// the time their length needs.
pub async fn fetch(
    transport: &Transport,
    source: NodeId,
    member: &Member,
    hash: &BlobHash,
) -> Result<Option<Vec<u8>>, ReplicationError> {
    let unreachable = unreachable(source);
    let exchange = async {
        let header = async {
            let (mut send, mut recv) = transport
                .open_request(source, &member.raft_addr, Request::BlobGet { hash: *hash })
                .await?;
            send.finish().map_err(|e| unreachable(e.to_string()))?;
            let response: Response = read_frame(&mut recv)
                .await
                .map_err(|e| unreachable(e.to_string()))?;
            Ok::<_, ReplicationError>((recv, response))
        };
        let (mut recv, response) = tokio::time::timeout(transfer_timeout(0), header)
            .await
            .map_err(|_| unreachable("no answer to a blob fetch in time".into()))??;
        let len = match response {
            Response::Blob { len } if len <= MAX_BLOB_BYTES => len,
            Response::NoSuchBlob => return Ok(None),
            other => return Err(unexpected(source, other)),
        };
        let data = tokio::time::timeout(transfer_timeout(len), read_body(&mut recv, len))
            .await
            .map_err(|_| unreachable("blob fetch timed out".into()))?
            .map_err(|e| unreachable(e.to_string()))?;
        if blob_store::hash(&data) != *hash {
            return Err(ReplicationError::Protocol {
                node_id: source,
                reason: "blob does not match its hash".into(),
            });
        }
        Ok(Some(data))
    };
    let result = exchange.await;
    if matches!(result, Err(ReplicationError::PeerUnreachable { .. })) {
        transport.drop_connection(source).await;
    }
    result
}

async fn read_body(recv: &mut RecvStream, len: u64) -> std::io::Result<Vec<u8>> {
    let mut data = Vec::with_capacity(len.min(1024 * 1024) as usize);
    recv.take(len).read_to_end(&mut data).await?;
    if data.len() as u64 != len {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "blob cut short",
        ));
    }
    Ok(data)
}

/// Receives a pushed blob: checks, stores and fsyncs it before answering.
pub(crate) async fn serve_put(
    recv: &mut RecvStream,
    blobs: Option<&BlobStore>,
    hash: BlobHash,
    len: u64,
) -> Response {
    let Some(blobs) = blobs else {
        return Response::Failed("this node stores no blobs".into());
    };
    if len > MAX_BLOB_BYTES {
        return Response::Failed(format!("blob of {len} bytes exceeds the limit"));
    }
    let data = match read_body(recv, len).await {
        Ok(data) => data,
        Err(err) => return Response::Failed(format!("receive blob: {err}")),
    };
    if blob_store::hash(&data) != hash {
        return Response::Failed("blob does not match its hash".into());
    }
    raft_store::failpoint::pause("mirror-before-fsync").await;
    let blobs = blobs.clone();
    match tokio::task::spawn_blocking(move || blobs.write(&hash, &data)).await {
        Ok(Ok(())) => Response::BlobStored,
        Ok(Err(err)) => {
            tracing::error!(blob = %blob_store::hex(&hash), error = %err, "could not store mirrored blob");
            Response::Failed(format!("store blob: {err}"))
        }
        Err(err) => Response::Failed(format!("store blob: {err}")),
    }
}

/// Sends a blob this node holds (for resync, or a node that serves a message it does not hold).
pub(crate) async fn serve_get(
    send: &mut SendStream,
    blobs: Option<&BlobStore>,
    hash: BlobHash,
) -> std::io::Result<()> {
    let data = match blobs {
        Some(blobs) => {
            let blobs = blobs.clone();
            tokio::task::spawn_blocking(move || blobs.read(&hash))
                .await
                .map_err(std::io::Error::other)?
        }
        None => Err(std::io::ErrorKind::NotFound.into()),
    };
    let map = |e: crate::wire::FrameError| std::io::Error::other(e.to_string());
    match data {
        Ok(data) => {
            let len = data.len() as u64;
            write_frame(send, &Response::Blob { len })
                .await
                .map_err(map)?;
            send.write_all(&data).await?;
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            write_frame(send, &Response::NoSuchBlob)
                .await
                .map_err(map)?;
        }
        Err(err) => {
            let response = Response::Failed(format!("read blob: {err}"));
            write_frame(send, &response).await.map_err(map)?;
        }
    }
    send.finish().map_err(std::io::Error::other)
}
