//! A small client of Prometheus's HTTP query API (`/api/v1/query`,
//! `/api/v1/query_range`, `/-/ready`), enough for the tests: HTTP/1.0 over
//! a std `TcpStream` (so the reply is neither chunked nor kept alive), with
//! a timeout on every call.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use serde_json::Value;

/// Longest wait for connecting, and for each read or write.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// Why a query failed.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("cannot reach Prometheus at {addr}: {source}")]
    Io {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("Prometheus answered with something that is not HTTP: {0:?}")]
    NotHttp(String),
    #[error("Prometheus answered HTTP {status}: {body}")]
    Status { status: u16, body: String },
    #[error("Prometheus answered with JSON that is not an API reply: {0}")]
    Json(#[from] serde_json::Error),
    #[error("Prometheus refused the query ({error_type}): {error}")]
    Refused { error_type: String, error: String },
}

/// A Prometheus server.
#[derive(Clone, Copy, Debug)]
pub struct Client {
    pub addr: SocketAddr,
}

impl Client {
    pub fn new(addr: SocketAddr) -> Client {
        Client { addr }
    }

    /// `GET path` (path and query string, already encoded): status and body.
    pub fn get(&self, path: &str) -> Result<(u16, String), QueryError> {
        let io = |source| QueryError::Io {
            addr: self.addr,
            source,
        };
        let mut stream = TcpStream::connect_timeout(&self.addr, TIMEOUT).map_err(io)?;
        stream.set_read_timeout(Some(TIMEOUT)).map_err(io)?;
        stream.set_write_timeout(Some(TIMEOUT)).map_err(io)?;
        write!(
            stream,
            "GET {path} HTTP/1.0\r\nHost: {}\r\nAccept: application/json\r\n\r\n",
            self.addr
        )
        .map_err(io)?;
        let mut reply = Vec::new();
        stream.read_to_end(&mut reply).map_err(io)?;
        let reply = String::from_utf8_lossy(&reply);
        let (head, body) = reply
            .split_once("\r\n\r\n")
            .ok_or_else(|| QueryError::NotHttp(reply.chars().take(200).collect()))?;
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| QueryError::NotHttp(head.chars().take(200).collect()))?;
        Ok((status, body.to_owned()))
    }

    /// True when the server says it is ready to answer queries.
    pub fn ready(&self) -> bool {
        matches!(self.get("/-/ready"), Ok((200, _)))
    }

    /// An instant query at `time` (Unix seconds; `None`: now). Returns the
    /// `data` object: `resultType` and `result`.
    pub fn query(&self, expr: &str, time: Option<f64>) -> Result<Value, QueryError> {
        let mut path = format!("/api/v1/query?query={}", encode(expr));
        if let Some(time) = time {
            path.push_str(&format!("&time={time:.3}"));
        }
        self.api(&path)
    }

    /// A range query from `start` to `end` (Unix seconds) every `step`
    /// seconds. Returns the `data` object.
    pub fn query_range(
        &self,
        expr: &str,
        start: f64,
        end: f64,
        step: f64,
    ) -> Result<Value, QueryError> {
        self.api(&format!(
            "/api/v1/query_range?query={}&start={start:.3}&end={end:.3}&step={step}",
            encode(expr)
        ))
    }

    fn api(&self, path: &str) -> Result<Value, QueryError> {
        let (status, body) = self.get(path)?;
        // Prometheus answers 400 and 422 with an API reply naming the error.
        let reply: Value = match serde_json::from_str(&body) {
            Ok(reply) => reply,
            Err(_) if status != 200 => return Err(QueryError::Status { status, body }),
            Err(e) => return Err(e.into()),
        };
        if reply["status"] != "success" {
            return Err(QueryError::Refused {
                error_type: reply["errorType"].as_str().unwrap_or("?").to_owned(),
                error: reply["error"].as_str().unwrap_or(&body).to_owned(),
            });
        }
        Ok(reply["data"].clone())
    }
}

/// The `result` array of a query's `data`.
pub fn result(data: &Value) -> &[Value] {
    data["result"].as_array().map_or(&[], Vec::as_slice)
}

/// The value of one sample, `[time, "value"]`, as (time, value).
pub fn sample(pair: &Value) -> Option<(f64, f64)> {
    Some((pair[0].as_f64()?, pair[1].as_str()?.parse().ok()?))
}

/// Percent-encoding of a query-string value (RFC 3986 unreserved
/// characters pass).
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(
            encode("sum by (x) (rate(a{b=~\".*\"}[1m]))"),
            "sum%20by%20%28x%29%20%28rate%28a%7Bb%3D~%22.%2A%22%7D%5B1m%5D%29%29"
        );
        assert_eq!(encode("é+&"), "%C3%A9%2B%26");
    }

    #[test]
    fn samples_are_read() {
        let pair = serde_json::json!([1700000000.5, "12"]);
        assert_eq!(sample(&pair), Some((1700000000.5, 12.0)));
        assert_eq!(sample(&serde_json::json!([1, 2])), None);
    }
}
