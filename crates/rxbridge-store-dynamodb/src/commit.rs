//! The `commit` unit of work on DynamoDB: one transaction of every item a change writes.

use crate::items::{self, Get, Role, key, n, parse_rx, rx_pk, s, work_pk};
use crate::rx_items::*;
use crate::{DynamoStore, Tx, unexpected};
use rxbridge_app::payments::{Change, PaymentWrite};
use rxbridge_app::ports::*;
use rxbridge_app::state::Binding;

impl DynamoStore {
    /// The items of one `commit`: reads what it needs (each re-checked in the transaction) and
    /// fails early, without writing, when a version or a unique item already says no.
    pub(crate) async fn build_commit(
        &self,
        change: &Change,
        first_seq: i64,
    ) -> Result<(Tx, Option<PrescriptionRecord>), StoreError> {
        let t = self.table.as_str();
        let mut tx = Tx::default();
        // When the change happens: its first event's time.
        let at = change
            .events
            .first()
            .map_or_else(jiff::Timestamp::now, |e| e.at);
        if let Some((source, id)) = &change.dedupe {
            if self.seen(source, id).await? {
                return Err(StoreError::Duplicate);
            }
            tx.push(
                items::put(
                    t,
                    seen_item(source, id, at),
                    Some("attribute_not_exists(#pk)"),
                )?,
                Role::Duplicate,
            );
        }
        // The prescription the change moves, as it is now.
        let moving = match &change.transition {
            Some(tr) => Some((tr, self.rx_item(&tr.id).await?.ok_or(StoreError::NotFound)?)),
            None => None,
        };
        // Every row this change writes names its first event, and that event binds them all.
        let mut binding = Binding::default();
        let mut payment_rx: Option<&str> = None;
        if let Some(w) = &change.payment {
            let p = match w {
                PaymentWrite::Insert(p) | PaymentWrite::Update(p) => p,
            };
            payment_rx = Some(&p.prescription_id);
            let mut bound = p.clone();
            bound.event_seq = first_seq;
            binding.payment(&bound);
            let p = &bound;
            // The prescription's status after this change decides whether the sweep sees it.
            let rx_status = match &moving {
                Some((tr, _)) if tr.id == p.prescription_id => tr.to,
                _ => {
                    let item = self
                        .rx_item(&p.prescription_id)
                        .await?
                        .ok_or(StoreError::NotFound)?;
                    let (_, rec) = parse_rx(&item)?;
                    tx.push(
                        items::check(
                            t,
                            key(rx_pk(&rec.id), "RX"),
                            "#version = :v",
                            [(":v", n(rec.version))],
                        )?,
                        Role::Recheck,
                    );
                    rec.status
                }
            };
            let (old_session, old_ref) = match w {
                PaymentWrite::Insert(_) => {
                    let ptr = format!("PAYRX#{}", p.prescription_id);
                    if self.get(&ptr, "PAYRX").await?.is_some() {
                        return Err(StoreError::Duplicate);
                    }
                    tx.push(
                        items::put(
                            t,
                            payment_item(p, rx_status)?,
                            Some("attribute_not_exists(#pk)"),
                        )?,
                        Role::Duplicate,
                    );
                    tx.push(
                        items::put(
                            t,
                            items::item(ptr, "PAYRX", vec![("payment_id", s(&p.id))]),
                            Some("attribute_not_exists(#pk)"),
                        )?,
                        Role::Duplicate,
                    );
                    (None, None)
                }
                PaymentWrite::Update(_) => {
                    let cur = self
                        .payment_item_of(&p.id)
                        .await?
                        .ok_or(StoreError::NotFound)?;
                    let cur = parse_payment(&cur)?;
                    if cur.version != p.version - 1 {
                        return Err(StoreError::Conflict);
                    }
                    tx.push(
                        items::put_if(
                            t,
                            payment_item(p, rx_status)?,
                            "#version = :v",
                            [(":v", n(p.version - 1))],
                        )?,
                        Role::Conflict,
                    );
                    (cur.session_id, cur.payment_ref)
                }
            };
            for (kind, old, new) in [
                ("PAYSESS", old_session, &p.session_id),
                ("PAYREF", old_ref, &p.payment_ref),
            ] {
                if old.as_ref() == new.as_ref() {
                    continue;
                }
                if let Some(o) = old {
                    tx.push(
                        items::delete(t, key(format!("{kind}#{o}"), kind))?,
                        Role::Other,
                    );
                }
                if let Some(v) = new {
                    tx.push(
                        items::put(
                            t,
                            items::item(
                                format!("{kind}#{v}"),
                                kind,
                                vec![("payment_id", s(&p.id))],
                            ),
                            None,
                        )?,
                        Role::Other,
                    );
                }
            }
        }
        let mut out = None;
        if moving.is_none() && change.nhs_exemption.is_some() {
            return Err(unexpected(
                "an exemption state needs the prescription's transition",
            ));
        }
        if let Some((tr, item)) = moving {
            let (seq, mut rec) = parse_rx(&item)?;
            if rec.version != tr.expected_version {
                return Err(StoreError::Conflict);
            }
            let mut set = String::from(
                "SET #status = :to, #version = :nv, #updated_at = :at, #gsi2pk = :w, #event_seq = :es",
            );
            let mut values = vec![
                (":to", s(tr.to.as_str())),
                (":nv", n(rec.version + 1)),
                (":at", s(at.to_string())),
                (":w", s(work_pk(rec.mode, tr.to))),
                (":v", n(rec.version)),
                (":es", n(first_seq)),
            ];
            if let Some(e) = &change.nhs_exemption {
                set.push_str(", #nhs_exemption = :ne");
                values.push((":ne", s(serde_json::to_string(e).map_err(unexpected)?)));
                rec.nhs_exemption = Some(e.clone());
            }
            tx.push(
                items::update(
                    t,
                    key(rx_pk(&rec.id), "RX"),
                    &set,
                    Some("#version = :v"),
                    values,
                )?,
                Role::Conflict,
            );
            for pk in Get(&item).list_s("hist") {
                tx.push(
                    items::update(
                        t,
                        key(pk, pat_sk(seq, &rec.id)),
                        "SET #status = :to",
                        Some("attribute_exists(#pk)"),
                        [(":to", s(tr.to.as_str()))],
                    )?,
                    Role::Other,
                );
            }
            // A paid prescription that will not be supplied: its payment joins the sweep's list.
            if tr.to.ended_unsupplied()
                && payment_rx != Some(rec.id.as_str())
                && let Some(ptr) = self.get(&format!("PAYRX#{}", rec.id), "PAYRX").await?
                && let Some(pi) = self.payment_item_of(&Get(&ptr).s("payment_id")?).await?
            {
                let p = parse_payment(&pi)?;
                if needs_attention(p.status, tr.to) {
                    tx.push(
                        items::update(
                            t,
                            key(pay_pk(&p.id), "PAY"),
                            "SET #gsi2pk = :a, #gsi2sk = :k",
                            Some("#version = :v"),
                            [
                                (":a", s("PAYATTN")),
                                (":k", s(attention_sk(&p))),
                                (":v", n(p.version)),
                            ],
                        )?,
                        Role::Recheck,
                    );
                }
            }
            rec.status = tr.to;
            rec.version += 1;
            rec.updated_at = at;
            rec.event_seq = first_seq;
            binding.prescription(&rec);
            out = Some(rec);
        }
        crate::fulfilment::add_messages(t, &mut tx, &change.outbox, first_seq)?;
        for m in &change.outbox {
            binding.message(m);
        }
        for e in crate::fulfilment::add_register_entries(self, &mut tx, &change.register, first_seq)
            .await?
        {
            binding.entry(&e);
        }
        tx.events = change.events.clone();
        match tx.events.first_mut() {
            Some(first) => binding.apply(first),
            None if binding.is_empty() => {}
            None => {
                return Err(unexpected(
                    "a change that writes state needs an event to bind it",
                ));
            }
        }
        Ok((tx, out))
    }
}
