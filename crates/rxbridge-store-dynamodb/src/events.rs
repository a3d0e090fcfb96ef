//! The event-log port on DynamoDB: appends and reads of the `EVT` partition and the subject
//! GSI.

use crate::items::{self, pad};
use crate::{DynamoStore, Query, Tx};
use async_trait::async_trait;
use rxbridge_app::events::{EventRecord, NewEvent};
use rxbridge_app::ports::*;

#[async_trait]
impl EventLog for DynamoStore {
    async fn record_event(&self, event: NewEvent) -> Result<(), StoreError> {
        self.write(|_| {
            let event = &event;
            async move {
                Ok((
                    Tx {
                        ops: vec![],
                        events: vec![event.clone()],
                    },
                    (),
                ))
            }
        })
        .await
    }

    async fn timeline(&self, subject: &str) -> Result<Vec<EventRecord>, StoreError> {
        let rows = self
            .query(Query::partition(Some("gsi1"), format!("SUBJ#{subject}")))
            .await?;
        rows.iter().map(items::parse_event).collect()
    }

    async fn events_after(&self, after: i64, limit: u32) -> Result<Vec<EventRecord>, StoreError> {
        let rows = self
            .query(
                Query::partition(None, "EVT")
                    .sort(">", pad(after))
                    .limit(limit as usize),
            )
            .await?;
        rows.iter().map(items::parse_event).collect()
    }
}
