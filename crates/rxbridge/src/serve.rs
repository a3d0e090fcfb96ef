//! Serving: the public and metrics listeners, the background workers (payments sweep, outbox,
//! fulfilment sweep, audit anchoring) and a server started on a free port for tests.

use crate::{App, Config, anchors, server, webhooks};
use anyhow::Context as _;
use rxbridge_app::Clock;
use rxbridge_app::clinics::Clinics;
use rxbridge_http::AppState;
use rxbridge_store_sqlite::SqliteStore;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// Bind the metrics listener `config.metrics` asks for (`None` when it is `off`).
pub async fn bind_metrics(config: &Config) -> anyhow::Result<Option<tokio::net::TcpListener>> {
    let Some(addr) = config.metrics.addr()? else {
        return Ok(None);
    };
    let l = tokio::net::TcpListener::bind(addr).await.with_context(|| {
        format!("binding the metrics listener {addr} (metrics.listen / RXBRIDGE_METRICS_LISTEN; \"off\" disables it)")
    })?;
    Ok(Some(l))
}

/// Write a signed anchor of every chain's head to the configured witnesses on the schedule
/// (nothing to do without one: the key is still created at start).
fn spawn_anchoring(app: &App) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let key = anchors::load_or_create_key(&app.config.data_dir)?;
    let every = std::time::Duration::from_secs(app.config.audit.anchor_interval_secs);
    let transport: Arc<dyn rxbridge_app::outbox::WebhookTransport> = Arc::new(
        webhooks::HttpWebhooks::new(webhooks::UrlPolicy::from_settings(&app.config.webhooks))?,
    );
    let witnesses = app.config.audit.witnesses(transport);
    let (store, registers) = (app.state.store.clone(), app.store.clone());
    Ok(tokio::spawn(async move {
        if witnesses.is_empty() {
            return;
        }
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            // Failures are logged (alert) inside; the next tick tries again.
            let _ = rxbridge_app::anchor::publish(
                store.as_ref(),
                registers.as_ref(),
                &key,
                &witnesses,
                jiff::Timestamp::now(),
            )
            .await;
        }
    }))
}

/// Serve until `shutdown` resolves, then finish in-flight requests and flush the store.
/// `metrics` (from [`bind_metrics`]) serves `/metrics` on its own listener.
pub async fn serve(
    app: App,
    listener: tokio::net::TcpListener,
    metrics: Option<tokio::net::TcpListener>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    // Bodies an earlier version stored in the clear are sealed before anything is delivered.
    let sealed = app.outbox.seal_stored_bodies().await?;
    if sealed > 0 {
        tracing::info!(
            sealed,
            "sealed outbox bodies that an earlier version stored in the clear"
        );
    }
    let router = app.router();
    let metrics_task = metrics.map(|l| {
        let r = rxbridge_http::metrics_router(app.state.clone());
        tokio::spawn(async move {
            if let Err(e) = axum::serve(l, r).await {
                tracing::error!(error = %e, "metrics listener failed");
            }
        })
    });
    let sweep = spawn_sweep(
        app.payments.clone(),
        std::time::Duration::from_secs(app.config.payments.sweep_interval_secs),
    );
    let worker = spawn_outbox_worker(
        app.outbox.clone(),
        std::time::Duration::from_millis(app.config.webhooks.poll_interval_ms),
    );
    let releases = spawn_fulfilment_sweep(
        app.fulfilment.clone(),
        std::time::Duration::from_secs(app.config.warehouse.sweep_interval_secs),
    );
    let anchoring = spawn_anchoring(&app)?;
    let eps = spawn_eps(&app);
    let policy = server::ConnectionPolicy {
        header_read_timeout: std::time::Duration::from_secs(app.config.header_read_timeout_secs),
        max_per_client: app.config.max_connections_per_client,
    };
    let served = server::serve_public(listener, router, policy, shutdown).await;
    for task in [sweep, worker, releases, anchoring]
        .into_iter()
        .chain(metrics_task)
        .chain(eps)
    {
        task.abort();
        let _ = task.await;
    }
    app.store.close();
    served?;
    Ok(())
}

/// Run `job` every `every` until the task is aborted; `at_once` runs it at start too. A report
/// other than the default (something happened) is logged; a failure is logged and the next
/// tick tries again.
fn spawn_every<R, F, Fut>(
    name: &'static str,
    every: std::time::Duration,
    at_once: bool,
    job: F,
) -> tokio::task::JoinHandle<()>
where
    R: Default + PartialEq + std::fmt::Debug + Send,
    F: Fn() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<R, String>> + Send,
{
    tokio::spawn(async move {
        let mut t = tokio::time::interval(every);
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        if !at_once {
            t.tick().await;
        }
        loop {
            t.tick().await;
            match job().await {
                Ok(r) if r != R::default() => tracing::info!(report = ?r, "{name}"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "{name} failed"),
            }
        }
    })
}

