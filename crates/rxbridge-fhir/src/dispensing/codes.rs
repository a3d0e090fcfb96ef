//! The coded values of the dispensing messages, as the dispensing specification lists them.

use super::types::Coding;

pub const RFC4122: &str = "https://tools.ietf.org/html/rfc4122";
pub const ODS: &str = "https://fhir.nhs.uk/Id/ods-organization-code";
pub const NHS_NUMBER: &str = "https://fhir.nhs.uk/Id/nhs-number";
pub const SHORT_FORM_ID: &str = "https://fhir.nhs.uk/Id/prescription-order-number";
pub const LONG_FORM_ID: &str = "https://fhir.nhs.uk/Id/prescription";
pub const LONG_FORM_ID_EXT: &str =
    "https://fhir.nhs.uk/StructureDefinition/Extension-DM-PrescriptionId";
pub const LINE_ITEM_ID: &str = "https://fhir.nhs.uk/Id/prescription-order-item-number";
pub const DISPENSE_ITEM_ID: &str = "https://fhir.nhs.uk/Id/prescription-dispense-item-number";
pub const SDS_ROLE_PROFILE: &str = "https://fhir.nhs.uk/Id/sds-role-profile-id";
pub const SDS_USER: &str = "https://fhir.nhs.uk/Id/sds-user-id";
pub const SDS_JOB_ROLE: &str = "https://fhir.nhs.uk/CodeSystem/NHSDigital-SDS-JobRoleCode";
pub const ORG_ROLE: &str = "https://fhir.nhs.uk/CodeSystem/organisation-role";
pub const SNOMED: &str = "http://snomed.info/sct";
pub const BUSINESS_STATUS_EXT: &str =
    "https://fhir.nhs.uk/StructureDefinition/Extension-EPS-TaskBusinessStatus";
pub const BUSINESS_STATUS: &str = "https://fhir.nhs.uk/CodeSystem/EPS-task-business-status";
pub const DISPENSE_TYPE: &str = "https://fhir.nhs.uk/CodeSystem/medicationdispense-type";
pub const NOT_DISPENSED_REASON: &str =
    "https://fhir.nhs.uk/CodeSystem/medicationdispense-status-reason";
pub const NON_DISPENSING_EXT: &str =
    "https://fhir.nhs.uk/StructureDefinition/Extension-DM-PrescriptionNonDispensingReason";
pub const RETURN_REASON: &str =
    "https://fhir.nhs.uk/CodeSystem/EPS-task-dispense-return-status-reason";
pub const WITHDRAW_REASON: &str =
    "https://fhir.nhs.uk/CodeSystem/EPS-task-dispense-withdraw-reason";
pub const TASK_CODE: &str = "http://hl7.org/fhir/CodeSystem/task-code";
pub const EXEMPTION: &str = "https://fhir.nhs.uk/CodeSystem/prescription-charge-exemption";
pub const EXEMPTION_EVIDENCE: &str = "https://fhir.nhs.uk/CodeSystem/DM-exemption-evidence";
pub const CHARGE: &str = "https://fhir.nhs.uk/CodeSystem/DM-prescription-charge";
pub const ENDORSEMENT: &str = "https://fhir.nhs.uk/CodeSystem/medicationdispense-endorsement";
pub const REIMBURSEMENT_EXT: &str =
    "https://fhir.nhs.uk/StructureDefinition/Extension-ODS-OrganisationRelationships";

macro_rules! code_set {
    ($(#[$doc:meta])* $name:ident, $system:expr, { $($variant:ident = $code:literal, $display:literal;)+ }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub fn code(self) -> &'static str {
                match self { $($name::$variant => $code),+ }
            }
            pub fn display(self) -> &'static str {
                match self { $($name::$variant => $display),+ }
            }
            pub fn from_code(code: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|v| v.code() == code)
            }
            pub fn coding(self) -> Coding {
                Coding::new($system, self.code(), Some(self.display()))
            }
        }
    };
}

code_set!(
    /// The status of one line item (`medicationdispense-type`).
    LineStatus, DISPENSE_TYPE, {
    FullyDispensed = "0001", "Item fully dispensed";
    NotDispensed = "0002", "Item not dispensed";
    PartiallyDispensed = "0003", "Item dispensed - partial";
    NotDispensedOwing = "0004", "Item not dispensed owing";
    Cancelled = "0005", "Item cancelled";
    Expired = "0006", "Expired";
    ToBeDispensed = "0007", "Item to be dispensed";
    WithDispenser = "0008", "Item with dispenser";
});

code_set!(
    /// The status of the whole prescription a dispense notification declares
    /// (`EPS-task-business-status`, the values the notification may send).
    PrescriptionStatus, BUSINESS_STATUS, {
    WithDispenserActive = "0003", "With Dispenser - Active";
    Dispensed = "0006", "Dispensed";
    NotDispensed = "0007", "Not Dispensed";
});

code_set!(
    /// Why an item was not dispensed (`medicationdispense-status-reason`).
    NotDispensedReason, NOT_DISPENSED_REASON, {
    NotRequiredPatient = "0001", "Not required as instructed by the patient";
    ClinicallyUnsuitable = "0002", "Clinically unsuitable";
    OwingsNote = "0003", "Owings note issued to patient";
    PrescriptionCancellation = "0004", "Prescription cancellation";
    CancellationDueToDeath = "0005", "Prescription cancellation due to death";
    IllegalNhsPrescription = "0006", "Illegal NHS prescription";
    OutOfScope = "0007", "Prescribed out of scope item";
    Expired = "0008", "Item or prescription expired";
    NotAllowedOnFp10 = "0009", "Not allowed on FP10";
    NotCollected = "0010", "Patient did not collect medication";
    BoughtOverTheCounter = "0011", "Patient purchased medication over the counter";
});

code_set!(
    /// Why a released prescription is returned to EPS (`EPS-task-dispense-return-status-reason`;
    /// the NHS's value set as its EPS reference client lists it).
    ReturnReason, RETURN_REASON, {
    PatientNonAttendance = "0001", "Patient non-attendance";
    UnableToDispense = "0002", "Unable to dispense medication on prescriptions";
    PatientRequestedRelease = "0003", "Patient requested release";
    AnotherDispenserRequested = "0004", "Another dispenser requested release on behalf of the patient";
    InvalidDigitalSignature = "0005", "Invalid digital signature";
    VersionProblem = "0006", "Rejected due to version problem";
    InvalidOrUnreadable = "0007", "Prescription otherwise invalid or unreadable";
    Expired = "0008", "Prescription expired";
});

code_set!(
    /// Why a dispense notification is withdrawn (`EPS-task-dispense-withdraw-reason`).
    WithdrawReason, WITHDRAW_REASON, {
    QuantityUpdate = "QU", "Quantity Update";
    MedicationUpdated = "MU", "Medication Updated";
    DosageAmendments = "DA", "Dosage Amendments";
    PatientDetailAmendments = "PA", "Patient Detail Amendments";
    OtherClinical = "OC", "Other Clinical";
    OtherNonClinical = "ONC", "Other Non-Clinical";
});

code_set!(
    /// What the patient paid for an item (`DM-prescription-charge`).
    Charge, CHARGE, {
    NotPaid = "not-paid", "Not Paid";
    PaidOnce = "paid-once", "Paid Once";
    PaidTwice = "paid-twice", "Paid Twice";
});

/// The endorsement code for an item with no endorsement.
pub fn no_endorsement() -> Coding {
    Coding::new(ENDORSEMENT, "NDEC", Some("No Dispenser Endorsement Code"))
}
