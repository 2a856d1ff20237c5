//! [`DockerRuntime`]: the n8n container through the Docker Engine API on its unix socket
//! (`/var/run/docker.sock`), the way the droplet's docker compose runs it.
//!
//! HTTP/1.1 over the socket is spoken with `hyper` (already in the tree through axum and
//! reqwest): one connection per call, which is plenty for a handful of calls a day. A crate
//! such as `bollard` would bring the whole Docker API and its models for the six calls used
//! here.
//!
//! Swap (spec 56.2): stop the running container, rename it `<name>-previous`, create
//! `<name>` from its configuration with the new image, start it. Rollback reverses that. The
//! previous container is kept (stopped) until the next swap, so a later rollback still works.

use std::path::PathBuf;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

use crate::runtime::{ContainerRuntime, RuntimeError, RuntimeStatus};

/// The Docker Engine API version spoken (Docker 24+).
pub const API_VERSION: &str = "v1.43";

/// n8n's container through the Docker Engine API.
#[derive(Debug, Clone)]
pub struct DockerRuntime {
    socket: PathBuf,
    container: String,
}

fn failed(what: &str, e: impl std::fmt::Display) -> RuntimeError {
    RuntimeError::Failed(format!("docker {what}: {e}"))
}

/// `n8nio/n8n:2.8.4` → (`n8nio/n8n`, `2.8.4`); digests stay whole.
fn split_image(image: &str) -> (String, String) {
    if image.contains('@') {
        return (image.to_owned(), String::new());
    }
    match image.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo.to_owned(), tag.to_owned()),
        _ => (image.to_owned(), "latest".to_owned()),
    }
}

/// Splits Docker's multiplexed log stream (8-byte frame headers) into lines.
pub fn demux_logs(raw: &[u8]) -> Vec<String> {
    let mut out = String::new();
    let mut rest = raw;
    while rest.len() >= 8 && matches!(rest[0], 0..=2) && rest[1..4] == [0, 0, 0] {
        let len = u32::from_be_bytes([rest[4], rest[5], rest[6], rest[7]]) as usize;
        let end = (8 + len).min(rest.len());
        out.push_str(&String::from_utf8_lossy(&rest[8..end]));
        rest = &rest[end..];
    }
    // A TTY container sends plain text.
    out.push_str(&String::from_utf8_lossy(rest));
    out.lines().map(str::to_owned).collect()
}

impl DockerRuntime {
    /// The container `container` on the engine at `socket`.
    pub fn new(socket: impl Into<PathBuf>, container: impl Into<String>) -> Self {
        Self {
            socket: socket.into(),
            container: container.into(),
        }
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<(StatusCode, Bytes), RuntimeError> {
        let stream = tokio::net::UnixStream::connect(&self.socket)
            .await
            .map_err(|e| failed("socket", format!("{}: {e}", self.socket.display())))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| failed("handshake", e))?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let bytes = body.map(|b| b.to_string()).unwrap_or_default();
        let req = Request::builder()
            .method(method)
            .uri(format!("/{API_VERSION}{path}"))
            .header("host", "docker")
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(bytes)))
            .map_err(|e| failed("request", e))?;
        let resp = sender
            .send_request(req)
            .await
            .map_err(|e| failed(path, e))?;
        let status = resp.status();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| failed(path, e))?
            .to_bytes();
        Ok((status, body))
    }

    async fn expect(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        ok: &[u16],
    ) -> Result<Bytes, RuntimeError> {
        let (status, bytes) = self.call(method, path, body).await?;
        if ok.contains(&status.as_u16()) {
            return Ok(bytes);
        }
        let message = serde_json::from_slice::<Value>(&bytes)
            .ok()
            .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_owned))
            .unwrap_or_else(|| String::from_utf8_lossy(&bytes).into_owned());
        Err(failed(path, format!("{status}: {message}")))
    }

    async fn inspect(&self, name: &str) -> Result<Option<Value>, RuntimeError> {
        let (status, bytes) = self
            .call(Method::GET, &format!("/containers/{name}/json"), None)
            .await?;
        match status {
            StatusCode::NOT_FOUND => Ok(None),
            s if s.is_success() => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| failed("inspect", e)),
            s => Err(failed("inspect", s)),
        }
    }

    fn pid_of(v: &Value) -> Option<u32> {
        v.pointer("/State/Pid")
            .and_then(Value::as_u64)
            .filter(|p| *p > 0)
            .map(|p| p as u32)
    }

    async fn start_named(&self, name: &str) -> Result<Option<u32>, RuntimeError> {
        self.expect(
            Method::POST,
            &format!("/containers/{name}/start"),
            None,
            &[204, 304],
        )
        .await?;
        Ok(self.inspect(name).await?.as_ref().and_then(Self::pid_of))
    }

    async fn stop_named(&self, name: &str) -> Result<(), RuntimeError> {
        self.expect(
            Method::POST,
            &format!("/containers/{name}/stop?t=30"),
            None,
            &[204, 304],
        )
        .await
        .map(|_| ())
    }

    fn previous(&self) -> String {
        format!("{}-previous", self.container)
    }
}

