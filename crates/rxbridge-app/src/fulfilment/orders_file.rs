//! The ERP orders file for warehouses that import files instead of receiving webhooks.

use super::service::Fulfilment;
use crate::finance::Report;
use crate::outbox;
use crate::ports::{Mode, StoreError};
use jiff::civil::Date;
use serde_json::json;

impl Fulfilment {
    /// The ERP file for warehouses that import files: every order released to the warehouse
    /// on `date` (London), one row per line, in release order. Same date, same file.
    pub async fn orders_file(
        &self,
        mode: Mode,
        date: Date,
        actor: &str,
    ) -> Result<Report, StoreError> {
        let tz = rxbridge_domain::dates::london().clone();
        let from = date
            .to_zoned_datetime(tz.clone())
            .map_err(|e| StoreError::Unexpected(e.into()))?
            .timestamp();
        let to = date
            .saturating_add(jiff::Span::new().days(1))
            .to_zoned_datetime(tz)
            .map_err(|e| StoreError::Unexpected(e.into()))?
            .timestamp();
        let messages = self
            .outbox
            .messages_between(
                "fulfilment.requested",
                &outbox::warehouse_destination(mode),
                from,
                to,
            )
            .await?;
        let mut rows = Vec::new();
        for m in &messages {
            // Opened as the file is rendered; the file goes to the caller, not to disk.
            let payload = crate::outbox::sealed::open_body(&self.vault, &m.message)
                .map_err(|e| StoreError::Unexpected(e.into()))?;
            let d = &payload["data"];
            let to = &d["deliver_to"];
            for l in d["lines"].as_array().into_iter().flatten() {
                rows.push(vec![
                    d["order_id"].as_str().unwrap_or_default().to_string(),
                    m.message.created_at.to_string(),
                    l["line"].to_string(),
                    l["sku"].as_str().unwrap_or_default().to_string(),
                    l["description"].as_str().unwrap_or_default().to_string(),
                    l["quantity"].to_string(),
                    l["controlled_drug"].to_string(),
                    d["service"].as_str().unwrap_or_default().to_string(),
                    to["name"].as_str().unwrap_or_default().to_string(),
                    to["address_lines"]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(|x| x.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        })
                        .unwrap_or_default(),
                    to["town"].as_str().unwrap_or_default().to_string(),
                    to["postcode"].as_str().unwrap_or_default().to_string(),
                ]);
            }
        }
        self.store
            .record_event(self.event(
                "export.generated",
                actor,
                &format!("export:orders:{date}"),
                json!({ "export": "orders", "date": date.to_string(), "mode": mode.as_str(), "rows": rows.len() }),
            ))
            .await?;
        Ok(Report {
            kind: crate::finance::ExportKind::Payments,
            month: date.to_string(),
            title: "Released orders".into(),
            header: vec![
                ("Date".into(), date.to_string()),
                ("Data".into(), mode.as_str().into()),
            ],
            columns: [
                "order_id",
                "released_at",
                "line",
                "sku",
                "description",
                "quantity",
                "controlled_drug",
                "service",
                "deliver_to_name",
                "address",
                "town",
                "postcode",
            ]
            .map(String::from)
            .to_vec(),
            totals: vec![
                ("Orders".into(), messages.len().to_string()),
                ("Lines".into(), rows.len().to_string()),
            ],
            rows,
            differences: Vec::new(),
        })
    }
}
