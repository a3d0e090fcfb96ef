//! Standard Webhooks signatures: endpoint secrets, signing what we send and verifying what
//! we receive.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

/// A new endpoint secret: `whsec_` + base64 of 24 random bytes.
pub fn generate_secret() -> String {
    let mut k = [0u8; 24];
    rand::rngs::OsRng.fill_bytes(&mut k);
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(k)
    )
}

fn secret_key(secret: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap_or(secret))
        .ok()
}

/// `v1,<base64 HMAC-SHA256 over "{id}.{timestamp}.{body}">` for each secret, space-separated.
pub fn sign(secrets: &[String], id: &str, timestamp: i64, body: &[u8]) -> String {
    secrets
        .iter()
        .filter_map(|s| secret_key(s))
        .map(|key| {
            let mut m = <Hmac<Sha256> as Mac>::new_from_slice(&key).expect("any key length");
            m.update(id.as_bytes());
            m.update(b".");
            m.update(timestamp.to_string().as_bytes());
            m.update(b".");
            m.update(body);
            format!(
                "v1,{}",
                base64::engine::general_purpose::STANDARD.encode(m.finalize().into_bytes())
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("webhook-id, webhook-timestamp and webhook-signature headers are required")]
    MissingHeaders,
    #[error("webhook-timestamp is not within 5 minutes of now")]
    Stale,
    #[error("no signature matches")]
    NoMatch,
}

/// Verify Standard Webhooks headers over `body` with any of `secrets`, at `now` (seconds).
pub fn verify(
    secrets: &[String],
    id: Option<&str>,
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now: i64,
) -> Result<(), VerifyError> {
    use subtle::ConstantTimeEq;
    let (Some(id), Some(ts), Some(sig)) = (id, timestamp, signature) else {
        return Err(VerifyError::MissingHeaders);
    };
    let ts: i64 = ts.trim().parse().map_err(|_| VerifyError::MissingHeaders)?;
    if (now - ts).abs() > 300 {
        return Err(VerifyError::Stale);
    }
    let given: Vec<&str> = sig
        .split(' ')
        .filter_map(|p| p.strip_prefix("v1,"))
        .collect();
    for secret in secrets {
        let expected = sign(std::slice::from_ref(secret), id, ts, body);
        let Some(expected) = expected.strip_prefix("v1,") else {
            continue;
        };
        if given
            .iter()
            .any(|g| bool::from(g.as_bytes().ct_eq(expected.as_bytes())))
        {
            return Ok(());
        }
    }
    Err(VerifyError::NoMatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_webhooks_test_vector() {
        // The example in the Standard Webhooks specification.
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_string();
        let body = br#"{"test": 2432232314}"#;
        let sig = sign(
            std::slice::from_ref(&secret),
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            body,
        );
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        let at = |now| {
            let id = Some("msg_p5jXN8AQM9LWM0D4loKWxJek");
            verify(
                std::slice::from_ref(&secret),
                id,
                Some("1614265330"),
                Some(&sig),
                body,
                now,
            )
        };
        assert_eq!(at(1614265330), Ok(()));
        assert_eq!(at(1614265330 + 301), Err(VerifyError::Stale));
        assert_eq!(
            verify(
                &[secret],
                Some("msg_other"),
                Some("1614265330"),
                Some(&sig),
                body,
                1614265330
            ),
            Err(VerifyError::NoMatch)
        );
    }

    #[test]
    fn several_signatures_during_rotation() {
        let (a, b) = (generate_secret(), generate_secret());
        let both = sign(&[a.clone(), b.clone()], "msg_1", 10, b"{}");
        assert_eq!(both.split(' ').count(), 2);
        assert_eq!(
            verify(&[b], Some("msg_1"), Some("10"), Some(&both), b"{}", 10),
            Ok(())
        );
        assert_eq!(
            verify(
                &[generate_secret()],
                Some("msg_1"),
                Some("10"),
                Some(&both),
                b"{}",
                10
            ),
            Err(VerifyError::NoMatch)
        );
        assert_eq!(
            verify(&[a], None, Some("10"), Some(&both), b"{}", 10),
            Err(VerifyError::MissingHeaders)
        );
    }
}
