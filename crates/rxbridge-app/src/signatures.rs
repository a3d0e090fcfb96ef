//! The prescriber's advanced electronic signature on an electronic private prescription
//! (HMR 2012 reg 219): a compact JWS (RFC 7515) with a detached payload (RFC 7515 appendix F)
//! over the RFC 8785 canonical JSON of the submission as received, without its `signature`
//! member, signed with a key registered for that prescriber at that clinic.
//!
//! Keys are registered, listed and revoked by the operator (`rxbridge prescriber-key`). A
//! revocation takes effect at its time against the time rxbridge *received* the prescription —
//! never a date the signer controls — so a prescription received before it keeps a valid
//! signature. Keys are never deleted: earlier signatures stay verifiable.

use crate::clock::Clock;
use crate::events::NewEvent;
use crate::ports::StoreError;
use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jiff::Timestamp;
use jsonwebtoken::{Algorithm, DecodingKey};
use rxbridge_domain::compliance::SignatureCheck;
use rxbridge_domain::ids::Registration;
use rxbridge_domain::prescription::Prescription;
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// The signature algorithms accepted (RFC 7518).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum SigningAlg {
    Es256,
    Es384,
    Rs256,
    Ps256,
}

impl SigningAlg {
    pub const ALL: [SigningAlg; 4] = [
        SigningAlg::Es256,
        SigningAlg::Es384,
        SigningAlg::Rs256,
        SigningAlg::Ps256,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            SigningAlg::Es256 => "ES256",
            SigningAlg::Es384 => "ES384",
            SigningAlg::Rs256 => "RS256",
            SigningAlg::Ps256 => "PS256",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }
    fn jwt(self) -> Algorithm {
        match self {
            SigningAlg::Es256 => Algorithm::ES256,
            SigningAlg::Es384 => Algorithm::ES384,
            SigningAlg::Rs256 => Algorithm::RS256,
            SigningAlg::Ps256 => Algorithm::PS256,
        }
    }
    fn is_ec(self) -> bool {
        matches!(self, SigningAlg::Es256 | SigningAlg::Es384)
    }
}

/// A prescriber's public key as registered.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PrescriberKey {
    pub clinic_id: String,
    pub kid: String,
    /// `body:number` of the registration it was added for (`gmc:7012345`).
    pub registration: String,
    pub alg: SigningAlg,
    /// SubjectPublicKeyInfo (or PKCS#1 RSA) PEM.
    pub public_key_pem: String,
    pub added_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
}

/// Where prescriber keys are kept.
#[async_trait]
pub trait PrescriberKeyStore: Send + Sync {
    /// Store a new key and its event in one transaction.
    ///
    /// # Errors
    /// `Duplicate` when the clinic already has a key with this `kid`; `NotFound` when there is
    /// no such clinic.
    async fn add_prescriber_key(
        &self,
        key: PrescriberKey,
        event: NewEvent,
    ) -> Result<(), StoreError>;
    /// The clinic's key with this id, revoked or not.
    async fn prescriber_key(
        &self,
        clinic_id: &str,
        kid: &str,
    ) -> Result<Option<PrescriberKey>, StoreError>;
    /// Every key of the clinic, oldest first (then by id).
    async fn prescriber_keys(&self, clinic_id: &str) -> Result<Vec<PrescriberKey>, StoreError>;
    /// Mark the key revoked from `at`, with its event, in one transaction.
    ///
    /// # Errors
    /// `NotFound` when the clinic has no such key; `Conflict` when it is already revoked (its
    /// first revocation stands).
    async fn revoke_prescriber_key(
        &self,
        clinic_id: &str,
        kid: &str,
        at: Timestamp,
        event: NewEvent,
    ) -> Result<(), StoreError>;
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{0}")]
    Invalid(String),
    #[error("no such clinic")]
    NoClinic,
    #[error("the clinic already has a key with id {0}")]
    KidTaken(String),
    #[error("the clinic has no key with id {0}")]
    NoKey(String),
    #[error("key {0} is already revoked")]
    AlreadyRevoked(String),
    #[error(transparent)]
    Store(StoreError),
}

