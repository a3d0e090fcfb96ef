//! What the warehouse reports, as typed values: its adapter parses the wire format into these
//! and the use case decides what each means for the order and the registers.

use crate::ports::Mode;
use rxbridge_domain::lifecycle::{Status, TransitionError};

/// One event from the warehouse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WarehouseEvent {
    /// Stock arrived from a supplier (a CD register receipt for Schedule 2 products).
    StockReceived(StockReceipt),
    /// Something happened to one order.
    Order { order_id: String, event: OrderEvent },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StockReceipt {
    /// A formulary product code (checked by the use case).
    pub product_code: String,
    pub supplier: String,
    pub supplier_address: Option<String>,
    pub invoice_ref: String,
    /// 1 to 1 000 000 units.
    pub quantity: i64,
    pub mode: Mode,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderEvent {
    Picked,
    Dispatched {
        carrier: String,
        tracking_number: String,
    },
    Delivered {
        received_by: String,
        recipient: Recipient,
        /// Whether proof of identity was asked for and shown; `None` when not recorded.
        id_checked: Option<bool>,
    },
    DeliveryFailed {
        reason: String,
    },
    Returned {
        reason: String,
    },
}

impl OrderEvent {
    /// The order's status after this event, or why its status does not allow it.
    pub fn next_status(&self, from: Status) -> Result<Status, TransitionError> {
        match self {
            OrderEvent::Picked => from.picked(),
            OrderEvent::Dispatched { .. } => from.dispatch(),
            OrderEvent::Delivered { .. } => from.deliver(),
            OrderEvent::DeliveryFailed { .. } => from.delivery_failed(),
            OrderEvent::Returned { .. } => from.returned(),
        }
    }
}

/// Who took the parcel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recipient {
    Patient,
    Representative,
    HealthcareProfessional,
}

impl Recipient {
    pub const ALL: [Recipient; 3] = [
        Recipient::Patient,
        Recipient::Representative,
        Recipient::HealthcareProfessional,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Recipient::Patient => "patient",
            Recipient::Representative => "representative",
            Recipient::HealthcareProfessional => "healthcare_professional",
        }
    }

    pub fn parse(s: &str) -> Option<Recipient> {
        Recipient::ALL.into_iter().find(|r| r.as_str() == s)
    }
}
