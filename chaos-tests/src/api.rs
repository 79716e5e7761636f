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
    /// The network namespace to send requests from; None: the harness's own.
    netns: Option<PathBuf>,
}

fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .timeout_connect(Some(Duration::from_millis(500)))
        .http_status_as_error(false)
        .build()
        .into()
}

fn parse_body(response: &mut ureq::http::Response<ureq::Body>) -> Value {
    let text = response.body_mut().read_to_string().unwrap_or_default();
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

impl Api {
    pub fn new(urls: Vec<String>, token: String) -> Api {
        Api {
            urls,
            token,
            netns: None,
        }
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

    /// The status code of a plain GET (for /health and /ready).
    pub fn get_status(&self, url: &str) -> Result<u16> {
        self.run(|| {
            Ok(agent(Duration::from_secs(1))
                .get(url)
                .call()?
                .status()
                .as_u16())
        })
    }

    fn auth(&self) -> String {
        format!("Bearer {}", self.token)
    }

    /// A GET to one node whose answer is text (`/metrics`).
    pub fn get_text_from(&self, base: &str, path: &str) -> Result<String> {
        let auth = self.auth();
        self.run(|| {
            let mut response = agent(Duration::from_secs(5))
                .get(format!("{base}{path}"))
                .header("Authorization", &auth)
                .call()?;
            let status = response.status().as_u16();
            let body = response.body_mut().read_to_string()?;
            if status != 200 {
                bail!("GET {base}{path}: {status} {body}");
            }
            Ok(body)
        })
    }

    /// A GET to one node.
    pub fn get_from(&self, base: &str, path: &str, timeout: Duration) -> Result<Value> {
        let auth = self.auth();
        self.run(|| {
            let mut response = agent(timeout)
                .get(format!("{base}{path}"))
                .header("Authorization", &auth)
                .call()?;
            let status = response.status().as_u16();
            let body = parse_body(&mut response);
            if status != 200 {
                bail!("GET {base}{path}: {status} {body}");
            }
            Ok(body)
        })
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
        let auth = self.auth();
        self.run(|| {
            let agent = agent(Duration::from_secs(10));
            let mut response = if method == "DELETE" {
                agent.delete(&url).header("Authorization", &auth).call()?
            } else {
                // A PUT without a body goes as a POST.
                let request = match (method, &body) {
                    ("PUT", Some(_)) => agent.put(&url),
                    _ => agent.post(&url),
                };
                let request = request.header("Authorization", &auth);
                match body {
                    Some(body) => request.send_json(body)?,
                    None => request.send_empty()?,
                }
            };
            let status = response.status().as_u16();
            Ok(Answer {
                status,
                body: parse_body(&mut response),
            })
        })
    }
}