/// The parts of a compact JWS with a detached payload (`header..signature`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetachedJws {
    pub header_b64: String,
    pub signature_b64: String,
    pub alg: String,
    pub kid: String,
}

/// Check that `s` is a compact JWS with a detached (empty) payload whose protected header is a
/// JSON object naming `alg` and `kid`. The contract refuses anything else with a 422: it is not
/// a JWS at all.
pub fn parse_detached_jws(s: &str) -> Result<DetachedJws, String> {
    let parts: Vec<&str> = s.split('.').collect();
    let [header_b64, payload, signature_b64] = parts.as_slice() else {
        return Err("must be a compact JWS: three base64url parts joined by dots".into());
    };
    if !payload.is_empty() {
        return Err("must have a detached payload (header..signature, RFC 7515 appendix F)".into());
    }
    let header = URL_SAFE_NO_PAD
        .decode(header_b64)
        .map_err(|_| "its protected header is not base64url".to_string())?;
    let header: serde_json::Value = serde_json::from_slice(&header)
        .map_err(|_| "its protected header is not JSON".to_string())?;
    let text = |k: &str| header.get(k).and_then(|v| v.as_str()).map(str::to_string);
    let alg = text("alg").ok_or("its protected header has no alg")?;
    let kid = text("kid").ok_or("its protected header has no kid")?;
    if signature_b64.is_empty() || URL_SAFE_NO_PAD.decode(signature_b64).is_err() {
        return Err("its signature is not base64url".into());
    }
    if header.get("crit").is_some() || header.get("b64").is_some() {
        return Err(
            "its protected header uses extensions (crit, b64) that are not accepted".into(),
        );
    }
    Ok(DetachedJws {
        header_b64: header_b64.to_string(),
        signature_b64: signature_b64.to_string(),
        alg,
        kid,
    })
}

/// The signed bytes: the RFC 8785 (JCS) canonical JSON of the body as received, without its
/// top-level `signature` member.
pub fn signed_payload(body: &serde_json::Value) -> Result<Vec<u8>, String> {
    let mut v = body.clone();
    if let Some(m) = v.as_object_mut() {
        m.remove("signature");
    }
    serde_jcs::to_vec(&v).map_err(|e| e.to_string())
}

/// Sign `body` as a prescriber's system does (for sandbox testing and `rxbridge dev sign`):
/// a detached compact JWS over [`signed_payload`], with `alg` and `kid` in the protected
/// header. `private_pem` is a PKCS#8 EC or RSA private key.
pub fn sign_detached(
    body: &serde_json::Value,
    private_pem: &str,
    alg: SigningAlg,
    kid: &str,
) -> Result<String, String> {
    let header = serde_json::json!({ "alg": alg.as_str(), "kid": kid });
    let h = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header).map_err(|e| e.to_string())?);
    let p = URL_SAFE_NO_PAD.encode(signed_payload(body)?);
    let key = if alg.is_ec() {
        jsonwebtoken::EncodingKey::from_ec_pem(private_pem.as_bytes())
    } else {
        jsonwebtoken::EncodingKey::from_rsa_pem(private_pem.as_bytes())
    }
    .map_err(|e| format!("the private key cannot be read: {e}"))?;
    let sig = jsonwebtoken::crypto::sign(format!("{h}.{p}").as_bytes(), &key, alg.jwt())
        .map_err(|e| format!("signing failed: {e}"))?;
    Ok(format!("{h}..{sig}"))
}

