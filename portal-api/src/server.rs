//! Serving the portal on a TCP address: the [`router`](crate::router) with
//! each connection's peer address (`ConnectInfo<SocketAddr>`), which API
//! key allowlists check, and a graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::api::{router, AppState};

/// The default address of `dialcast serve --portal-addr` and `dialcast demo
/// --portal-addr`: loopback only, next to the metrics' 9464.
pub const DEFAULT_ADDR: &str = "127.0.0.1:9480";

/// A portal being served.
pub struct Server {
    local_addr: SocketAddr,
    task: JoinHandle<std::io::Result<()>>,
}

impl Server {
    /// The address bound (the port chosen when port 0 was asked).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `http://ADDR`, the base of every path.
    pub fn url(&self) -> String {
        format!("http://{}", self.local_addr)
    }

    /// Waits until the server has stopped (after the shutdown future given
    /// to [`serve`] completed and open requests finished).
    pub async fn stopped(self) -> std::io::Result<()> {
        match self.task.await {
            Ok(result) => result,
            Err(e) => Err(std::io::Error::other(e)),
        }
    }
}

/// Binds `addr` and serves the portal until `shutdown` completes. Binding
/// happens before this returns, so a bad or taken address is an error here.
pub async fn serve(
    addr: SocketAddr,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<Server> {
    let listener = TcpListener::bind(addr).await?;
    let local_addr = listener.local_addr()?;
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
    });
    Ok(Server { local_addr, task })
}
