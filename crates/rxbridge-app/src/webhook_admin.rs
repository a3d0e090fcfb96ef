//! Webhook administration by staff: an endpoint set (its new signing secret shown once) or its
//! secret rotated, dead letters replayed. Every change is audited with the staff member as
//! actor.

use crate::clock::Clock;
use crate::outbox::{Endpoint, MessageStatus, Outbox, OutboxMessage, parse_destination};
use crate::ports::{Store, StoreError};
use crate::staff::StaffSession;
use crate::staff_view::StaffAudit;
use std::sync::Arc;

/// How many dead letters the overview lists at most.
pub const DEAD_SHOWN: u32 = 200;

#[derive(Debug, thiserror::Error)]
pub enum WebhookAdminError {
    #[error(
        "Destination must be warehouse:test, warehouse:live or clinic:<an existing clinic id>:<test|live>."
    )]
    BadDestination,
    #[error("URL refused: {0}")]
    UrlRefused(String),
    #[error("No endpoint for that destination.")]
    NoEndpoint,
    #[error(transparent)]
    Store(StoreError),
}

/// The endpoints and the dead letters, for the admin page.
#[derive(Debug, Clone)]
pub struct WebhooksOverview {
    pub endpoints: Vec<Endpoint>,
    pub dead: Vec<OutboxMessage>,
}

pub struct WebhookAdmin {
    outbox: Arc<Outbox>,
    store: Arc<dyn Store>,
    audit: StaffAudit,
}

impl WebhookAdmin {
    pub fn new(outbox: Arc<Outbox>, store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Self {
        Self {
            outbox,
            audit: StaffAudit {
                store: store.clone(),
                clock,
            },
            store,
        }
    }

    pub async fn overview(&self) -> Result<WebhooksOverview, StoreError> {
        Ok(WebhooksOverview {
            endpoints: self.outbox.store().endpoints().await?,
            dead: self
                .outbox
                .store()
                .messages(MessageStatus::Dead, DEAD_SHOWN)
                .await?,
        })
    }

    /// `action` `rotate` gives `destination` a new secret; any other sets its `url` once
    /// `url_check` (the front door's outbound policy) accepts it. The new secret is returned;
    /// the audit event keeps the action as given.
    pub async fn change(
        &self,
        s: &StaffSession,
        destination: &str,
        action: Option<&str>,
        url: &str,
        url_check: &(dyn Fn(&str, &str) -> Result<(), String> + Send + Sync),
    ) -> Result<String, WebhookAdminError> {
        let valid = match parse_destination(destination) {
            Ok(None) => true,
            Ok(Some(id)) => matches!(self.store.get_clinic(id).await, Ok(Some(_))),
            Err(_) => false,
        };
        if !valid {
            return Err(WebhookAdminError::BadDestination);
        }
        let secret = if action == Some("rotate") {
            self.outbox.rotate_secret(destination).await
        } else {
            url_check(destination, url).map_err(WebhookAdminError::UrlRefused)?;
            self.outbox
                .set_endpoint(destination, url)
                .await
                .map(|(_, secret)| secret)
        }
        .map_err(|e| match e {
            StoreError::NotFound => WebhookAdminError::NoEndpoint,
            e => WebhookAdminError::Store(e),
        })?;
        let subject = format!("endpoint:{destination}");
        self.audit
            .record(
                s,
                "webhook.endpoint_changed",
                &subject,
                serde_json::json!({ "action": action }),
            )
            .await
            .map_err(WebhookAdminError::Store)?;
        Ok(secret)
    }

    /// Dead letters back in the queue: the ones named, or all of them (`None`).
    pub async fn replay(
        &self,
        s: &StaffSession,
        ids: Option<Vec<String>>,
    ) -> Result<u64, StoreError> {
        let n = self.outbox.replay(ids).await?;
        self.audit
            .record(
                s,
                "webhook.replayed",
                "outbox",
                serde_json::json!({ "messages": n }),
            )
            .await?;
        Ok(n)
    }
}