/// What an algorithm and a PEM say about a key: the algorithm named, or the one the key type
/// implies (EC P-256 → ES256, P-384 → ES384, RSA → RS256).
fn key_alg(pem: &str, alg: Option<&str>) -> Result<SigningAlg, String> {
    let der = pem_der(pem)?;
    // Named curves in SubjectPublicKeyInfo: prime256v1 and secp384r1.
    const P256: &[u8] = &[0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07];
    const P384: &[u8] = &[0x06, 0x05, 0x2B, 0x81, 0x04, 0x00, 0x22];
    let has = |needle: &[u8]| der.windows(needle.len()).any(|w| w == needle);
    let ec = DecodingKey::from_ec_pem(pem.as_bytes()).is_ok() && (has(P256) || has(P384));
    let rsa = !ec && DecodingKey::from_rsa_pem(pem.as_bytes()).is_ok();
    let implied = if ec && has(P256) {
        SigningAlg::Es256
    } else if ec {
        SigningAlg::Es384
    } else if rsa {
        SigningAlg::Rs256
    } else {
        return Err("is not an EC (P-256, P-384) or RSA public key in PEM".into());
    };
    match alg {
        None => Ok(implied),
        Some(a) => {
            let a = SigningAlg::parse(a).ok_or_else(|| {
                format!(
                    "alg must be one of {}",
                    SigningAlg::ALL.map(SigningAlg::as_str).join(", ")
                )
            })?;
            let fits = if ec { a == implied } else { !a.is_ec() };
            fits.then_some(a)
                .ok_or_else(|| format!("a {} key cannot sign {}", implied.as_str(), a.as_str()))
        }
    }
}

fn pem_der(pem: &str) -> Result<Vec<u8>, String> {
    let body: String = pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .flat_map(|l| l.trim().chars())
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .map_err(|_| "is not a PEM public key".to_string())
}

fn decoding_key(k: &PrescriberKey) -> Result<DecodingKey, String> {
    let pem = k.public_key_pem.as_bytes();
    if k.alg.is_ec() {
        DecodingKey::from_ec_pem(pem)
    } else {
        DecodingKey::from_rsa_pem(pem)
    }
    .map_err(|e| format!("key {} cannot be read: {e}", k.kid))
}

/// Registers prescriber keys and checks signatures against them.
pub struct PrescriberKeys {
    store: Arc<dyn PrescriberKeyStore>,
    clock: Arc<dyn Clock>,
}

