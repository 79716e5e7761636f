//! The QUIC endpoint of a node: one UDP socket that accepts peers and dials them, and one cached
//! connection per peer, over which every RPC opens its own bidirectional stream.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use raft_store::{CommandResult, Member, NodeId, Request as WriteRequest};
use tokio::sync::Mutex;

use crate::error::ReplicationError;
use crate::liveness::Liveness;
use crate::pki::{NodeIdentity, node_name};
use crate::wire::{Envelope, Request, Response, read_frame, write_frame};

/// How long a request waits for a connection to a peer to be established.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Clone)]
pub struct Transport {
    inner: Arc<Inner>,
}

struct Inner {
    node_id: NodeId,
    endpoint: quinn::Endpoint,
    client_config: quinn::ClientConfig,
    connections: Mutex<HashMap<NodeId, quinn::Connection>>,
    /// The latest incoming connection seen from each peer (by quinn's stable id).
    incoming: std::sync::Mutex<HashMap<NodeId, usize>>,
    /// One dial at a time per peer: callers arriving while a dial is in flight wait for it
    /// instead of starting their own.
    dials: Mutex<HashMap<NodeId, Arc<Mutex<()>>>>,
    /// How long each peer has left requests unanswered.
    liveness: Liveness,
}

fn transport_config() -> quinn::TransportConfig {
    let mut config = quinn::TransportConfig::default();
    // Dead peers are noticed within a few heartbeats, not after the 30 s default.
    config.keep_alive_interval(Some(Duration::from_millis(500)));
    config.max_idle_timeout(Some(
        Duration::from_secs(3)
            .try_into()
            .expect("3 s is a valid idle timeout"),
    ));
    config
}

/// 8-byte random connection ids (see `Transport::bind`).
struct RandomConnectionIds;

impl quinn::ConnectionIdGenerator for RandomConnectionIds {
    fn generate_cid(&mut self) -> quinn::ConnectionId {
        quinn::ConnectionId::new(&rand::random::<[u8; 8]>())
    }

    fn cid_len(&self) -> usize {
        8
    }

    fn cid_lifetime(&self) -> Option<Duration> {
        None
    }
}

impl Transport {
    /// Binds the node's QUIC endpoint on `bind` (UDP).
    pub fn bind(
        node_id: NodeId,
        bind: SocketAddr,
        identity: &NodeIdentity,
    ) -> Result<Transport, ReplicationError> {
        let transport = Arc::new(transport_config());
        let server_crypto = QuicServerConfig::try_from(identity.server_config()?)
            .map_err(|e| ReplicationError::Config(e.to_string()))?;
        let mut server_config = quinn::ServerConfig::with_crypto(Arc::new(server_crypto));
        server_config.transport_config(transport.clone());
        let client_crypto = QuicClientConfig::try_from(identity.client_config()?)
            .map_err(|e| ReplicationError::Config(e.to_string()))?;
        let mut client_config = quinn::ClientConfig::new(Arc::new(client_crypto));
        client_config.transport_config(transport);
        let bind_err = |source| ReplicationError::Bind {
            addr: bind.to_string(),
            source,
        };
        let mut endpoint_config = quinn::EndpointConfig::default();
        endpoint_config.reset_key(Arc::new(identity.reset_key()));
        // quinn's default connection ids carry a per-process keyed hash, and a packet whose id
        // fails that check is dropped without a reset; plain random ids let a restarted node
        // answer its peers' stale packets with a stateless reset.
        endpoint_config.cid_generator(|| Box::new(RandomConnectionIds));
        let socket = std::net::UdpSocket::bind(bind).map_err(bind_err)?;
        let runtime = quinn::default_runtime().ok_or_else(|| {
            ReplicationError::Config("no async runtime for the QUIC endpoint".into())
        })?;
        let endpoint = quinn::Endpoint::new(endpoint_config, Some(server_config), socket, runtime)
            .map_err(bind_err)?;
        Ok(Transport {
            inner: Arc::new(Inner {
                node_id,
                endpoint,
                client_config,
                connections: Mutex::new(HashMap::new()),
                incoming: std::sync::Mutex::new(HashMap::new()),
                dials: Mutex::new(HashMap::new()),
                liveness: Liveness::default(),
            }),
        })
    }

    /// How long `peer` has left this node's requests unanswered, counted from the first it
    /// did not answer after its last answer; zero while it answers (see `liveness.rs`).
    pub fn silence(&self, peer: NodeId) -> Duration {
        self.inner.liveness.silence(peer)
    }

    pub fn node_id(&self) -> NodeId {
        self.inner.node_id
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.inner.endpoint.local_addr()
    }

    pub(crate) fn endpoint(&self) -> &quinn::Endpoint {
        &self.inner.endpoint
    }

    /// Closes every connection and stops accepting.
    pub fn close(&self) {
        self.inner.endpoint.close(0u32.into(), b"shutdown");
    }

    /// The live connection to `target`, dialling it if needed. The server must prove it is
    /// `node-<target>` with a certificate from the cluster CA.
    pub(crate) async fn connection(
        &self,
        target: NodeId,
        addr: &str,
    ) -> Result<quinn::Connection, ReplicationError> {
        let unreachable = unreachable(target);
        {
            let mut connections = self.inner.connections.lock().await;
            if let Some(conn) = connections.get(&target) {
                if conn.close_reason().is_none() {
                    return Ok(conn.clone());
                }
                connections.remove(&target);
            }
        }
        // Dial without holding the lock (a slow peer must not delay requests to the others), in
        // a task of its own: the short timeout of a heartbeat must not cancel a handshake that
        // needs a little longer; the connection is cached when it completes either way.
        let transport = self.clone();
        let addr = addr.to_owned();
        tokio::spawn(async move { transport.dial(target, &addr).await })
            .await
            .map_err(|e| unreachable(e.to_string()))?
    }

