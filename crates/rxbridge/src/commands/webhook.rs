//! `rxbridge webhook set|rotate-secret|list|new-secret`: webhook endpoints and their signing
//! secrets.

use crate::cli::WebhookCommand;
use rxbridge::{App, Config};

pub async fn run(config: Config, command: WebhookCommand) -> anyhow::Result<()> {
    super::with_app(config, async |app| webhook(app, command).await).await
}

async fn webhook(app: &App, command: WebhookCommand) -> anyhow::Result<()> {
    match command {
        WebhookCommand::Set {
            destination,
            url,
            json,
        } => {
            check_destination(app, &destination).await?;
            rxbridge::webhooks::check_url(
                &url,
                &rxbridge::webhooks::UrlPolicy::from_settings(&app.config.webhooks),
                rxbridge::webhooks::is_sandbox(&destination),
            )
            .map_err(|e| anyhow::anyhow!("--url: {e}"))?;
            let (e, secret) = app.outbox.set_endpoint(&destination, &url).await?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({ "endpoint_id": e.id, "destination": destination, "url": url, "secret": secret })
                );
            } else {
                println!(
                    "endpoint {} for {destination} → {url}\nsigning secret: {secret}\nShown once: give it to the receiver to verify webhook-signature.",
                    e.id
                );
            }
        }
        WebhookCommand::RotateSecret { destination } => {
            let secret = app
                .outbox
                .rotate_secret(&destination)
                .await
                .map_err(|e| match e {
                    rxbridge_app::StoreError::NotFound => {
                        anyhow::anyhow!("no endpoint for {destination}")
                    }
                    e => e.into(),
                })?;
            println!(
                "new signing secret for {destination}: {secret}\nThe previous secret signs beside it until the next rotation."
            );
        }
        WebhookCommand::List => {
            for e in app.outbox.store().endpoints().await? {
                println!(
                    "{}\t{}\t{}\t{}",
                    e.destination,
                    e.url,
                    if e.enabled { "enabled" } else { "DISABLED" },
                    e.disabled_reason.unwrap_or_default()
                );
            }
        }
        WebhookCommand::NewSecret => println!("{}", rxbridge_app::outbox::generate_secret()),
    }
    Ok(())
}

async fn check_destination(app: &App, d: &str) -> anyhow::Result<()> {
    match rxbridge_app::outbox::parse_destination(d) {
        Ok(None) => Ok(()),
        Ok(Some(id)) => {
            if app.state.store.get_clinic(id).await?.is_none() {
                anyhow::bail!("--destination: no clinic {id}");
            }
            Ok(())
        }
        Err(why) => anyhow::bail!("--destination: {why}"),
    }
}
