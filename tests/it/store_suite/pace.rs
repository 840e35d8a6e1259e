//! Shared rate-limit schedules: a store keeps none (each process paces its
//! own calls), or keeps one every process reads through it.

use std::time::Duration;

use super::*;

/// One minute per call, so the time the checks take cannot blur the waits.
const MINUTE: Duration = Duration::from_secs(60);

pub async fn a_shared_schedule_spaces_calls_by_the_interval(store: &dyn Store) {
    let key = unique("pace");
    let first = store
        .pace_reserve(&key, MINUTE, Duration::ZERO)
        .await
        .unwrap();
    let Some(first) = first else {
        // No shared schedule; holding it back says so too.
        assert!(!store.pace_hold(&key, MINUTE).await.unwrap());
        return;
    };
    assert_eq!(first, Duration::ZERO, "the first call goes at once");
    let second = store
        .pace_reserve(&key, MINUTE, Duration::ZERO)
        .await
        .unwrap()
        .unwrap();
    assert!(
        second > Duration::from_secs(50) && second <= MINUTE,
        "{second:?}"
    );
    let third = store
        .pace_reserve(&key, MINUTE, Duration::ZERO)
        .await
        .unwrap()
        .unwrap();
    assert!(
        third > Duration::from_secs(110) && third <= 2 * MINUTE,
        "{third:?}"
    );

    // A burst of three goes at once, the fourth waits one interval.
    let burst = unique("pace");
    for _ in 0..3 {
        let wait = store
            .pace_reserve(&burst, MINUTE, 2 * MINUTE)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(wait, Duration::ZERO);
    }
    let fourth = store
        .pace_reserve(&burst, MINUTE, 2 * MINUTE)
        .await
        .unwrap()
        .unwrap();
    assert!(
        fourth > Duration::from_secs(50) && fourth <= MINUTE,
        "{fourth:?}"
    );

    // A hold (a 429's Retry-After) delays the next call of a quiet key.
    let held = unique("pace");
    assert!(store.pace_hold(&held, 10 * MINUTE).await.unwrap());
    let after = store
        .pace_reserve(&held, MINUTE, Duration::ZERO)
        .await
        .unwrap()
        .unwrap();
    assert!(after > 9 * MINUTE && after <= 10 * MINUTE, "{after:?}");
}
