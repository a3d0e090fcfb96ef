//! Patient data at rest: AES-256-GCM for the sealed prescription document, and keyed hashes
//! (HMAC-SHA256) for exact-match lookups, so search works without decrypting every row.
//!
//! One 32-byte master key (config or a 0600 key file) derives two independent sub-keys, one
//! per purpose, so a lookup hash never reveals anything about the encryption key.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// Version byte at the front of every sealed blob, so the format can change later.
const SEAL_V1: u8 = 1;

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("the patient-data key must be 32 bytes (64 hex characters)")]
    KeyLength,
    #[error("a sealed record could not be opened (wrong key or tampered data)")]
    Open,
}

/// Keyed hashes used for lookups. Opaque 32-byte values, hex in storage.
pub type LookupHash = String;

#[derive(Clone)]
pub struct PatientVault {
    cipher: Aes256Gcm,
    mac_key: [u8; 32],
}

impl std::fmt::Debug for PatientVault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PatientVault(***)")
    }
}

fn derive(master: &[u8], label: &[u8]) -> [u8; 32] {
    let mut m = <HmacSha256 as Mac>::new_from_slice(master).expect("HMAC takes any key length");
    m.update(label);
    m.finalize().into_bytes().into()
}

impl PatientVault {
    pub fn new(master_key: &[u8]) -> Result<Self, VaultError> {
        if master_key.len() != 32 {
            return Err(VaultError::KeyLength);
        }
        let enc = derive(master_key, b"rxbridge/patient-data/aes-256-gcm/v1");
        let mac_key = derive(master_key, b"rxbridge/patient-data/lookup-hmac/v1");
        Ok(Self {
            cipher: Aes256Gcm::new_from_slice(&enc).map_err(|_| VaultError::KeyLength)?,
            mac_key,
        })
    }

    pub fn from_hex(hex_key: &str) -> Result<Self, VaultError> {
        let bytes = hex::decode(hex_key.trim()).map_err(|_| VaultError::KeyLength)?;
        Self::new(&bytes)
    }

    /// Open a stored prescription's sealed document.
    pub fn open_prescription(
        &self,
        rec: &crate::ports::PrescriptionRecord,
    ) -> anyhow::Result<rxbridge_domain::prescription::Prescription> {
        let bytes = self.open(&rec.id, &rec.sealed)?;
        Ok(serde_json::from_slice(&bytes)?)
    }

    /// A vault of its own for `label`'s use (keys derived from this one's, never equal to
    /// them): what is sealed with it opens only with it.
    pub fn derived(&self, label: &str) -> PatientVault {
        let key = derive(
            &self.mac_key,
            format!("rxbridge/derived/{label}").as_bytes(),
        );
        PatientVault::new(&key).expect("a derived key is 32 bytes")
    }

    /// A fresh random master key, hex encoded.
    pub fn generate_key_hex() -> String {
        let mut k = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut k);
        hex::encode(k)
    }

    /// Encrypt `plaintext`, bound to `context` (the record id) as associated data: a sealed blob
    /// copied onto another record does not open.
    pub fn seal(&self, context: &str, plaintext: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let ct = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: context.as_bytes(),
                },
            )
            .expect("AES-GCM encryption does not fail for in-memory buffers");
        let mut out = Vec::with_capacity(1 + 12 + ct.len());
        out.push(SEAL_V1);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        out
    }

    pub fn open(&self, context: &str, sealed: &[u8]) -> Result<Vec<u8>, VaultError> {
        if sealed.len() < 1 + 12 + 16 || sealed[0] != SEAL_V1 {
            return Err(VaultError::Open);
        }
        self.cipher
            .decrypt(
                Nonce::from_slice(&sealed[1..13]),
                Payload {
                    msg: &sealed[13..],
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| VaultError::Open)
    }

    /// Keyed hash of a normalised value for one kind of lookup. The kind is part of the input,
    /// so an email and a postcode with the same text never collide.
    pub fn lookup(&self, kind: &str, normalised: &str) -> LookupHash {
        let mut m = <HmacSha256 as Mac>::new_from_slice(&self.mac_key).expect("any key length");
        m.update(kind.as_bytes());
        m.update(&[0]);
        m.update(normalised.as_bytes());
        hex::encode(m.finalize().into_bytes())
    }

    /// Keyed hashes of a patient for lookups and history, as intake stores them.
    pub fn patient_keys(
        &self,
        p: &rxbridge_domain::prescription::Patient,
    ) -> crate::ports::PatientKeys {
        let postcode = rxbridge_domain::normalise::postcode_key(&p.address.postcode);
        crate::ports::PatientKeys {
            nhs: p
                .nhs_number
                .as_ref()
                .map(|n| self.lookup("nhs", n.as_str())),
            demographic: self.lookup("demographic", &p.demographic_key()),
            name_dob: self.lookup("name_dob", &p.name_dob_key()),
            family_dob: self.lookup("family_dob", &p.family_dob_key()),
            email: p
                .email
                .as_ref()
                .map(|e| self.lookup("email", &e.lookup_key())),
            phone: p.phone.as_ref().map(|ph| self.lookup("phone", ph.as_str())),
            postcode: self.lookup("postcode", &postcode),
            address: self.lookup("address", &p.address.match_key()),
        }
    }
}

/// SHA-256, hex. For API keys (high-entropy secrets: a fast hash is the right tool, as for
/// session tokens) and request fingerprints.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_roundtrip_and_binding() {
        let v = PatientVault::from_hex(&PatientVault::generate_key_hex()).unwrap();
        let s = v.seal("rx_1", b"Sam Taylor");
        assert!(!s.windows(3).any(|w| w == b"Sam"));
        assert_eq!(v.open("rx_1", &s).unwrap(), b"Sam Taylor");
        assert!(v.open("rx_2", &s).is_err(), "bound to its record");
        let mut t = s.clone();
        *t.last_mut().unwrap() ^= 1;
        assert!(v.open("rx_1", &t).is_err(), "tamper detected");
        let other = PatientVault::from_hex(&PatientVault::generate_key_hex()).unwrap();
        assert!(other.open("rx_1", &s).is_err(), "wrong key");
    }

    #[test]
    fn lookups_are_keyed_and_kind_separated() {
        let a = PatientVault::new(&[1; 32]).unwrap();
        let b = PatientVault::new(&[2; 32]).unwrap();
        assert_eq!(a.lookup("email", "x@y.z"), a.lookup("email", "x@y.z"));
        assert_ne!(a.lookup("email", "x@y.z"), b.lookup("email", "x@y.z"));
        assert_ne!(a.lookup("email", "x"), a.lookup("postcode", "x"));
        assert!(PatientVault::new(&[0; 31]).is_err());
        assert!(PatientVault::from_hex("zz").is_err());
    }
}
