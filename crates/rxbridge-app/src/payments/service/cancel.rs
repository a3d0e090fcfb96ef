//! Cancelling a prescription with its money: the cancellation (by the clinic, or by staff on
//! the patient's behalf), then its payment settled in the same call — an unpaid one cancelled,
//! a paid one refunded in full. A settlement that fails here is finished by the sweep.

use super::*;
use crate::intake::{Cancelled, IntakeError};
use crate::ports::Caller;

impl Payments {
    /// The clinic cancels (allowed until dispatch). Cancelling again answers the same and
    /// settles again, so a refund the first call could not make is retried.
    pub async fn cancel_by_clinic(
        &self,
        caller: &Caller,
        id: &str,
        reason: &str,
    ) -> Result<Cancelled, IntakeError> {
        let done = self.intake.cancel(caller, id, reason).await?;
        self.prescription_changed(id, &format!("clinic:{}", caller.clinic_id))
            .await;
        Ok(done)
    }

    /// A member of staff cancels on the patient's request.
    pub async fn cancel_by_staff(
        &self,
        staff_id: &str,
        mode: Mode,
        id: &str,
        reason: &str,
    ) -> Result<PrescriptionRecord, IntakeError> {
        let rec = self
            .intake
            .cancel_by_staff(staff_id, mode, id, reason)
            .await?;
        self.prescription_changed(id, &format!("staff:{staff_id}"))
            .await;
        Ok(rec)
    }
}
