//! `rxbridge dev …`: developer tools — the warehouse and EPS simulators, signing a prescription, the
//! command-line reference, synthetic data.

use super::prescriber_key;
use crate::cli::{self, DevCommand};
use anyhow::Context as _;
use rxbridge::{App, Config};

pub async fn run(config: Config, command: DevCommand) -> anyhow::Result<()> {
    match command {
        DevCommand::WarehouseSim {
            listen,
            rxbridge,
            order_secret,
            event_secret,
            mode,
            stock,
            delay_ms,
        } => {
            let listener = tokio::net::TcpListener::bind(&listen)
                .await
                .with_context(|| format!("binding {listen}"))?;
            println!(
                "warehouse simulator: orders at http://{}/orders",
                listener.local_addr()?
            );
            rxbridge::warehouse_sim::run(
                listener,
                rxbridge::warehouse_sim::SimConfig {
                    rxbridge: rxbridge.trim_end_matches('/').to_string(),
                    order_secret,
                    event_secret,
                    mode,
                    stock,
                    delay: std::time::Duration::from_millis(delay_ms),
                },
                crate::signal::shutdown(),
            )
            .await?;
        }
        DevCommand::EpsSim {
            listen,
            public_key,
            key_id,
            api_key,
            token_ttl,
        } => eps_sim(&listen, &public_key, key_id, api_key, token_ttl).await?,
        DevCommand::Sign {
            private_key,
            kid,
            alg,
            file,
        } => prescriber_key::sign(&private_key, &kid, &alg, &file)?,
        DevCommand::CliReference => print!("{}", cli::reference_markdown()),
        DevCommand::Seed {
            clinic,
            count,
            patients,
            hot_patient,
            mode,
        } => {
            let app = App::open_for_bulk_load(config)?;
            let clinic_id = match clinic {
                Some(c) => c,
                None => {
                    let c = app.state.clinics.add("Seed Clinic").await?;
                    println!("{}", serde_json::to_string(&c)?);
                    c.clinic_id
                }
            };
            let started = std::time::Instant::now();
            let n =
                rxbridge::seed::seed(&app, &clinic_id, mode, count, patients, hot_patient).await?;
            let secs = started.elapsed().as_secs_f64();
            eprintln!(
                "seeded {n} prescriptions in {secs:.1} s ({:.0}/s)",
                n as f64 / secs
            );
            app.store.close();
        }
    }
    Ok(())
}

async fn eps_sim(
    listen: &str,
    public_key: &std::path::Path,
    key_id: String,
    api_key: String,
    token_ttl: u64,
) -> anyhow::Result<()> {
    let public_key_pem = std::fs::read_to_string(public_key)
        .with_context(|| format!("reading {}", public_key.display()))?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    let base = format!("http://{}", listener.local_addr()?);
    let sim = rxbridge_eps::sim::EpsSim::new(rxbridge_eps::sim::SimConfig {
        public_key_pem,
        key_id,
        api_key,
        token_url: format!("{base}/oauth2/token"),
        token_ttl: std::time::Duration::from_secs(token_ttl),
    })
    .map_err(anyhow::Error::msg)?;
    println!("EPS stand-in: API at {base}, token endpoint {base}/oauth2/token");
    rxbridge_eps::sim::run(listener, sim, crate::signal::shutdown()).await?;
    Ok(())
}
