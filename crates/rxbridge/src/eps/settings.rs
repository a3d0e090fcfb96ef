//! The `[eps]` settings: where the EPS dispensing API is, who the application and the pharmacy
//! are, which clinic released prescriptions are recorded under, and how often to release and
//! claim. EPS is off until `base_url` is set.

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use std::path::PathBuf;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EpsSettings {
    /// `RXBRIDGE_EPS_BASE_URL`: the dispensing API, e.g.
    /// `https://int.api.service.nhs.uk/fhir-dispensing` (integration) or a stand-in. Unset: EPS
    /// is off, and EPS messages are kept as `no_endpoint`.
    pub base_url: Option<String>,
    /// The NHS API platform's token endpoint, e.g. `https://int.api.service.nhs.uk/oauth2/token`.
    pub token_url: Option<String>,
    /// `RXBRIDGE_EPS_API_KEY`: the application's API key (the client assertion's `iss` and `sub`).
    pub api_key: Option<SecretString>,
    /// The `kid` of the public key registered with the platform.
    pub key_id: String,
    /// `RXBRIDGE_EPS_PRIVATE_KEY_FILE`: the application's RSA private key (PEM), owner-only.
    pub private_key_file: Option<PathBuf>,
    /// `live` against the NHS service; `test` against a stand-in (released prescriptions are
    /// then sandbox data).
    pub mode: String,
    /// The clinic released prescriptions are recorded under (an existing clinic id).
    pub clinic_id: Option<String>,
    /// A dm+d table in `GET /v1/formulary`'s format (each code with its source) used instead of
    /// the one in the binary, for both FHIR doors.
    pub dmd_table: Option<PathBuf>,
    /// How often `serve` releases the pharmacy's nominated prescriptions (0: never; run
    /// `rxbridge eps release`).
    pub release_interval_secs: u64,
    /// How often `serve` queues the claims of the month just ended (idempotent; 0: never; run
    /// `rxbridge eps claim`).
    pub claim_interval_secs: u64,
    /// The pharmacy as EPS knows it.
    pub ods_code: String,
    pub address_lines: Vec<String>,
    pub city: String,
    pub postcode: String,
    pub phone: String,
    /// ODS code of the commissioner that reimburses the pharmacy (NHSBSA: `T1450`).
    pub reimbursement_authority: String,
    /// The person or system acting for the pharmacy (an SDS role profile).
    pub agent_role_profile_id: String,
    pub agent_user_id: String,
    pub agent_name: String,
    pub agent_job_role_code: String,
}

impl Default for EpsSettings {
    fn default() -> Self {
        Self {
            base_url: None,
            token_url: None,
            api_key: None,
            key_id: String::new(),
            private_key_file: None,
            mode: "live".into(),
            clinic_id: None,
            dmd_table: None,
            release_interval_secs: 300,
            claim_interval_secs: 3600,
            ods_code: String::new(),
            address_lines: Vec::new(),
            city: String::new(),
            postcode: String::new(),
            phone: String::new(),
            reimbursement_authority: "T1450".into(),
            agent_role_profile_id: String::new(),
            agent_user_id: String::new(),
            agent_name: String::new(),
            agent_job_role_code: "R8000".into(),
        }
    }
}

impl EpsSettings {
    pub fn enabled(&self) -> bool {
        self.base_url
            .as_deref()
            .is_some_and(|u| !u.trim().is_empty())
    }

    /// Every setting EPS needs, when it is on; an error names the first one missing.
    pub fn validate(&self) -> anyhow::Result<()> {
        if !self.enabled() {
            return Ok(());
        }
        if !matches!(self.mode.as_str(), "live" | "test") {
            anyhow::bail!("eps.mode must be live or test, got {:?}", self.mode);
        }
        let missing = [
            ("eps.token_url", self.token_url.as_deref().unwrap_or("")),
            (
                "eps.api_key (RXBRIDGE_EPS_API_KEY)",
                self.api_key.as_ref().map_or("", |k| k.expose_secret()),
            ),
            ("eps.key_id", &self.key_id),
            ("eps.clinic_id", self.clinic_id.as_deref().unwrap_or("")),
            ("eps.ods_code", &self.ods_code),
            ("eps.postcode", &self.postcode),
            ("eps.agent_role_profile_id", &self.agent_role_profile_id),
            ("eps.agent_user_id", &self.agent_user_id),
        ]
        .into_iter()
        .find(|(_, v)| v.trim().is_empty());
        if let Some((name, _)) = missing {
            anyhow::bail!("EPS is on (eps.base_url is set) but {name} is not set");
        }
        if self.private_key_file.is_none() {
            anyhow::bail!(
                "EPS is on (eps.base_url is set) but eps.private_key_file (RXBRIDGE_EPS_PRIVATE_KEY_FILE) is not set"
            );
        }
        Ok(())
    }
}
