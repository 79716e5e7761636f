//! A small blocking client of the admin API for scenarios: tries the nodes in turn, with
//! timeouts on every request. For a cluster in the chaos lab every request runs on a thread that
//! entered the lab's client namespace (the nodes' addresses exist only there).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Result, bail};
use serde_json::Value;

/// Answer of a write: the HTTP status and the JSON body (or Null).
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

#[derive(Clone)]
pub struct Api {
    urls: Vec<String>,
    token: String,
    /// The cluster CA (PEM) that `https://` admin URLs' certificates must chain to.
    ca_pem: Option<String>,
    /// The network namespace to send requests from; None: the harness's own.
    netns: Option<PathBuf>,
}

/// An agent with `timeout` for a whole call, trusting `ca_pem` (the cluster CA) for HTTPS.
fn agent(timeout: Duration, ca_pem: Option<&str>) -> Result<ureq::Agent> {
    let mut config = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .timeout_connect(Some(Duration::from_millis(500)))
        .http_status_as_error(false);
    if let Some(pem) = ca_pem {
        use ureq::tls::{Certificate, RootCerts, TlsConfig, TlsProvider};
        let ca = Certificate::from_pem(pem.as_bytes())?;
        config = config.tls_config(
            TlsConfig::builder()
                .provider(TlsProvider::Rustls)
                .unversioned_rustls_crypto_provider(std::sync::Arc::new(
                    rustls::crypto::ring::default_provider(),
                ))
                .root_certs(RootCerts::new_with_certs(&[ca]))
                .build(),
        );
    }
    Ok(config.build().into())
}

fn parse_body(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}

/// 426: the node takes HTTPS only.
const UPGRADE_REQUIRED: u16 = 426;

impl Api {
    pub fn new(urls: Vec<String>, token: String) -> Api {
        Api {
            urls,
            token,
            ca_pem: None,
            netns: None,
        }
    }

    /// The same client, trusting `ca_pem` for `https://` URLs; an `http://` URL whose node
    /// answers 426 (it takes HTTPS only, as after an upgrade) is then asked again over HTTPS.
    pub fn with_ca(self, ca_pem: Option<String>) -> Api {
        Api { ca_pem, ..self }
    }

    /// The same client, sending from the network namespace at `path`.
    pub fn from_netns(self, path: Option<PathBuf>) -> Api {
        Api {
            netns: path,
            ..self
        }
    }

    /// Runs a request where the nodes are reachable.
    fn run<T: Send>(&self, request: impl FnOnce() -> Result<T> + Send) -> Result<T> {
        match &self.netns {
            None => request(),
            Some(path) => crate::lab::in_netns(path, request)?,
        }
    }

    /// One request (`auth`: with the token); the status and the body as text.
    fn call(
        &self,
        method: &str,
        url: &str,
        auth: bool,
        body: Option<&Value>,
        timeout: Duration,
    ) -> Result<(u16, String)> {
        let once = |url: &str| -> Result<(u16, String)> {
            let agent = agent(timeout, self.ca_pem.as_deref())?;
            let authorization = self.auth();
            let mut response = match (method, body) {
                ("GET", _) => {
                    let request = agent.get(url);
                    let request = if auth {
                        request.header("Authorization", &authorization)
                    } else {
                        request
                    };
                    request.call()?
                }
                ("DELETE", _) => agent
                    .delete(url)
                    .header("Authorization", &authorization)
                    .call()?,
                // A PUT without a body goes as a POST.
                ("PUT", Some(body)) => agent
                    .put(url)
                    .header("Authorization", &authorization)
                    .send_json(body)?,
                (_, Some(body)) => agent
                    .post(url)
                    .header("Authorization", &authorization)
                    .send_json(body)?,
                (_, None) => agent
                    .post(url)
                    .header("Authorization", &authorization)
                    .send_empty()?,
            };
            let status = response.status().as_u16();
            Ok((
                status,
                response.body_mut().read_to_string().unwrap_or_default(),
            ))
        };
        self.run(|| {
            let answer = once(url)?;
            match url.strip_prefix("http://") {
                Some(rest) if answer.0 == UPGRADE_REQUIRED && self.ca_pem.is_some() => {
                    once(&format!("https://{rest}"))
                }
                _ => Ok(answer),
            }
        })
    }

    /// The status code of a plain GET (for /health and /ready).
    pub fn get_status(&self, url: &str) -> Result<u16> {
        Ok(self
            .call("GET", url, false, None, Duration::from_secs(1))?
            .0)
    }

    fn auth(&self) -> String {
        format!("Bearer {}", self.token)
    }

    /// A GET to one node whose answer is text (`/metrics`).
    pub fn get_text_from(&self, base: &str, path: &str) -> Result<String> {
        let (status, body) = self.call(
            "GET",
            &format!("{base}{path}"),
            true,
            None,
            Duration::from_secs(5),
        )?;
        if status != 200 {
            bail!("GET {base}{path}: {status} {body}");
        }
        Ok(body)
    }

    /// A GET to one node.
    pub fn get_from(&self, base: &str, path: &str, timeout: Duration) -> Result<Value> {
        let (status, body) = self.call("GET", &format!("{base}{path}"), true, None, timeout)?;
        let body = parse_body(&body);
        if status != 200 {
            bail!("GET {base}{path}: {status} {body}");
        }
        Ok(body)
    }

    /// A GET to the first node that answers 200.
    pub fn get(&self, path: &str) -> Result<Value> {
        let mut last = None;
        for base in &self.urls {
            match self.get_from(base, path, Duration::from_secs(5)) {
                Ok(value) => return Ok(value),
                Err(err) => last = Some(err),
            }
        }
        Err(last.unwrap_or_else(|| anyhow::anyhow!("no admin URL")))
    }

    /// A write to one node; the answer whatever its status, or an error if the node did not
    /// answer at all.
    pub fn send_to(
        &self,
        base: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<Answer> {
        let url = format!("{base}{path}");
        let (status, text) =
            self.call(method, &url, true, body.as_ref(), Duration::from_secs(10))?;
        Ok(Answer {
            status,
            body: parse_body(&text),
        })
    }
}