    async fn dial(
        &self,
        target: NodeId,
        addr: &str,
    ) -> Result<quinn::Connection, ReplicationError> {
        let unreachable = unreachable(target);
        let dial_lock = self
            .inner
            .dials
            .lock()
            .await
            .entry(target)
            .or_default()
            .clone();
        let _dialling = dial_lock.lock().await;
        // The dial this caller waited for may have connected already.
        if let Some(conn) = self.inner.connections.lock().await.get(&target)
            && conn.close_reason().is_none()
        {
            return Ok(conn.clone());
        }
        let sock_addr = tokio::net::lookup_host(addr)
            .await
            .map_err(|e| unreachable(format!("resolve {addr}: {e}")))?
            .next()
            .ok_or_else(|| unreachable(format!("{addr} resolves to nothing")))?;
        let connecting = self
            .inner
            .endpoint
            .connect_with(
                self.inner.client_config.clone(),
                sock_addr,
                &node_name(target),
            )
            .map_err(|e| unreachable(e.to_string()))?;
        let conn = tokio::time::timeout(CONNECT_TIMEOUT, connecting)
            .await
            .map_err(|_| unreachable("connect timed out".into()))?
            .map_err(|e| unreachable(e.to_string()))?;
        self.inner
            .connections
            .lock()
            .await
            .insert(target, conn.clone());
        Ok(conn)
    }

    /// Forgets a connection that failed, so the next request dials afresh.
    /// Called for each verified request from `peer` on incoming connection `stable_id`. A new
    /// incoming connection usually means the peer restarted; our cached connection to it then
    /// points at a dead process and would only fail after the idle timeout, so it is dropped
    /// and the next call dials afresh (one handshake, a millisecond on a LAN).
    pub(crate) async fn note_incoming(&self, peer: NodeId, stable_id: usize) {
        let new = {
            let mut incoming = self.inner.incoming.lock().expect("incoming table lock");
            incoming.insert(peer, stable_id) != Some(stable_id)
        };
        if new {
            self.drop_connection(peer).await;
        }
    }

    pub(crate) async fn drop_connection(&self, target: NodeId) {
        self.inner.connections.lock().await.remove(&target);
    }

    /// Sends one request and reads its response on a new stream.
    pub(crate) async fn call(
        &self,
        target: NodeId,
        addr: &str,
        request: Request,
    ) -> Result<Response, ReplicationError> {
        // Cancelled with this future (openraft's limit on a heartbeat), it counts as missed.
        let in_flight = self.inner.liveness.sent(target);
        let result = self.call_inner(target, addr, request).await;
        if result.is_ok() {
            in_flight.answered();
        }
        if matches!(result, Err(ReplicationError::PeerUnreachable { .. })) {
            self.drop_connection(target).await;
        }
        result
    }

    /// Opens a stream to `target` and sends `request` on it, leaving the stream open for a
    /// body that follows the request.
    pub(crate) async fn open_request(
        &self,
        target: NodeId,
        addr: &str,
        request: Request,
    ) -> Result<(quinn::SendStream, quinn::RecvStream), ReplicationError> {
        let unreachable = unreachable(target);
        let conn = self.connection(target, addr).await?;
        let (mut send, recv) = conn
            .open_bi()
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let envelope = Envelope {
            from: self.inner.node_id,
            request,
        };
        write_frame(&mut send, &envelope)
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        Ok((send, recv))
    }

    async fn call_inner(
        &self,
        target: NodeId,
        addr: &str,
        request: Request,
    ) -> Result<Response, ReplicationError> {
        let unreachable = unreachable(target);
        let conn = self.connection(target, addr).await?;
        let (mut send, mut recv) = conn
            .open_bi()
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let envelope = Envelope {
            from: self.inner.node_id,
            request,
        };
        write_frame(&mut send, &envelope)
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        send.finish().map_err(|e| unreachable(e.to_string()))?;
        read_frame(&mut recv)
            .await
            .map_err(|e| unreachable(e.to_string()))
    }

    /// Forwards a client write to the leader and returns its result and log index.
    pub async fn forward_write(
        &self,
        leader: NodeId,
        member: &Member,
        request: WriteRequest,
    ) -> Result<(CommandResult, u64), ReplicationError> {
        match self
            .call(leader, &member.raft_addr, Request::ClientWrite(request))
            .await?
        {
            Response::ClientWrite { result, index } => Ok((result, index)),
            other => Err(unexpected(leader, other)),
        }
    }

    /// Asks the leader for the index a linearizable read must wait for.
    pub async fn read_index(
        &self,
        leader: NodeId,
        member: &Member,
    ) -> Result<u64, ReplicationError> {
        match self
            .call(leader, &member.raft_addr, Request::ReadIndex)
            .await?
        {
            Response::ReadIndex(index) => Ok(index),
            other => Err(unexpected(leader, other)),
        }
    }
}

/// Builds the error for "could not talk to `node_id`", from a reason.
pub(crate) fn unreachable(node_id: NodeId) -> impl Fn(String) -> ReplicationError {
    move |reason| ReplicationError::PeerUnreachable { node_id, reason }
}

/// Maps an answer of the wrong kind to the error a caller acts on.
pub(crate) fn unexpected(node_id: NodeId, response: Response) -> ReplicationError {
    match response {
        Response::NotLeader { leader } => ReplicationError::NotLeader { node_id, leader },
        Response::Failed(reason) => ReplicationError::Remote { node_id, reason },
        other => ReplicationError::Protocol {
            node_id,
            reason: format!("unexpected response {other:?}"),
        },
    }
}
