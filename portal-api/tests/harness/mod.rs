//! A real portal on `127.0.0.1:0` over a real engine store: one SQLite file
//! in a temporary directory shared by the portal's tables and the engine's
//! (as in production), portal organisations `a` and `b` mapped to engine
//! organisations of the same names, a campaign `c` (script `s`) in `a` and
//! `cb` in `b`, and a small HTTP/1.1 client (hyper) that can stream a body
//! from disk.

#![allow(clippy::unwrap_used, dead_code)] // tests may unwrap; not every binary uses every helper

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::body::Bytes;
use dialcast_engine::store::{CampaignSettings, SqliteStore, Store as _, TrunkSettings};
use dialcast_portal_api::apikey::{self, NewKey, PlainKey};
use dialcast_portal_api::files::Engine;
use dialcast_portal_api::{accounts, db, router, AppState, OrgId, Role};
use futures_util::StreamExt as _;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper::header::HeaderMap;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use sqlx::SqlitePool;

pub const T0: i64 = 1_800_000_000;

pub type ReqBody = BoxBody<Bytes, std::io::Error>;

pub struct Harness {
    pub dir: tempfile::TempDir,
    pub addr: SocketAddr,
    pub db: SqlitePool,
    pub store: Arc<SqliteStore>,
    pub portal_a: OrgId,
    pub portal_b: OrgId,
    pub engine_a: i64,
    pub engine_b: i64,
    pub campaign_a: i64,
    pub campaign_b: i64,
    pub engine: Engine,
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map(|v| v.to_str().unwrap())
            .unwrap_or("")
    }

    /// Asserts an RFC 9457 problem of this status and `type` slug.
    pub fn assert_problem(&self, status: StatusCode, slug: &str) {
        assert_eq!(
            self.status,
            status,
            "{}",
            String::from_utf8_lossy(&self.body)
        );
        assert_eq!(self.header("content-type"), "application/problem+json");
        let p = self.json();
        assert_eq!(p["type"], format!("https://dialcast.dev/problems/{slug}"));
        assert_eq!(p["status"], status.as_u16());
    }
}

async fn campaign(store: &SqliteStore, org: i64, name: &str, script: &str) -> i64 {
    let trunk = store
        .upsert_trunk(
            org,
            &TrunkSettings {
                name: "t".into(),
                uri: "sip:127.0.0.1:5090".into(),
                transport: "udp".into(),
                max_cps: 5,
                max_channels: 5,
                caller_id: None,
            },
        )
        .await
        .unwrap();
    let script = store
        .upsert_script(org, script, &format!("{script}.toml"), "name = \"s\"")
        .await
        .unwrap();
    store
        .ensure_campaign(org, name, script, trunk, &CampaignSettings::default())
        .await
        .unwrap()
}

impl Harness {
    pub async fn start() -> Harness {
        Harness::start_with(|_| {}).await
    }

