//! `tailrisk serve`: the book, the market and the paths kept live behind an HTTP/JSON API.
//!
//! - [`store`]: the durable state (SQLite in WAL mode): positions and trades, market
//!   updates, limits.
//! - [`live`]: the inputs, the last completed run (served with its version) and the
//!   background runner that recomputes it after each change.
//! - [`limits`]: VaR, ES and delta limits and their breaches.
//! - [`api`]: the routes (axum on tokio) and their JSON errors.

pub mod api;
pub mod limits;
pub mod live;
pub mod store;

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::error::{Error, Result};
use live::{Live, LiveSettings};

/// What `tailrisk serve` was asked.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// The scenario: model, run settings, market file (and its positions file, imported into
    /// an empty store).
    pub scenario: PathBuf,
    /// Address to listen on (port 0: any free port, printed on start).
    pub listen: SocketAddr,
    /// The SQLite database file.
    pub db: PathBuf,
    /// A positions file to import on start (ids already held are kept as they are).
    pub import: Option<PathBuf>,
    /// Simulation, contributions grouping and correlation repair.
    pub settings: LiveSettings,
}

/// Runs the service until interrupted (Ctrl-C or SIGTERM): loads the store, computes the
/// first run, then listens. Prints `listening on http://ADDR` on stderr once it accepts
/// connections.
pub fn serve(config: ServeConfig) -> Result<()> {
    let live = Live::start(
        &config.scenario,
        &config.db,
        config.import.as_deref(),
        config.settings,
    )?;
    live.spawn_runner();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::Resource {
            message: format!("cannot start the HTTP workers: {e}"),
        })?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|e| Error::Resource {
                message: format!("cannot listen on {}: {e}", config.listen),
            })?;
        let address = listener.local_addr().map_err(|e| Error::Resource {
            message: format!("cannot read the listening address: {e}"),
        })?;
        eprintln!("tailrisk: listening on http://{address}");
        let server = axum::serve(listener, api::router(live)).with_graceful_shutdown(interrupted());
        // open event streams never end by themselves: after the signal, requests in flight
        // get a few seconds, then the service stops
        tokio::select! {
            outcome = server => outcome.map_err(|e| Error::Resource {
                message: format!("the HTTP server stopped: {e}"),
            }),
            () = async {
                interrupted().await;
                tokio::time::sleep(std::time::Duration::from_secs(SHUTDOWN_GRACE_SECONDS)).await;
            } => Ok(()),
        }
    })
}

/// Seconds requests in flight get after Ctrl-C or SIGTERM.
const SHUTDOWN_GRACE_SECONDS: u64 = 3;

/// Resolves on Ctrl-C or SIGTERM.
async fn interrupted() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}
