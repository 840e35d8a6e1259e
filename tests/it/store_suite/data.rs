//! Data stores and dedupe keys.

use chrono::{DateTime, Duration, Utc};
use scenarist::engine::{DataOp, StepStatus};
use scenarist::store::Store;
use serde_json::{json, Value};
use uuid::Uuid;

use super::{data_op, ms, now, start, unique};

/// put, get, delete and increment, each with its step's result; a value
/// lives until its time to live (counted from `now`); a text is no counter.
pub(super) async fn data_stores_keep_values_until_they_expire(store: &dyn Store) {
    let scenario = unique("data");
    let name = unique("contacts");
    let other_name = unique("contacts");
    let t = now();
    let id = start(store, &scenario, t).await;
    let at = (name.as_str(), "lee@bigco.example");
    let op = |path: &'static str, op: DataOp, when: DateTime<Utc>| {
        data_op(store, id, path, at, op, when)
    };
    let put = |value: Value, ttl: Option<u64>| DataOp::Put {
        value,
        ttl: ttl.map(std::time::Duration::from_secs),
    };
    let increment = |by: f64, ttl: Option<u64>| DataOp::Increment {
        by,
        ttl: ttl.map(std::time::Duration::from_secs),
    };

    assert_eq!(
        op("get0", DataOp::Get, t).await.unwrap(),
        Value::Null,
        "missing"
    );
    let value = json!({ "tier": "gold", "seen": [1, 2] });
    assert_eq!(
        op("put1", put(value.clone(), None), t).await.unwrap(),
        value
    );
    assert_eq!(op("get1", DataOp::Get, t).await.unwrap(), value);
    assert_eq!(
        data_op(store, id, "get-other", (&other_name, at.1), DataOp::Get, t)
            .await
            .unwrap(),
        Value::Null,
        "data stores are separate"
    );
    assert_eq!(
        op("put2", put(json!("text"), None), t).await.unwrap(),
        json!("text")
    );
    assert_eq!(op("get2", DataOp::Get, t).await.unwrap(), json!("text"));
    assert_eq!(
        op("delete", DataOp::Delete, t).await.unwrap(),
        json!("text"),
        "delete returns what it deleted"
    );
    assert_eq!(op("get3", DataOp::Get, t).await.unwrap(), Value::Null);
    assert_eq!(op("delete2", DataOp::Delete, t).await.unwrap(), Value::Null);

    assert_eq!(op("inc1", increment(2.0, None), t).await.unwrap(), json!(2));
    assert_eq!(
        op("inc2", increment(0.5, None), t).await.unwrap(),
        json!(2.5)
    );
    assert_eq!(
        op("inc3", increment(-0.5, None), t).await.unwrap(),
        json!(2)
    );
    assert_eq!(op("get4", DataOp::Get, t).await.unwrap(), json!(2));

    op("put3", put(json!("abc"), None), t).await.unwrap();
    assert!(
        op("inc-text", increment(1.0, None), t).await.is_err(),
        "a text cannot be incremented"
    );
    assert_eq!(
        op("get5", DataOp::Get, t).await.unwrap(),
        json!("abc"),
        "unchanged"
    );

    // Time to live, counted from the `now` each call is given.
    op("put-ttl", put(json!("soon gone"), Some(10)), t)
        .await
        .unwrap();
    assert_eq!(
        op("get6", DataOp::Get, t + ms(9_000)).await.unwrap(),
        json!("soon gone")
    );
    assert_eq!(
        op("get7", DataOp::Get, t + ms(11_000)).await.unwrap(),
        Value::Null,
        "expired"
    );
    op("delete3", DataOp::Delete, t).await.unwrap();
    assert_eq!(
        op("inc-ttl", increment(1.0, Some(10)), t).await.unwrap(),
        json!(1)
    );
    assert_eq!(
        op("inc-ttl2", increment(1.0, Some(10)), t + ms(5_000))
            .await
            .unwrap(),
        json!(2)
    );
    assert_eq!(
        op("inc-ttl3", increment(1.0, Some(10)), t + ms(16_000))
            .await
            .unwrap(),
        json!(1),
        "an expired counter starts again"
    );

    // Each operation's result is the step's record, committed with it; a
    // failed one left none.
    let stored = store.execution(id).await.unwrap().unwrap();
    let get = |path: &str| stored.steps.iter().find(|s| s.path == path);
    let put1 = get("put1").expect("put1 recorded");
    assert_eq!(put1.kind, "store");
    assert_eq!(put1.status, StepStatus::Succeeded);
    assert_eq!(put1.output, value);
    assert_eq!(get("inc2").expect("inc2 recorded").output, json!(2.5));
    assert_eq!(
        get("delete").expect("delete recorded").output,
        json!("text")
    );
    assert!(
        get("inc-text").is_none(),
        "the failed increment left no record"
    );
    // The same step again (a resume) replaces its record.
    op("put1", put(json!(7), None), t).await.unwrap();
    let stored = store.execution(id).await.unwrap().unwrap();
    let put1: Vec<_> = stored.steps.iter().filter(|s| s.path == "put1").collect();
    assert_eq!(put1.len(), 1);
    assert_eq!(put1[0].output, json!(7));
}

/// A dedupe key is held by the first execution until it expires; keys
/// belong to their scenario.
pub(super) async fn a_dedupe_key_is_held_until_it_expires(store: &dyn Store) {
    let scenario = unique("dedupe");
    let other = unique("dedupe");
    let key = unique("delivery");
    let t = now();
    let (first, second, third, fourth) = (
        Uuid::now_v7(),
        Uuid::now_v7(),
        Uuid::now_v7(),
        Uuid::now_v7(),
    );
    let until = t + Duration::hours(1);
    assert_eq!(
        store
            .dedupe(&scenario, &key, first, until, t)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .dedupe(&scenario, &key, second, until, t + ms(1000))
            .await
            .unwrap(),
        Some(first)
    );
    assert_eq!(
        store
            .dedupe(&scenario, &key, second, until, until - ms(1))
            .await
            .unwrap(),
        Some(first),
        "still held just before it expires"
    );
    assert_eq!(
        store.dedupe(&other, &key, third, until, t).await.unwrap(),
        None,
        "another scenario"
    );
    assert_eq!(
        store
            .dedupe(&scenario, &unique("delivery"), third, until, t)
            .await
            .unwrap(),
        None,
        "another key"
    );
    let later = until + ms(1000);
    assert_eq!(
        store
            .dedupe(&scenario, &key, fourth, later + Duration::hours(1), later)
            .await
            .unwrap(),
        None,
        "expired: taken anew"
    );
    assert_eq!(
        store
            .dedupe(
                &scenario,
                &key,
                second,
                later + Duration::hours(1),
                later + ms(1)
            )
            .await
            .unwrap(),
        Some(fourth)
    );
}
