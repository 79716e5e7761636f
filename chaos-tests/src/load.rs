//! A steady stream of numbered messages through one SMTP address (in a lab: the VIP, from the
//! client host), sent in the background while a test does something else, recording which
//! messages were acknowledged. Message `i` is `Subject: {subject} {i}` with the body `body {i}`,
//! as [`crate::mail::send_numbered`] writes them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::lab::in_netns;
use crate::smtp_client::SmtpClient;

/// What the load did.
#[derive(Debug, Default)]
pub struct LoadReport {
    /// The numbers of the messages answered 250, in order.
    pub acked: Vec<usize>,
    /// Messages that got no 250 (a refusal, a timeout, a connection that went away); each is
    /// tried once and may or may not have been delivered.
    pub failed: usize,
}

/// What a [`Load`] sends, where, and for how long at most.
#[derive(Clone, Debug)]
pub struct LoadSpec {
    /// Connections are made from this network namespace (None: the test's own).
    pub netns: Option<PathBuf>,
    pub addr: SocketAddr,
    pub to: String,
    pub subject: String,
    /// Messages offered per second (one session, one message at a time: a slow server gets
    /// fewer).
    pub per_second: u32,
    /// It stops by itself after this many messages or this long, whichever comes first.
    pub max_messages: usize,
    pub max_duration: Duration,
}

/// The running load; [`Load::stop`] ends it and reports.
pub struct Load {
    stop: Arc<AtomicBool>,
    acked: Arc<AtomicUsize>,
    thread: Option<JoinHandle<LoadReport>>,
}

impl Load {
    pub fn start(spec: LoadSpec) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(AtomicUsize::new(0));
        let thread = {
            let (stop, acked) = (stop.clone(), acked.clone());
            std::thread::spawn(move || run(&spec, &stop, &acked))
        };
        Load {
            stop,
            acked,
            thread: Some(thread),
        }
    }

    /// Messages acknowledged so far.
    pub fn acked(&self) -> usize {
        self.acked.load(Ordering::Relaxed)
    }

    pub fn stop(mut self) -> LoadReport {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .take()
            .expect("stopped once")
            .join()
            .unwrap_or_default()
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn connect(spec: &LoadSpec) -> Option<SmtpClient> {
    let open = || {
        let mut client =
            SmtpClient::connect(spec.addr, Duration::from_secs(2), Duration::from_secs(30)).ok()?;
        client.ehlo("load.test").ok()?;
        Some(client)
    };
    match &spec.netns {
        // The socket keeps the namespace it was made in: only the connect runs there.
        Some(path) => in_netns(path, open).ok().flatten(),
        None => open(),
    }
}

fn run(spec: &LoadSpec, stop: &AtomicBool, acked: &AtomicUsize) -> LoadReport {
    let mut report = LoadReport::default();
    let every = Duration::from_secs_f64(1.0 / f64::from(spec.per_second.max(1)));
    let started = Instant::now();
    let mut next = started;
    let mut client: Option<SmtpClient> = None;
    for i in 0..spec.max_messages {
        if stop.load(Ordering::Relaxed) || started.elapsed() >= spec.max_duration {
            break;
        }
        if client.is_none() {
            client = connect(spec);
        }
        let message = format!("Subject: {} {i}\r\n\r\nbody {i}\r\n", spec.subject);
        let sent = client.as_mut().is_some_and(|c| {
            c.send("load@remote.test", &spec.to, message.as_bytes())
                .is_ok()
        });
        if sent {
            report.acked.push(i);
            acked.fetch_add(1, Ordering::Relaxed);
        } else {
            client = None;
            report.failed += 1;
        }
        next += every;
        match next.checked_duration_since(Instant::now()) {
            Some(wait) => std::thread::sleep(wait),
            None => next = Instant::now(),
        }
    }
    if let Some(client) = client {
        client.quit();
    }
    report
}