impl PrescriberKeys {
    pub fn new(store: Arc<dyn PrescriberKeyStore>, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock }
    }

    /// Register `pem` for the prescriber `registration` (`gmc:7012345`) at `clinic_id`. The key
    /// id is `kid`, or one derived from the key (`pk_` and 16 hex of its SHA-256).
    pub async fn add(
        &self,
        actor: &str,
        clinic_id: &str,
        registration: &str,
        pem: &str,
        kid: Option<&str>,
        alg: Option<&str>,
    ) -> Result<PrescriberKey, KeyError> {
        let (body, number) = registration.split_once(':').ok_or_else(|| {
            KeyError::Invalid("--registration must be body:number, e.g. gmc:7012345".into())
        })?;
        let reg = Registration::parse(body, number)
            .map_err(|e| KeyError::Invalid(format!("--registration {body}:{number}: {e}")))?;
        let alg = key_alg(pem, alg).map_err(|e| KeyError::Invalid(format!("the key {e}")))?;
        let kid = match kid {
            Some(k) => {
                let k = k.trim();
                if k.is_empty() || k.len() > 128 || !k.chars().all(|c| c.is_ascii_graphic()) {
                    return Err(KeyError::Invalid(
                        "--kid must be 1 to 128 printable characters without spaces".into(),
                    ));
                }
                k.to_string()
            }
            None => {
                let der = pem_der(pem).map_err(KeyError::Invalid)?;
                format!("pk_{}", &hex::encode(Sha256::digest(der))[..16])
            }
        };
        let key = PrescriberKey {
            clinic_id: clinic_id.to_string(),
            kid: kid.clone(),
            registration: reg.key(),
            alg,
            public_key_pem: pem.trim().to_string() + "\n",
            added_at: self.clock.now(),
            revoked_at: None,
        };
        let event = NewEvent {
            at: key.added_at,
            kind: "prescriber_key.added".into(),
            actor: actor.to_string(),
            subject: clinic_id.to_string(),
            detail: serde_json::json!({ "kid": kid, "registration": key.registration, "alg": alg.as_str() }),
        };
        match self.store.add_prescriber_key(key.clone(), event).await {
            Ok(()) => Ok(key),
            Err(StoreError::Duplicate) => Err(KeyError::KidTaken(kid)),
            Err(StoreError::NotFound) => Err(KeyError::NoClinic),
            Err(e) => Err(KeyError::Store(e)),
        }
    }

    pub async fn list(&self, clinic_id: &str) -> Result<Vec<PrescriberKey>, StoreError> {
        self.store.prescriber_keys(clinic_id).await
    }

    /// Revoke from `at` (default now). Earlier signatures stay verifiable.
    pub async fn revoke(
        &self,
        actor: &str,
        clinic_id: &str,
        kid: &str,
        at: Option<Timestamp>,
    ) -> Result<Timestamp, KeyError> {
        let at = at.unwrap_or_else(|| self.clock.now());
        let event = NewEvent {
            at: self.clock.now(),
            kind: "prescriber_key.revoked".into(),
            actor: actor.to_string(),
            subject: clinic_id.to_string(),
            detail: serde_json::json!({ "kid": kid, "revoked_at": at.to_string() }),
        };
        match self
            .store
            .revoke_prescriber_key(clinic_id, kid, at, event)
            .await
        {
            Ok(()) => Ok(at),
            Err(StoreError::NotFound) => Err(KeyError::NoKey(kid.into())),
            Err(StoreError::Conflict) => Err(KeyError::AlreadyRevoked(kid.into())),
            Err(e) => Err(KeyError::Store(e)),
        }
    }

    /// Check the signature of `rx`, received at `received_at`, over `payload` (the canonical
    /// bytes from [`signed_payload`]).
    pub async fn check(
        &self,
        clinic_id: &str,
        rx: &Prescription,
        payload: &[u8],
        received_at: Timestamp,
    ) -> Result<SignatureCheck, StoreError> {
        let Some(jws) = rx.signature.as_deref() else {
            return Ok(SignatureCheck::Missing);
        };
        let jws = match parse_detached_jws(jws) {
            Ok(j) => j,
            Err(e) => return Ok(SignatureCheck::Invalid(format!("the JWS {e}"))),
        };
        let Some(key) = self.store.prescriber_key(clinic_id, &jws.kid).await? else {
            return Ok(SignatureCheck::KeyUnknown(jws.kid));
        };
        if key.registration != rx.prescriber.registration.key() {
            return Ok(SignatureCheck::KeyUnknown(jws.kid));
        }
        if let Some(revoked) = key.revoked_at
            && revoked <= received_at
        {
            return Ok(SignatureCheck::KeyRevoked {
                kid: jws.kid,
                revoked_at: revoked.to_string(),
            });
        }
        if jws.alg != key.alg.as_str() {
            return Ok(SignatureCheck::Invalid(format!(
                "the header names alg {} but key {} is {}",
                jws.alg,
                key.kid,
                key.alg.as_str()
            )));
        }
        let decoding = match decoding_key(&key) {
            Ok(d) => d,
            Err(e) => return Ok(SignatureCheck::Invalid(e)),
        };
        let message = format!("{}.{}", jws.header_b64, URL_SAFE_NO_PAD.encode(payload));
        match jsonwebtoken::crypto::verify(
            &jws.signature_b64,
            message.as_bytes(),
            &decoding,
            key.alg.jwt(),
        ) {
            Ok(true) => Ok(SignatureCheck::Verified {
                kid: key.kid,
                alg: key.alg.as_str().into(),
            }),
            Ok(false) => Ok(SignatureCheck::Invalid(
                "it does not match the submission as received (RFC 8785 canonical JSON without its signature member)".into(),
            )),
            Err(e) => Ok(SignatureCheck::Invalid(format!("it cannot be checked: {e}"))),
        }
    }
}

#[cfg(test)]
mod tests;
