//! Stripe's webhook signature (`Stripe-Signature: t=…,v1=…[,v1=…]`): HMAC-SHA256 with the
//! endpoint secret over `"{t}.{raw body}"`, hex encoded. Several `v1` values appear while a
//! secret is being rolled; we accept a match against any configured secret. The timestamp must
//! be within the tolerance of now (replay protection; replays inside it are caught by event-id
//! de-duplication).

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Stripe's default tolerance.
pub const TOLERANCE_SECS: i64 = 300;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the Stripe-Signature header is missing")]
    Missing,
    #[error("the Stripe-Signature header has no t= timestamp or no v1= signature")]
    Malformed,
    #[error("the signature timestamp is outside the {TOLERANCE_SECS} s tolerance")]
    Expired,
    #[error("no signature matches the payload with any configured secret")]
    NoMatch,
}

fn mac_hex(secret: &str, t: i64, body: &[u8]) -> String {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()).expect("any key length");
    m.update(t.to_string().as_bytes());
    m.update(b".");
    m.update(body);
    hex::encode(m.finalize().into_bytes())
}

/// The header value Stripe would send for `body` at `t` with `secret`.
pub fn sign(secret: &str, t: i64, body: &[u8]) -> String {
    format!("t={t},v1={}", mac_hex(secret, t, body))
}

/// Check `header` against `body` with any of `secrets`, at `now` (Unix seconds).
pub fn verify(
    header: Option<&str>,
    body: &[u8],
    secrets: &[String],
    now: i64,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let mut t: Option<i64> = None;
    let mut sigs: Vec<&str> = Vec::new();
    for part in header.split(',') {
        let (k, v) = part
            .trim()
            .split_once('=')
            .ok_or(SignatureError::Malformed)?;
        match k {
            "t" => t = Some(v.parse().map_err(|_| SignatureError::Malformed)?),
            "v1" => sigs.push(v),
            _ => {} // v0 and future schemes are ignored, as Stripe's libraries do
        }
    }
    let t = t.ok_or(SignatureError::Malformed)?;
    if sigs.is_empty() {
        return Err(SignatureError::Malformed);
    }
    if (now - t).abs() > TOLERANCE_SECS {
        return Err(SignatureError::Expired);
    }
    for secret in secrets {
        let expected = mac_hex(secret, t, body);
        if sigs
            .iter()
            .any(|s| bool::from(s.as_bytes().ct_eq(expected.as_bytes())))
        {
            return Ok(());
        }
    }
    Err(SignatureError::NoMatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = br#"{"id":"evt_1","type":"checkout.session.completed"}"#;
    fn secrets(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn known_vector() {
        // HMAC-SHA256("whsec_test", "1700000000.{}") computed independently (Python hmac).
        assert_eq!(
            sign("whsec_test", 1_700_000_000, b"{}"),
            "t=1700000000,v1=35495024f4ef3f94e5a93e22221544c4b75e9a42300cd965ab81cb85cd994e91"
        );
    }

    #[test]
    fn accepts_a_fresh_signature_and_refuses_tampering() {
        let h = sign("whsec_a", 1000, BODY);
        assert_eq!(verify(Some(&h), BODY, &secrets(&["whsec_a"]), 1000), Ok(()));
        let mut tampered = BODY.to_vec();
        tampered[10] ^= 1;
        assert_eq!(
            verify(Some(&h), &tampered, &secrets(&["whsec_a"]), 1000),
            Err(SignatureError::NoMatch)
        );
        assert_eq!(
            verify(Some(&h), BODY, &secrets(&["whsec_other"]), 1000),
            Err(SignatureError::NoMatch)
        );
    }

    #[test]
    fn tolerance_is_300_seconds_either_way() {
        let h = sign("whsec_a", 1000, BODY);
        let s = secrets(&["whsec_a"]);
        assert_eq!(verify(Some(&h), BODY, &s, 1300), Ok(()));
        assert_eq!(
            verify(Some(&h), BODY, &s, 1301),
            Err(SignatureError::Expired)
        );
        assert_eq!(
            verify(Some(&h), BODY, &s, 699),
            Err(SignatureError::Expired)
        );
    }

    #[test]
    fn rotation_several_v1_and_several_secrets() {
        let old = sign("whsec_old", 1000, BODY);
        let new = sign("whsec_new", 1000, BODY);
        let both = format!("{old},{}", new.split_once(',').unwrap().1);
        // Stripe signs with both during a roll; we hold only the new secret.
        assert_eq!(
            verify(Some(&both), BODY, &secrets(&["whsec_new"]), 1000),
            Ok(())
        );
        // We hold both secrets while they roll; Stripe signs with the old one.
        assert_eq!(
            verify(
                Some(&old),
                BODY,
                &secrets(&["whsec_new", "whsec_old"]),
                1000
            ),
            Ok(())
        );
    }

    #[test]
    fn malformed_headers() {
        let s = secrets(&["whsec_a"]);
        assert_eq!(verify(None, BODY, &s, 0), Err(SignatureError::Missing));
        for h in ["", "t=1", "v1=abc", "t=x,v1=abc", "garbage", "t=1,v0=abc"] {
            assert!(
                matches!(verify(Some(h), BODY, &s, 1), Err(SignatureError::Malformed)),
                "{h:?}"
            );
        }
    }
}
