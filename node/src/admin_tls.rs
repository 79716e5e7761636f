//! The admin API's listener: HTTPS with a certificate from the cluster CA, and plain HTTP on the
//! same port, told apart by the first byte a client sends (a TLS handshake starts with 0x16,
//! an HTTP request with a letter). The certificate names the node and its admin address; the
//! node signs it itself with the cluster CA key from the replicated settings, once it has them
//! (a node that is still joining answers only plain HTTP until then). Once the cluster takes
//! HTTPS only (`Feature::AdminHttpsOnly`), a plain request is answered 426 by the API's
//! `require_https` layer, which reads [`AdminPeer`] from the request.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use raft_store::{NodeId, StateReader};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// The first byte of every TLS handshake record.
const TLS_HANDSHAKE: u8 = 0x16;
/// How long a new connection may take to send its first byte.
const FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a TLS handshake may take after that.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections between accept and a finished handshake, at most: more are closed at once.
const MAX_HANDSHAKES: usize = 64;

/// The admin certificate, signed on first use.
struct AdminCert {
    reader: StateReader,
    node_id: NodeId,
    addr: SocketAddr,
    made: Mutex<Option<Arc<CertifiedKey>>>,
}

impl AdminCert {
    fn get(&self) -> Option<Arc<CertifiedKey>> {
        let mut made = self.made.lock().expect("admin certificate lock");
        if made.is_none() {
            *made = self
                .make()
                .map_err(|err| {
                    tracing::debug!(error = %err, "no admin HTTPS certificate yet");
                })
                .ok();
        }
        made.clone()
    }

    fn make(&self) -> anyhow::Result<Arc<CertifiedKey>> {
        use anyhow::Context as _;
        use rustls::pki_types::pem::PemObject;
        let settings = self
            .reader
            .cluster_settings()?
            .context("this node has not received the cluster settings yet")?;
        let (cert_pem, key_pem) = replication::pki::issue_admin_cert(
            &settings.ca_cert_pem,
            &settings.ca_key_pem,
            self.node_id,
            self.addr.ip(),
        )?;
        let certs = rustls::pki_types::CertificateDer::pem_slice_iter(cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .context("read the admin certificate")?;
        let key = rustls::pki_types::PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
            .context("read the admin key")?;
        let key = replication::pki::provider()
            .key_provider
            .load_private_key(key)
            .context("load the admin key")?;
        tracing::info!(addr = %self.addr, "admin API certificate signed by the cluster CA");
        Ok(Arc::new(CertifiedKey::new(certs, key)))
    }
}

impl std::fmt::Debug for AdminCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminCert")
            .field("node_id", &self.node_id)
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl ResolvesServerCert for AdminCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.get()
    }
}

/// Who is at the other end of an admin connection, and whether it came over TLS: the
/// connection info of every request (`ConnectInfo<AdminPeer>`), which the HTTPS-only check
/// reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdminPeer {
    pub addr: SocketAddr,
    pub tls: bool,
}

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, AdminListener>>
    for AdminPeer
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, AdminListener>) -> AdminPeer {
        *stream.remote_addr()
    }
}

/// A connection to the admin API, over TLS or not.
pub enum AdminIo {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for AdminIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            AdminIo::Plain(s) => Pin::new(s).poll_read(cx, buf),
            AdminIo::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for AdminIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            AdminIo::Plain(s) => Pin::new(s).poll_write(cx, buf),
            AdminIo::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            AdminIo::Plain(s) => Pin::new(s).poll_flush(cx),
            AdminIo::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            AdminIo::Plain(s) => Pin::new(s).poll_shutdown(cx),
            AdminIo::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// The admin API's listener for `axum::serve`: connections come out of it once their first
/// byte said which protocol they speak and, for TLS, the handshake is done. The accepting runs
/// in a task of its own, so a slow handshake holds up nobody else.
pub struct AdminListener {
    ready: mpsc::Receiver<(AdminIo, AdminPeer)>,
    local_addr: SocketAddr,
    accepting: tokio::task::JoinHandle<()>,
}

impl AdminListener {
    pub async fn bind(addr: SocketAddr, reader: StateReader, node_id: NodeId) -> io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let local_addr = listener.local_addr()?;
        let cert = Arc::new(AdminCert {
            reader,
            node_id,
            addr: local_addr,
            made: Mutex::new(None),
        });
        let mut config = rustls::ServerConfig::builder_with_provider(replication::pki::provider())
            .with_safe_default_protocol_versions()
            .map_err(io::Error::other)?
            .with_no_client_auth()
            .with_cert_resolver(cert);
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let (tx, ready) = mpsc::channel(MAX_HANDSHAKES);
        let accepting = tokio::spawn(accept_loop(listener, acceptor, tx));
        Ok(AdminListener {
            ready,
            local_addr,
            accepting,
        })
    }
}

impl Drop for AdminListener {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

impl axum::serve::Listener for AdminListener {
    type Io = AdminIo;
    type Addr = AdminPeer;

    async fn accept(&mut self) -> (AdminIo, AdminPeer) {
        match self.ready.recv().await {
            Some(accepted) => accepted,
            // The accepting task only ends when aborted, with the listener.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<AdminPeer> {
        Ok(AdminPeer {
            addr: self.local_addr,
            tls: false,
        })
    }
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    ready: mpsc::Sender<(AdminIo, AdminPeer)>,
) {
    let slots = Arc::new(Semaphore::new(MAX_HANDSHAKES));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(err) => {
                tracing::warn!(error = %err, "admin accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        // Every connection is accepted; one that finds every slot taken by connections still
        // silent or mid-handshake is closed at once, so they cannot stop the port.
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::debug!(%peer, "admin connection closed: too many handshakes under way");
            continue;
        };
        let acceptor = acceptor.clone();
        let ready = ready.clone();
        tokio::spawn(async move {
            let io = open(stream, &acceptor).await;
            drop(slot);
            match io {
                Ok(io) => {
                    let tls = matches!(io, AdminIo::Tls(_));
                    let _ = ready.send((io, AdminPeer { addr: peer, tls })).await;
                }
                Err(err) => tracing::debug!(%peer, error = %err, "admin connection refused"),
            }
        });
    }
}

/// Plain HTTP, or the TLS handshake when the first byte starts one; each within its time.
async fn open(stream: TcpStream, acceptor: &TlsAcceptor) -> io::Result<AdminIo> {
    let timed_out = |what| io::Error::new(io::ErrorKind::TimedOut, what);
    let _ = stream.set_nodelay(true);
    let mut first = [0u8; 1];
    let peeked = tokio::time::timeout(FIRST_BYTE_TIMEOUT, stream.peek(&mut first))
        .await
        .map_err(|_| timed_out("no first byte in time"))??;
    if peeked == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "closed at once",
        ));
    }
    if first[0] != TLS_HANDSHAKE {
        return Ok(AdminIo::Plain(stream));
    }
    let tls = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream))
        .await
        .map_err(|_| timed_out("no TLS handshake in time"))??;
    Ok(AdminIo::Tls(Box::new(tls)))
}
