//! The staff port's contract, driven through `StaffService` with a fixed clock.

use crate::clock::{Clock, FixedClock};
use crate::ports::StoreError;
use crate::staff::*;
use jiff::{SignedDuration, Timestamp};
use std::sync::Arc;

pub type StaffFixture = (Arc<dyn StaffStore>, Box<dyn std::any::Any + Send>);

#[macro_export]
macro_rules! staff_store_contract_tests {
    ($make:expr) => {
        mod staff_store_contract {
            #[allow(unused_imports)]
            use super::*;
            macro_rules! case {
                ($name:ident) => {
                    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                    async fn $name() {
                        let fixture: $crate::contract::staff::StaffFixture = $make.await;
                        $crate::contract::staff::$name(fixture.0.clone()).await;
                        drop(fixture);
                    }
                };
            }
            case!(add_and_sign_in);
            case!(lockout_with_back_off);
            case!(sessions_expire_and_sign_out);
            case!(password_change);
            case!(password_reset);
        }
    };
}

fn start() -> Timestamp {
    "2026-11-26T09:00:00Z".parse().unwrap()
}

fn service(store: Arc<dyn StaffStore>) -> (StaffService, Arc<FixedClock>) {
    let clock = Arc::new(FixedClock::new(start()));
    (StaffService::new(store, clock.clone()), clock)
}

pub async fn add_and_sign_in(store: Arc<dyn StaffStore>) {
    let (svc, _) = service(store.clone());
    let (acct, otp) = svc
        .add("Pharm@Example.com", Role::Pharmacist, Some("2033467"))
        .await
        .unwrap();
    assert_eq!(acct.email, "pharm@example.com");
    assert!(acct.must_change_password);
    assert!(matches!(
        svc.add("pharm@example.com", Role::Support, None).await,
        Err(StaffError::EmailTaken)
    ));
    assert!(matches!(
        svc.add("p2@example.com", Role::Pharmacist, None).await,
        Err(StaffError::Invalid(_))
    ));
    assert!(matches!(
        svc.add("p3@example.com", Role::Pharmacist, Some("1033467"))
            .await,
        Err(StaffError::Invalid(_))
    ));
    assert_eq!(store.staff_by_id(&acct.id).await.unwrap().unwrap(), acct);
    assert_eq!(store.list_staff().await.unwrap(), vec![acct.clone()]);
    assert!(matches!(
        svc.sign_in("nobody@example.com", &otp).await,
        Err(StaffError::InvalidCredentials)
    ));
    let s = svc.sign_in("PHARM@example.com", &otp).await.unwrap();
    assert_eq!(s.session.staff.id, acct.id);
    assert_ne!(s.token, s.session.csrf_token);
    let live = svc.session(&s.token).await.unwrap().unwrap();
    assert_eq!(live.staff.role, Role::Pharmacist);
    assert_eq!(live.csrf_token, s.session.csrf_token);
    assert!(svc.session("not-a-token").await.unwrap().is_none());
    // Only the hash is stored.
    assert!(store.session(&s.token).await.unwrap().is_none());
}

pub async fn lockout_with_back_off(store: Arc<dyn StaffStore>) {
    let (svc, clock) = service(store.clone());
    let (acct, otp) = svc.add("s@example.com", Role::Support, None).await.unwrap();
    for _ in 0..(FREE_ATTEMPTS - 1) {
        assert!(matches!(
            svc.sign_in("s@example.com", "wrong").await,
            Err(StaffError::InvalidCredentials)
        ));
    }
    // The fifth failure locks for a minute; even the right password is refused meanwhile.
    assert!(matches!(
        svc.sign_in("s@example.com", "wrong").await,
        Err(StaffError::Locked(_))
    ));
    assert!(matches!(
        svc.sign_in("s@example.com", &otp).await,
        Err(StaffError::Locked(_))
    ));
    clock.set(
        start()
            .saturating_add(SignedDuration::from_secs(61))
            .unwrap(),
    );
    // Another failure after the lock doubles it.
    match svc.sign_in("s@example.com", "wrong").await {
        Err(StaffError::Locked(until)) => assert_eq!(
            until.duration_since(clock.now()),
            SignedDuration::from_secs(120)
        ),
        other => panic!("{other:?}"),
    }
    clock.set(
        clock
            .now()
            .saturating_add(SignedDuration::from_secs(121))
            .unwrap(),
    );
    svc.sign_in("s@example.com", &otp).await.unwrap();
    let a = store.staff_by_id(&acct.id).await.unwrap().unwrap();
    assert_eq!(
        (a.failed_attempts, a.locked_until),
        (0, None),
        "success resets the count"
    );
}

