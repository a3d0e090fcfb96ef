//! `rxbridge dev …`: developer tools — the warehouse simulator, signing a prescription, the
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
