//! The messages exchanged between nodes and their framing: one request and one response per
//! bidirectional QUIC stream, each a big-endian u32 length, then the sender's wire version (a
//! big-endian u16), then bincode. A snapshot request is followed on the same stream by the raw
//! bytes of its files.
//!
//! Versions: a message a newer build may send is sent only once the cluster version that
//! brings it is active (`raft_store::version`), so members of the previous build read every
//! frame. A frame a node cannot read (from a build newer than the cluster's version allows, or
//! garbage) is refused with an error naming both wire versions, never a panic; the server
//! answers it with `Response::Failed`.

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

/// The wire version this build writes: bumped when the encoding of a message changes shape
/// (a variant appended to an enum keeps it).
pub const WIRE_VERSION: u16 = 1;

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
    /// A frame this build cannot read, from a sender of another wire version.
    #[error(
        "a frame of wire version {theirs} that this node (wire version {WIRE_VERSION}) cannot \
         read, from a build of another version: {detail}"
    )]
    Version { theirs: u16, detail: String },
}

pub async fn write_frame<W, T>(writer: &mut W, message: &T) -> Result<(), FrameError>
where
    W: AsyncWrite + Unpin,
    T: Serialize,
{
    let mut bytes = WIRE_VERSION.to_be_bytes().to_vec();
    bincode::serde::encode_into_std_write(message, &mut bytes, bincode::config::standard())
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
    let Some((version, body)) = bytes.split_first_chunk::<2>() else {
        return Err(FrameError::Decode(
            "frame too short for its wire version".into(),
        ));
    };
    let theirs = u16::from_be_bytes(*version);
    let config = bincode::config::standard().with_limit::<{ MAX_FRAME as usize }>();
    bincode::serde::decode_from_slice(body, config)
        .map(|(message, _)| message)
        .map_err(|e| match theirs {
            WIRE_VERSION => FrameError::Decode(e.to_string()),
            _ => FrameError::Version {
                theirs,
                detail: e.to_string(),
            },
        })
}