/// With EPS configured: release the nominated prescriptions every `eps.release_interval_secs`
/// and queue the claims of last month and this one every `eps.claim_interval_secs` (idempotent:
/// each prescription is claimed once). The outbox worker sends what they queue.
fn spawn_eps(app: &App) -> Vec<tokio::task::JoinHandle<()>> {
    let Some(eps) = app.eps.clone() else {
        return Vec::new();
    };
    let settings = &app.config.eps;
    let mut tasks = Vec::new();
    if settings.release_interval_secs > 0 {
        let e = eps.clone();
        tasks.push(spawn_every(
            "eps release",
            std::time::Duration::from_secs(settings.release_interval_secs),
            true,
            move || {
                let e = e.clone();
                async move { e.release().await.map_err(|err| format!("{err:#}")) }
            },
        ));
    }
    if settings.claim_interval_secs > 0 {
        tasks.push(spawn_every(
            "eps claims",
            std::time::Duration::from_secs(settings.claim_interval_secs),
            true,
            move || {
                let e = eps.clone();
                // Last month and this one: a prescription charged at the end of a month and
                // dispatched in the next is claimed when it is dispatched.
                async move {
                    let mut run = e
                        .claims(e.last_month())
                        .await
                        .map_err(|err| format!("{err:#}"))?;
                    run += e
                        .claims(e.this_month())
                        .await
                        .map_err(|err| format!("{err:#}"))?;
                    Ok(run)
                }
            },
        ));
    }
    tasks
}

/// Run the payments sweep every `every` (first run after one interval).
pub fn spawn_sweep(
    payments: Arc<rxbridge_app::payments::Payments>,
    every: std::time::Duration,
) -> tokio::task::JoinHandle<()> {
    spawn_every("payments sweep", every, false, move || {
        let p = payments.clone();
        async move { p.tick().await.map_err(|e| e.to_string()) }
    })
}

/// Deliver due webhooks every `every`.
pub fn spawn_outbox_worker(
    outbox: Arc<rxbridge_app::outbox::Outbox>,
    every: std::time::Duration,
) -> tokio::task::JoinHandle<()> {
    spawn_every("outbox", every, true, move || {
        let o = outbox.clone();
        async move { o.run_once().await.map_err(|e| e.to_string()) }
    })
}

/// Release ready prescriptions and expire overdue ones every `every` (first run at once).
pub fn spawn_fulfilment_sweep(
    fulfilment: Arc<rxbridge_app::fulfilment::Fulfilment>,
    every: std::time::Duration,
) -> tokio::task::JoinHandle<()> {
    spawn_every("fulfilment sweep", every, true, move || {
        let f = fulfilment.clone();
        async move { f.sweep().await.map_err(|e| e.to_string()) }
    })
}

/// A server started on a free port (tests, benchmarks).
pub struct Running {
    pub addr: SocketAddr,
    /// The metrics listener's address, unless `metrics.listen` is `off`.
    pub metrics_addr: Option<SocketAddr>,
    pub clinics: Arc<Clinics>,
    pub staff: Arc<rxbridge_app::staff::StaffService>,
    pub store: Arc<SqliteStore>,
    pub payments: Arc<rxbridge_app::payments::Payments>,
    pub finance: Arc<rxbridge_app::finance::Finance>,
    pub clinical: Arc<rxbridge_app::clinical::ClinicalCheck>,
    pub fulfilment: Arc<rxbridge_app::fulfilment::Fulfilment>,
    pub outbox: Arc<rxbridge_app::outbox::Outbox>,
    pub eps: Option<Arc<crate::eps::Eps>>,
    pub data_dir: PathBuf,
    pub state: AppState,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

impl Running {
    /// Stop gracefully and wait until the store is flushed.
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

/// Start the server on `config.listen` (use port 0 for a free port; `Running::addr` says which).
pub async fn spawn(config: Config) -> anyhow::Result<Running> {
    spawn_with_clock(config, Arc::new(rxbridge_app::SystemClock)).await
}

/// `spawn` with a clock the caller controls (tests of deadlines). When `public_url` is unset it
/// becomes the bound address, so payment links work on a port-0 server.
pub async fn spawn_with_clock(
    mut config: Config,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<Running> {
    let listener = tokio::net::TcpListener::bind(&config.listen).await?;
    let addr = listener.local_addr()?;
    let metrics = bind_metrics(&config).await?;
    let metrics_addr = metrics.as_ref().map(|l| l.local_addr()).transpose()?;
    if config.public_url.is_none() {
        config.public_url = Some(format!("http://{addr}"));
    }
    let app = App::open_with_clock(config, clock)?;
    let (clinics, store, staff, payments, finance, clinical) = (
        app.state.clinics.clone(),
        app.store.clone(),
        app.staff.clone(),
        app.payments.clone(),
        app.finance.clone(),
        app.clinical.clone(),
    );
    let data_dir = app.config.data_dir.clone();
    let state = app.state.clone();
    let (fulfilment, outbox, eps) = (app.fulfilment.clone(), app.outbox.clone(), app.eps.clone());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(serve(app, listener, metrics, async {
        let _ = rx.await;
    }));
    Ok(Running {
        addr,
        metrics_addr,
        clinics,
        store,
        staff,
        payments,
        finance,
        clinical,
        fulfilment,
        outbox,
        eps,
        data_dir,
        state,
        stop: Some(tx),
        task: Some(task),
    })
}
