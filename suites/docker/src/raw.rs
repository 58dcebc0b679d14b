//! A raw `GET` on the Engine API socket that returns the answer as JSON, not as bollard's
//! typed models: engines legitimately answer with values those models do not know (Podman's
//! container state `stopped`, for one), and a check that only reads a few fields must not
//! fail to deserialize the rest. One request per connection (HTTP/1.0, `Connection: close`),
//! a deadline and a size limit; a chunked body is decoded.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The largest answer read (an inspect document is a few kilobytes).
const MAX_ANSWER: u64 = 16 << 20;

/// What a raw `GET` could end in.
#[derive(Debug, thiserror::Error)]
pub enum RawError {
    /// The socket could not be used or the answer not read.
    #[error("{0}")]
    Io(String),
    /// The daemon answered with a status other than 200; `message` is its `message` field.
    #[error("HTTP {status}: {message}")]
    Status {
        /// The HTTP status.
        status: u16,
        /// The daemon's explanation.
        message: String,
    },
    /// The answer is not HTTP or its body not JSON.
    #[error("{0}")]
    Malformed(String),
}

/// `GET path` on the Engine API at `socket`, within `timeout`; the body of a 200 as JSON.
pub async fn get_json(socket: &Path, path: &str, timeout: Duration) -> Result<Value, RawError> {
    let what = format!("GET {path}");
    tokio::time::timeout(timeout, get(socket, path))
        .await
        .map_err(|_| {
            RawError::Io(format!(
                "{what}: no answer from the daemon within {timeout:?}"
            ))
        })?
}

async fn get(socket: &Path, path: &str) -> Result<Value, RawError> {
    if path.bytes().any(|b| b.is_ascii_control() || b == b' ') {
        return Err(RawError::Malformed(format!(
            "refusing a request path with spaces or control characters: {path:?}"
        )));
    }
    let mut stream = tokio::net::UnixStream::connect(socket)
        .await
        .map_err(|e| RawError::Io(format!("cannot connect to {}: {e}", socket.display())))?;
    let request = format!(
        "GET {path} HTTP/1.0\r\nHost: docker\r\nConnection: close\r\nAccept: application/json\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| RawError::Io(format!("GET {path}: {e}")))?;
    let mut answer = Vec::new();
    (&mut stream)
        .take(MAX_ANSWER + 1)
        .read_to_end(&mut answer)
        .await
        .map_err(|e| RawError::Io(format!("GET {path}: {e}")))?;
    if answer.len() as u64 > MAX_ANSWER {
        return Err(RawError::Malformed(format!(
            "GET {path}: the answer is larger than {MAX_ANSWER} bytes"
        )));
    }
    parse(&answer).map_err(|e| match e {
        RawError::Malformed(m) => RawError::Malformed(format!("GET {path}: {m}")),
        other => other,
    })
}

/// An HTTP/1.x answer: status, headers, body (chunked or not); the body of a 200 as JSON.
pub(crate) fn parse(answer: &[u8]) -> Result<Value, RawError> {
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| RawError::Malformed("no end of the HTTP header".to_owned()))?;
    let head = String::from_utf8_lossy(&answer[..split]);
    let mut body = answer[split + 4..].to_vec();
    let mut lines = head.lines();
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .strip_prefix("HTTP/1.")
        .and_then(|s| s.get(2..5))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| RawError::Malformed(format!("not an HTTP status line: {status_line:?}")))?;
    let chunked = lines.any(|l| {
        l.split_once(':').is_some_and(|(k, v)| {
            k.trim().eq_ignore_ascii_case("transfer-encoding")
                && v.trim().eq_ignore_ascii_case("chunked")
        })
    });
    if chunked {
        body = dechunk(&body)?;
    }
    let json: Result<Value, _> = serde_json::from_slice(&body);
    if status != 200 {
        let message = json
            .ok()
            .and_then(|v| v["message"].as_str().map(str::to_owned))
            .unwrap_or_else(|| {
                String::from_utf8_lossy(&body)
                    .trim()
                    .chars()
                    .take(200)
                    .collect()
            });
        return Err(RawError::Status { status, message });
    }
    json.map_err(|e| RawError::Malformed(format!("the body is not JSON: {e}")))
}

fn dechunk(mut body: &[u8]) -> Result<Vec<u8>, RawError> {
    let bad = |m: &str| RawError::Malformed(format!("bad chunked body: {m}"));
    let mut out = Vec::new();
    loop {
        let eol = body
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or_else(|| bad("no chunk size line"))?;
        let size_text = String::from_utf8_lossy(&body[..eol]);
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| bad("size is not hex"))?;
        body = &body[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        if body.len() < size {
            return Err(bad("chunk shorter than its size"));
        }
        out.extend_from_slice(&body[..size]);
        body = body.get(size + 2..).ok_or_else(|| bad("no end of chunk"))?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read_as_engines_send_them_and_hostile_ones_are_errors() {
        let ok = parse(b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n{\"State\":{\"Status\":\"stopped\"}}").unwrap();
        assert_eq!(ok["State"]["Status"], "stopped");
        let chunked = parse(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"a\":\r\n2\r\n1}\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!(chunked["a"], 1);
        match parse(b"HTTP/1.0 404 Not Found\r\n\r\n{\"message\":\"no such container\"}") {
            Err(RawError::Status {
                status: 404,
                message,
            }) => {
                assert_eq!(message, "no such container")
            }
            other => panic!("{other:?}"),
        }
        for hostile in [
            &b""[..],
            b"garbage",
            b"HTTP/1.0 200 OK\r\n\r\nnot json",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffff\r\nab",
            b"HTTP/9 OK\r\n\r\n{}",
        ] {
            assert!(
                matches!(parse(hostile), Err(RawError::Malformed(_))),
                "{hostile:?}"
            );
        }
    }
}
