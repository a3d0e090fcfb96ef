//! `rxbridge serve`: bind the listeners, open the data directory and serve until a signal;
//! `--demo` adds a demo clinic, demo staff and the warehouse simulator's secrets.

use anyhow::Context as _;
use rxbridge::{App, Config};
use secrecy::ExposeSecret as _;

pub async fn run(mut config: Config, listen: Option<String>, demo: bool) -> anyhow::Result<()> {
    if let Some(l) = listen {
        config.listen = l;
    }
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .with_context(|| format!("binding {}", config.listen))?;
    let addr = listener.local_addr()?;
    if config.public_url.is_none() && config.listen.ends_with(":0") {
        // A port chosen at start: payment links must carry the real one.
        config.public_url = Some(format!("http://{addr}"));
    }
    let sim = if demo {
        Some(demo_warehouse(&mut config)?)
    } else {
        None
    };
    let metrics = rxbridge::bind_metrics(&config).await?;
    let app = App::open(config)?;
    if app.config.payments.provider == "sandbox" {
        tracing::warn!(
            "live-mode payments use the sandbox provider: no money moves (set payments.provider = \"stripe\" for production)"
        );
    }
    if let Some((order_secret, _)) = &sim
        && app
            .outbox
            .store()
            .endpoint_for("warehouse:test")
            .await?
            .is_none()
    {
        app.outbox
            .set_endpoint_with_secret("warehouse:test", &demo_sim_url(), order_secret.clone())
            .await?;
    }
    if demo {
        super::demo::print_demo(&app, addr).await?;
        if let Some((order, event)) = &sim {
            let url = demo_sim_url();
            let listen = url
                .trim_start_matches("http://")
                .split('/')
                .next()
                .unwrap_or("127.0.0.1:9090")
                .to_string();
            println!(
                "Warehouse: sandbox orders go to {url}; start the simulator in another terminal:\n\n  cargo run -- dev warehouse-sim --listen {listen} --rxbridge http://{addr} --order-secret {order} --event-secret {event}\n"
            );
        }
    }
    tracing::info!(%addr, data_dir = %app.config.data_dir.display(), "rxbridge listening");
    match metrics.as_ref().map(|l| l.local_addr()).transpose()? {
        Some(m) => tracing::info!(metrics = %m, "metrics at http://{m}/metrics"),
        None => tracing::info!("metrics listener off"),
    }
    rxbridge::serve(app, listener, metrics, crate::signal::shutdown()).await?;
    Ok(())
}

/// Where `--demo` sends sandbox orders (`RXBRIDGE_DEMO_SIM_URL` overrides).
fn demo_sim_url() -> String {
    std::env::var("RXBRIDGE_DEMO_SIM_URL")
        .unwrap_or_else(|_| "http://127.0.0.1:9090/orders".to_string())
}

/// `--demo`: secrets for the local warehouse simulator, kept in `<data_dir>/demo-warehouse.json`
/// (0600); the inbound one is added to the config, and the simulator's origin (only it) is
/// exempt from the SSRF guard for sandbox deliveries.
fn demo_warehouse(config: &mut Config) -> anyhow::Result<(String, String)> {
    std::fs::create_dir_all(&config.data_dir)?;
    let path = config.data_dir.join("demo-warehouse.json");
    if !path.exists() {
        let v = serde_json::json!({
            "order_secret": rxbridge_app::outbox::generate_secret(),
            "event_secret": rxbridge_app::outbox::generate_secret(),
        });
        rxbridge::write_secret_file(&path, &v.to_string())?;
    }
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path)?)?;
    let order = v["order_secret"].as_str().unwrap_or_default().to_string();
    let event = v["event_secret"].as_str().unwrap_or_default().to_string();
    if !config
        .warehouse
        .inbound_secrets
        .iter()
        .any(|s| s.expose_secret() == event)
    {
        config.warehouse.inbound_secrets.push(event.clone().into());
    }
    let sim = demo_sim_url();
    tracing::warn!(
        simulator = %sim,
        "--demo: sandbox webhooks may reach the warehouse simulator's address (only it)"
    );
    config.webhooks.exempt_origin = Some(sim);
    Ok((order, event))
}
