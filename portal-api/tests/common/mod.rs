//! What the `dialcast` command tests share: running the binary, a
//! configuration in a fresh directory, a plain HTTP/1.1 client over
//! 127.0.0.1, and reading the database as the portal wrote it.

#![allow(dead_code)] // each test file uses a part

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

pub fn dialcast() -> Command {
    Command::new(env!("CARGO_BIN_EXE_dialcast"))
}

/// Runs a command to its end.
pub fn run(command: &mut Command) -> Output {
    command.output().expect("dialcast runs")
}

/// Standard output of a command that must succeed.
pub fn run_ok(command: &mut Command) -> String {
    let out = run(command);
    assert!(
        out.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// Writes `<dir>/dialcast.toml` for organisation `organisation`, with its
/// database at `<dir>/dialcast.db`, loopback SIP and RTP, and a trunk that
/// is never dialled; returns its path.
pub fn write_config(dir: &Path, organisation: &str) -> PathBuf {
    let text = format!(
        r#"
[storage]
database = "{db}"
[sip]
bind = "127.0.0.1:0"
tcp = false
[media]
bind_ip = "127.0.0.1"
rtp_port_min = 52000
rtp_port_max = 52999
inactivity_timeout_s = 30
[organisation]
name = "{organisation}"
default_country = "NL"
[scripts]
dir = "{scripts}"
[results]
dir = "{results}"
[imports]
archive_dir = "{archive}"
[[trunks]]
name = "t"
uri = "sip:127.0.0.1:9"
max_cps = 1
max_channels = 1
caller_id = "+31201234567"
[campaign]
trunk = "t"
max_attempts = 1
retry_delay_s = 60
ring_timeout_s = 30
max_call_s = 60
amd = false
"#,
        db = dir.join("dialcast.db").display(),
        scripts = dialcast_engine::demo::examples_dir().display(),
        results = dir.join("results").display(),
        archive = dir.join("archive").display(),
    );
    let path = dir.join("dialcast.toml");
    std::fs::write(&path, text).expect("config");
    path
}

/// A child process killed (if still running) when dropped.
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Running {
    /// Asks the process to stop (SIGTERM) and waits for its exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success());
        self.0.wait().expect("wait")
    }
}

/// Spawns `command` with piped stderr; returns the child and the address
/// that follows `marker` (e.g. `"portal API on http://"`) on a stderr line,
/// once one appears (the rest of stderr is collected into the returned
/// receiver's second channel, line by line).
pub fn spawn_and_find_addr(
    command: &mut Command,
    marker: &'static str,
) -> (Running, SocketAddr, mpsc::Receiver<String>) {
    let mut child = command
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("dialcast starts");
    let stderr = child.stderr.take().expect("stderr");
    let (line_tx, line_rx) = mpsc::channel::<String>();
    let (addr_tx, addr_rx) = mpsc::channel::<SocketAddr>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(rest) = line.split(marker).nth(1) {
                let addr = rest
                    .split(|c: char| c == '/' || c.is_whitespace())
                    .next()
                    .and_then(|a| a.parse().ok());
                if let Some(addr) = addr {
                    let _ = addr_tx.send(addr);
                }
            }
            let _ = line_tx.send(line);
        }
    });
    let running = Running(child);
    let addr = match addr_rx.recv_timeout(Duration::from_secs(120)) {
        Ok(addr) => addr,
        Err(_) => {
            let log: Vec<String> = line_rx.try_iter().collect();
            panic!("no {marker:?} line on stderr:\n{}", log.join("\n"));
        }
    };
    (running, addr, line_rx)
}

/// A response: status code, headers (lower-case names) and body.
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// `GET path` over a fresh TCP connection to `addr`, with `X-AUTH-TOKEN`
/// when a key is given.
pub fn get(addr: SocketAddr, path: &str, key: Option<&str>) -> Response {
    let headers: Vec<(&str, &str)> = key.map(|k| ("X-AUTH-TOKEN", k)).into_iter().collect();
    request(addr, "GET", path, &headers, None)
}

/// `POST path` without a body, as [`get`].
pub fn post(addr: SocketAddr, path: &str, key: Option<&str>) -> Response {
    let headers: Vec<(&str, &str)> = key.map(|k| ("X-AUTH-TOKEN", k)).into_iter().collect();
    request(addr, "POST", path, &headers, None)
}

/// `method path` over a fresh TCP connection to `addr` with these headers
/// and, if given, a JSON body.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    json: Option<&str>,
) -> Response {
    let mut stream = TcpStream::connect(addr).expect("connect to the portal");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut head: String = headers
        .iter()
        .map(|(n, v)| format!("{n}: {v}\r\n"))
        .collect();
    if let Some(body) = json {
        head.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{head}Connection: close\r\n\r\n{}",
        json.unwrap_or("")
    )
    .expect("send the request");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read the response");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .expect("a status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let body = raw[split + 4..].to_vec();
    assert!(
        !headers
            .iter()
            .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked")),
        "this client reads no chunked bodies"
    );
    Response {
        status,
        headers,
        body,
    }
}

/// A read-only pool on the database file.
pub async fn read_db(path: &Path) -> sqlx::SqlitePool {
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(path)
        .read_only(true);
    sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .expect("open the database")
}