impl ContainerRuntime for DockerRuntime {
    async fn status(&self) -> RuntimeStatus {
        let v = self.inspect(&self.container).await.ok().flatten();
        let running = v
            .as_ref()
            .and_then(|v| v.pointer("/State/Running"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let started = v
            .as_ref()
            .and_then(|v| v.pointer("/State/StartedAt"))
            .and_then(Value::as_str)
            .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok());
        RuntimeStatus {
            running,
            pid: v.as_ref().and_then(Self::pid_of),
            image: v
                .as_ref()
                .and_then(|v| v.pointer("/Config/Image"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            uptime_s: started
                .map(|t| {
                    (chrono::Utc::now() - t.with_timezone(&chrono::Utc))
                        .num_seconds()
                        .max(0) as u64
                })
                .unwrap_or(0),
        }
    }

    async fn restart(&self) -> Result<Option<u32>, RuntimeError> {
        self.expect(
            Method::POST,
            &format!("/containers/{}/restart?t=30", self.container),
            None,
            &[204],
        )
        .await?;
        Ok(self
            .inspect(&self.container)
            .await?
            .as_ref()
            .and_then(Self::pid_of))
    }

    async fn pull(&self, image: &str) -> Result<(), RuntimeError> {
        let (repo, tag) = split_image(image);
        let path = if tag.is_empty() {
            format!("/images/create?fromImage={repo}")
        } else {
            format!("/images/create?fromImage={repo}&tag={tag}")
        };
        let bytes = self.expect(Method::POST, &path, None, &[200]).await?;
        // Progress is a stream of JSON lines; a failure mid-way is a line with "error".
        for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            if let Ok(v) = serde_json::from_slice::<Value>(line)
                && let Some(e) = v.get("error").and_then(Value::as_str)
            {
                return Err(failed("pull", format!("{image}: {e}")));
            }
        }
        Ok(())
    }

    async fn swap(&self, image: &str) -> Result<Option<u32>, RuntimeError> {
        let current = self
            .inspect(&self.container)
            .await?
            .ok_or_else(|| failed("swap", format!("no container {}", self.container)))?;
        let previous = self.previous();
        if self.inspect(&previous).await?.is_some() {
            self.expect(
                Method::DELETE,
                &format!("/containers/{previous}?force=true"),
                None,
                &[204],
            )
            .await?;
        }
        self.stop_named(&self.container).await?;
        self.expect(
            Method::POST,
            &format!("/containers/{}/rename?name={previous}", self.container),
            None,
            &[204],
        )
        .await?;
        let mut config = current.get("Config").cloned().unwrap_or_else(|| json!({}));
        config["Image"] = json!(image);
        config["HostConfig"] = current
            .get("HostConfig")
            .cloned()
            .unwrap_or_else(|| json!({}));
        let created = self
            .expect(
                Method::POST,
                &format!("/containers/create?name={}", self.container),
                Some(config),
                &[201],
            )
            .await;
        if let Err(e) = created {
            // Put the old one back before reporting.
            let _ = self
                .expect(
                    Method::POST,
                    &format!("/containers/{previous}/rename?name={}", self.container),
                    None,
                    &[204],
                )
                .await;
            let _ = self.start_named(&self.container).await;
            return Err(e);
        }
        self.start_named(&self.container).await
    }

    async fn rollback(&self) -> Result<Option<u32>, RuntimeError> {
        let previous = self.previous();
        if self.inspect(&previous).await?.is_none() {
            return Err(RuntimeError::Failed("nothing to roll back to".into()));
        }
        self.expect(
            Method::DELETE,
            &format!("/containers/{}?force=true", self.container),
            None,
            &[204, 404],
        )
        .await?;
        self.expect(
            Method::POST,
            &format!("/containers/{previous}/rename?name={}", self.container),
            None,
            &[204],
        )
        .await?;
        self.start_named(&self.container).await
    }

    async fn logs(&self, lines: usize) -> Vec<String> {
        match self
            .expect(
                Method::GET,
                &format!(
                    "/containers/{}/logs?stdout=true&stderr=true&tail={lines}",
                    self.container
                ),
                None,
                &[200],
            )
            .await
        {
            Ok(raw) => demux_logs(&raw),
            Err(e) => vec![format!("(logs unavailable: {e})")],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_and_log_frames() {
        assert_eq!(
            split_image("n8nio/n8n:2.8.4"),
            ("n8nio/n8n".into(), "2.8.4".into())
        );
        assert_eq!(
            split_image("localhost:5000/n8n"),
            ("localhost:5000/n8n".into(), "latest".into())
        );
        assert_eq!(split_image("n8nio/n8n@sha256:ab").1, "");
        let mut raw = vec![1, 0, 0, 0, 0, 0, 0, 6];
        raw.extend_from_slice(b"hello\n");
        raw.extend_from_slice(&[2, 0, 0, 0, 0, 0, 0, 4]);
        raw.extend_from_slice(b"err\n");
        assert_eq!(demux_logs(&raw), vec!["hello", "err"]);
        assert_eq!(demux_logs(b"plain\ntext\n"), vec!["plain", "text"]);
    }
}
