//! The fulfilment use case's state: its ports and settings, and the helpers every step uses
//! (events, sealed register particulars, checked register balances).

use super::model::FulfilmentConfig;
use crate::PatientVault;
use crate::clock::Clock;
use crate::events::NewEvent;
use crate::outbox::OutboxStore;
use crate::payments::{Change, Notifier, Payments};
use crate::ports::{Store, StoreError};
use crate::registers::{NewEntry, Particulars, Register, RegisterStore};
use crate::state::StateGuard;
use serde_json::Value;
use std::sync::Arc;

pub struct Fulfilment {
    pub(super) store: Arc<dyn Store>,
    pub(super) registers: Arc<dyn RegisterStore>,
    pub(super) outbox: Arc<dyn OutboxStore>,
    pub(super) vault: PatientVault,
    pub(super) payments: Arc<Payments>,
    pub(super) notifier: Arc<dyn Notifier>,
    pub(super) clock: Arc<dyn Clock>,
    pub(super) cfg: FulfilmentConfig,
}

impl Fulfilment {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Arc<dyn Store>,
        registers: Arc<dyn RegisterStore>,
        outbox: Arc<dyn OutboxStore>,
        vault: PatientVault,
        payments: Arc<Payments>,
        notifier: Arc<dyn Notifier>,
        clock: Arc<dyn Clock>,
        cfg: FulfilmentConfig,
    ) -> Self {
        Self {
            store,
            registers,
            outbox,
            vault,
            payments,
            notifier,
            clock,
            cfg,
        }
    }

    pub(super) fn event(&self, kind: &str, actor: &str, subject: &str, detail: Value) -> NewEvent {
        NewEvent::new(self.clock.now(), kind, actor, subject, detail)
    }

    pub(super) fn seal(
        &self,
        register: Register,
        section: &str,
        at: jiff::Timestamp,
        p: &Particulars,
    ) -> Vec<u8> {
        self.vault.seal(
            &NewEntry::seal_context(register, section, at),
            &serde_json::to_vec(p).expect("particulars serialise"),
        )
    }

    pub fn open_particulars(&self, e: &NewEntry) -> anyhow::Result<Particulars> {
        let bytes = self.vault.open(
            &NewEntry::seal_context(e.register, &e.section, e.at),
            &e.sealed,
        )?;
        Ok(serde_json::from_slice(&bytes)?)
    }

    /// A section's balance, read from its last entry once that entry is checked against the
    /// event that recorded it.
    pub(super) async fn checked_balance(
        &self,
        register: Register,
        section: &str,
        action: &str,
    ) -> Result<i64, StoreError> {
        match self
            .registers
            .last_register_entry(register, section)
            .await?
        {
            Some(e) => {
                StateGuard::new(self.store.as_ref())
                    .entry(&e, action)
                    .await?;
                Ok(e.balance_after)
            }
            None => Ok(0),
        }
    }

    /// Check the last entry of every register section `change` appends to.
    pub(super) async fn guard_sections(
        &self,
        change: &Change,
        action: &str,
    ) -> Result<(), StoreError> {
        let mut seen = std::collections::HashSet::new();
        for e in &change.register {
            if seen.insert((e.register, e.section.as_str())) {
                self.checked_balance(e.register, &e.section, action).await?;
            }
        }
        Ok(())
    }
}