    /// Starts the portal; `tune` may change the engine settings first.
    pub async fn start_with(tune: impl FnOnce(&mut Engine)) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("dialcast.sqlite");
        let store = Arc::new(SqliteStore::open(&file).await.unwrap());
        let db = db::open(&file).await.unwrap();
        let portal_a = accounts::create_organisation(&db, "a", T0).await.unwrap();
        let portal_b = accounts::create_organisation(&db, "b", T0).await.unwrap();
        let engine_a = store.ensure_organisation("a", "NL").await.unwrap();
        let engine_b = store.ensure_organisation("b", "NL").await.unwrap();
        let campaign_a = campaign(&store, engine_a, "c", "s").await;
        let campaign_b = campaign(&store, engine_b, "cb", "sb").await;
        let mut engine = Engine::under(store.clone(), dir.path());
        tune(&mut engine);
        let state = AppState::new(db.clone()).with_files(engine.clone());
        let app = router(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await
            .unwrap();
        });
        Harness {
            dir,
            addr,
            db,
            store,
            portal_a,
            portal_b,
            engine_a,
            engine_b,
            campaign_a,
            campaign_b,
            engine,
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub async fn key(&self, org: OrgId, role: Role) -> PlainKey {
        let new = NewKey {
            name: format!("{role} key"),
            cidrs: Vec::new(),
        };
        apikey::create(&self.db, org, role, new, "cli", T0)
            .await
            .unwrap()
            .1
    }

    /// Sends one request on a fresh connection, with an API key.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        key: &PlainKey,
        headers: &[(&str, &str)],
        body: ReqBody,
    ) -> Reply {
        let mut all = vec![("x-auth-token", key.expose())];
        all.extend_from_slice(headers);
        self.send_raw(method, path, &all, body).await
    }

    /// Sends one request on a fresh connection with exactly these headers.
    pub async fn send_raw(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: ReqBody,
    ) -> Reply {
        let stream = tokio::net::TcpStream::connect(self.addr).await.unwrap();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(conn);
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header("host", self.addr.to_string());
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let res = sender.send_request(req.body(body).unwrap()).await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let body = res.into_body().collect().await.unwrap().to_bytes();
        Reply {
            status,
            headers,
            body,
        }
    }

    /// A user of `org` with `role` and a permanent password, logged in:
    /// returns the user id and the `Cookie` header value.
    pub async fn session(&self, org: OrgId, email: &str, role: Role) -> (i64, String) {
        let now = chrono::Utc::now().timestamp();
        let (id, _) = accounts::create_user(&self.db, org, email, role, "cli", now)
            .await
            .unwrap();
        let password = "a long and permanent passphrase 42";
        let mut tx = self.db.begin().await.unwrap();
        accounts::set_password(&mut tx, id, password, now)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        let body = serde_json::json!({"email": email, "password": password}).to_string();
        let r = self
            .send_raw(
                Method::POST,
                "/api/v1/auth/login",
                &[("content-type", "application/json")],
                full(body),
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::OK,
            "{}",
            String::from_utf8_lossy(&r.body)
        );
        let cookie = r.header("set-cookie").split(';').next().unwrap().to_owned();
        (id, cookie)
    }

    pub async fn get(&self, path: &str, key: &PlainKey) -> Reply {
        self.send(Method::GET, path, key, &[], empty()).await
    }

    pub async fn get_range(&self, path: &str, key: &PlainKey, range: &str) -> Reply {
        self.send(Method::GET, path, key, &[("range", range)], empty())
            .await
    }

    pub async fn json(&self, method: Method, path: &str, key: &PlainKey, body: &Value) -> Reply {
        self.send(
            method,
            path,
            key,
            &[("content-type", "application/json")],
            full(body.to_string()),
        )
        .await
    }

    pub async fn post(&self, path: &str, key: &PlainKey) -> Reply {
        self.send(Method::POST, path, key, &[], empty()).await
    }

    /// Uploads `content` as `file_name` into `campaign`.
    pub async fn upload(
        &self,
        key: &PlainKey,
        campaign: &str,
        file_name: &str,
        content: &[u8],
    ) -> Reply {
        let (head, tail) = multipart_frame(campaign, file_name);
        let mut body = head.into_bytes();
        body.extend_from_slice(content);
        body.extend_from_slice(tail.as_bytes());
        self.send(
            Method::POST,
            "/api/v1/imports",
            key,
            &[("content-type", MULTIPART_TYPE)],
            full(body),
        )
        .await
    }

    /// Uploads the file at `path`, read from disk as it is sent, with a
    /// Content-Length when `sized` (else chunked).
    pub async fn upload_from_disk(
        &self,
        key: &PlainKey,
        campaign: &str,
        path: &Path,
        sized: bool,
    ) -> Reply {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let (head, tail) = multipart_frame(campaign, &name);
        let len = std::fs::metadata(path).unwrap().len();
        let total = head.len() as u64 + len + tail.len() as u64;
        let file = tokio::fs::File::open(path).await.unwrap();
        let stream = futures_util::stream::once(async move { Ok(Bytes::from(head)) })
            .chain(tokio_util::io::ReaderStream::with_capacity(file, 64 * 1024))
            .chain(futures_util::stream::once(
                async move { Ok(Bytes::from(tail)) },
            ))
            .map(|chunk| chunk.map(Frame::data));
        let body = BodyExt::boxed(StreamBody::new(stream));
        let total = total.to_string();
        let mut headers = vec![("content-type", MULTIPART_TYPE)];
        if sized {
            headers.push(("content-length", total.as_str()));
        }
        self.send(Method::POST, "/api/v1/imports", key, &headers, body)
            .await
    }

    /// Polls an import until it leaves `uploaded`/`validating`.
    pub async fn settled_import(&self, key: &PlainKey, id: i64) -> Value {
        for _ in 0..500 {
            let r = self.get(&format!("/api/v1/imports/{id}"), key).await;
            assert_eq!(r.status, StatusCode::OK);
            let v = r.json();
            if v["status"] != "uploaded" && v["status"] != "validating" {
                return v;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        panic!("import {id} never settled");
    }
}

pub const BOUNDARY: &str = "dialcast-test-boundary-7d1f";
pub const MULTIPART_TYPE: &str = "multipart/form-data; boundary=dialcast-test-boundary-7d1f";

/// The multipart text before and after the file's bytes.
pub fn multipart_frame(campaign: &str, file_name: &str) -> (String, String) {
    let head = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"campaign\"\r\n\r\n{campaign}\r\n\
         --{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\n\
         Content-Type: application/octet-stream\r\n\r\n"
    );
    let tail = format!("\r\n--{BOUNDARY}--\r\n");
    (head, tail)
}

pub fn empty() -> ReqBody {
    full(Vec::new())
}

pub fn full(bytes: impl Into<Bytes>) -> ReqBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

/// A mono 8 kHz 16-bit WAV of `samples` samples.
pub fn wav(samples: u32) -> Vec<u8> {
    let data = samples * 2;
    let mut out = Vec::with_capacity(44 + data as usize);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&8000u32.to_le_bytes());
    out.extend_from_slice(&16000u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data.to_le_bytes());
    for i in 0..samples {
        let v = ((i % 64) as i16 - 32) * 500;
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}
