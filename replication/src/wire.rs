//! The messages exchanged between nodes and their framing: one request and one response per
//! bidirectional QUIC stream, each a big-endian u32 length followed by bincode. A snapshot
//! request is followed on the same stream by the raw bytes of its files.

use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, TransferLeaderRequest,
    TransferLeaderResponse, VoteRequest, VoteResponse,
};
use raft_store::{
    BlobHash, CommandResult, NodeId, Request as WriteRequest, SnapshotMeta, TypeConfig, Vote,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Frames above this size are refused: no legitimate message comes near it (entries are batched
/// by openraft, snapshot files travel outside frames).
pub const MAX_FRAME: u32 = 64 * 1024 * 1024;

/// A request, with the id its sender claims; the receiver checks the claim against the sender's
/// certificate.
#[derive(Debug, Serialize, Deserialize)]
pub struct Envelope {
    pub from: NodeId,
    pub request: Request,
}

#[derive(Debug, Serialize, Deserialize)]
pub enum Request {
    Append(AppendEntriesRequest<TypeConfig>),
    Vote(VoteRequest<TypeConfig>),
    PreVote(VoteRequest<TypeConfig>),
    TransferLeader(TransferLeaderRequest<TypeConfig>),
    /// Followed by the files' bytes, in order.
    Snapshot {
        vote: Vote,
        meta: SnapshotMeta,
        files: Vec<SnapshotFile>,
    },
    /// A write a follower forwards to the leader.
    ClientWrite(WriteRequest),
    /// Asks the leader for a read index: the log index a linearizable read must wait for.
    ReadIndex,
    /// Mirrors a blob: followed by its `len` bytes. Answered `BlobStored` once fsync'd.
    BlobPut {
        hash: BlobHash,
        len: u64,
    },
    /// Asks for a blob; answered `Blob { len }` followed by its bytes, or `NoSuchBlob`.
    BlobGet {
        hash: BlobHash,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SnapshotFile {
    pub name: String,
    pub len: u64,
}

#[derive(Debug, Serialize, Deserialize)]
pub enum Response {
    Append(AppendEntriesResponse<TypeConfig>),
    Vote(VoteResponse<TypeConfig>),
    TransferLeader(TransferLeaderResponse<TypeConfig>),
    Snapshot(SnapshotResponse<TypeConfig>),
    /// The outcome, and the log index it was applied at (so the follower can wait for it).
    ClientWrite {
        result: CommandResult,
        index: u64,
    },
    ReadIndex(u64),
    BlobStored,
    Blob {
        len: u64,
    },
    NoSuchBlob,
    /// The receiver is not the leader; it names the leader it knows.
    NotLeader {
        leader: Option<NodeId>,
    },
    /// The receiver could not serve the request (shutting down, storage failure, bad identity).
    Failed(String),
}

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("frame of {0} bytes exceeds the limit")]
    TooLarge(u32),
    #[error("undecodable frame: {0}")]
    Decode(String),
}

pub async fn write_frame<W, T>(writer: &mut W, message: &T) -> Result<(), FrameError>
where
    W: AsyncWrite + Unpin,
    T: Serialize,
{
    let bytes = bincode::serde::encode_to_vec(message, bincode::config::standard())
        .map_err(|e| FrameError::Decode(e.to_string()))?;
    let len = u32::try_from(bytes.len()).map_err(|_| FrameError::TooLarge(u32::MAX))?;
    if len > MAX_FRAME {
        return Err(FrameError::TooLarge(len));
    }
    writer.write_all(&len.to_be_bytes()).await?;
    writer.write_all(&bytes).await?;
    Ok(())
}

pub async fn read_frame<R, T>(reader: &mut R) -> Result<T, FrameError>
where
    R: AsyncRead + Unpin,
    T: DeserializeOwned,
{
    let mut len = [0u8; 4];
    reader.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len);
    if len > MAX_FRAME {
        return Err(FrameError::TooLarge(len));
    }
    // Grow with the bytes that actually arrive, not with the length a peer claims.
    let mut bytes = Vec::new();
    reader.take(u64::from(len)).read_to_end(&mut bytes).await?;
    if bytes.len() != len as usize {
        return Err(FrameError::Io(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "frame cut short",
        )));
    }
    let config = bincode::config::standard().with_limit::<{ MAX_FRAME as usize }>();
    bincode::serde::decode_from_slice(&bytes, config)
        .map(|(message, _)| message)
        .map_err(|e| FrameError::Decode(e.to_string()))
}