pub async fn sessions_expire_and_sign_out(store: Arc<dyn StaffStore>) {
    let (svc, clock) = service(store.clone());
    let (_, otp) = svc.add("a@example.com", Role::Admin, None).await.unwrap();
    let s = svc.sign_in("a@example.com", &otp).await.unwrap();
    clock.set(start().saturating_add(IDLE_TIMEOUT).unwrap());
    assert!(
        svc.session(&s.token).await.unwrap().is_some(),
        "used just within the idle timeout"
    );
    clock.set(
        clock
            .now()
            .saturating_add(IDLE_TIMEOUT + SignedDuration::from_secs(1))
            .unwrap(),
    );
    assert!(
        svc.session(&s.token).await.unwrap().is_none(),
        "idle too long"
    );
    assert!(
        store
            .session(&s.session.token_hash)
            .await
            .unwrap()
            .is_none(),
        "expired session removed"
    );
    let s = svc.sign_in("a@example.com", &otp).await.unwrap();
    let live = svc.session(&s.token).await.unwrap().unwrap();
    svc.sign_out(&live).await.unwrap();
    assert!(svc.session(&s.token).await.unwrap().is_none());
    // Signing out twice is harmless.
    svc.sign_out(&live).await.unwrap();
    assert!(matches!(
        store
            .set_password(
                "st_nope",
                "h",
                None,
                crate::events::NewEvent {
                    at: start(),
                    kind: "x".into(),
                    actor: "t".into(),
                    subject: "st_nope".into(),
                    detail: serde_json::json!({})
                }
            )
            .await,
        Err(StoreError::NotFound)
    ));
}

pub async fn password_change(store: Arc<dyn StaffStore>) {
    let (svc, _) = service(store.clone());
    let (acct, otp) = svc.add("c@example.com", Role::Support, None).await.unwrap();
    let s = svc.sign_in("c@example.com", &otp).await.unwrap().session;
    // A second session of the same account (another browser).
    let other = svc.sign_in("c@example.com", &otp).await.unwrap();
    assert!(matches!(
        svc.change_password(&s, "wrong", "a long enough password")
            .await,
        Err(StaffError::InvalidCredentials)
    ));
    assert!(matches!(
        svc.change_password(&s, &otp, "short").await,
        Err(StaffError::Invalid(_))
    ));
    svc.change_password(&s, &otp, "a long enough password")
        .await
        .unwrap();
    let a = store.staff_by_id(&acct.id).await.unwrap().unwrap();
    assert!(!a.must_change_password);
    // The session that changed the password stays; every other one ends.
    assert!(store.session(&s.token_hash).await.unwrap().is_some());
    assert!(svc.session(&other.token).await.unwrap().is_none());
    assert!(matches!(
        svc.sign_in("c@example.com", &otp).await,
        Err(StaffError::InvalidCredentials)
    ));
    svc.sign_in("c@example.com", "a long enough password")
        .await
        .unwrap();
}

/// A reset gives a new one-time password: the old one stops working, the new one must be
/// changed at sign-in, the lock is lifted and every session ends.
pub async fn password_reset(store: Arc<dyn StaffStore>) {
    let (svc, _) = service(store.clone());
    let (acct, otp) = svc.add("r@example.com", Role::Support, None).await.unwrap();
    let s = svc.sign_in("r@example.com", &otp).await.unwrap();
    svc.change_password(&s.session, &otp, "a long enough password")
        .await
        .unwrap();
    let second = svc
        .sign_in("r@example.com", "a long enough password")
        .await
        .unwrap();
    for _ in 0..3 {
        let _ = svc.sign_in("r@example.com", "wrong").await;
    }
    let (_, fresh) = svc.reset_password("cli", " R@example.com ").await.unwrap();
    assert_ne!(fresh, otp);
    let a = store.staff_by_id(&acct.id).await.unwrap().unwrap();
    assert!(a.must_change_password && a.failed_attempts == 0 && a.locked_until.is_none());
    assert!(
        svc.session(&s.token).await.unwrap().is_none(),
        "sessions end"
    );
    assert!(svc.session(&second.token).await.unwrap().is_none());
    assert!(matches!(
        svc.sign_in("r@example.com", "a long enough password").await,
        Err(StaffError::InvalidCredentials)
    ));
    let again = svc.sign_in("r@example.com", &fresh).await.unwrap();
    assert!(again.session.staff.must_change_password);
    assert!(matches!(
        svc.reset_password("cli", "nobody@example.com").await,
        Err(StaffError::Invalid(_))
    ));
    assert!(matches!(
        store.reset_password("st_nope", "h", event("st_nope")).await,
        Err(StoreError::NotFound)
    ));
}

fn event(subject: &str) -> crate::events::NewEvent {
    crate::events::NewEvent {
        at: start(),
        kind: "x".into(),
        actor: "t".into(),
        subject: subject.into(),
        detail: serde_json::json!({}),
    }
}
