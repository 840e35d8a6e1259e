//! Connections' sealed tokens: a connect replaces the row, a refresh writes
//! only under the generation it read, one process at a time holds the
//! refresh lease, a rekey moves every row or none, and a reconnect makes
//! the executions that waited for it due.

use chrono::Duration;
use scenarist::engine::{ExecutionError, ExecutionStatus};
use scenarist::store::{CredentialStatus, CredentialWrite, Finish, Resealed, Store};

use super::{now, start, summary, unique, Past, OWNER};

fn write(connection: &str, sealed: &[u8], key: &str, connect: bool) -> CredentialWrite {
    CredentialWrite {
        connection: connection.to_owned(),
        grant: "authorization_code".to_owned(),
        status: CredentialStatus::Connected,
        sealed: sealed.to_vec(),
        key_id: key.to_owned(),
        scopes: "read write".to_owned(),
        expires_at: Some(now() + Duration::hours(1)),
        at: now(),
        connect,
        reason: None,
    }
}

pub async fn a_refresh_writes_only_under_the_generation_it_read(store: &dyn Store) {
    let name = unique("crm");
    assert_eq!(store.credential(&name).await.unwrap(), None);
    assert!(store
        .put_credential(write(&name, b"one", "k1", true), None)
        .await
        .unwrap());
    let row = store.credential(&name).await.unwrap().unwrap();
    assert_eq!(
        (row.sealed.as_slice(), row.generation, row.refreshes),
        (&b"one"[..], 1, 0)
    );
    assert_eq!(row.status, CredentialStatus::Connected);
    assert!(store
        .credentials()
        .await
        .unwrap()
        .iter()
        .any(|r| r.connection == name));

    // Two processes want to refresh: one lease at a time.
    let t = now();
    assert!(store
        .claim_credential(
            &name,
            "authorization_code",
            "k1",
            Some(1),
            "a",
            t,
            t + Duration::seconds(30)
        )
        .await
        .unwrap());
    assert!(!store
        .claim_credential(
            &name,
            "authorization_code",
            "k1",
            Some(1),
            "b",
            t,
            t + Duration::seconds(30)
        )
        .await
        .unwrap());
    let held = store.credential(&name).await.unwrap().unwrap();
    assert_eq!(held.lease_owner.as_deref(), Some("a"));
    // The holder writes under the generation it read; the row moves on.
    assert!(store
        .put_credential(write(&name, b"two", "k1", false), Some(1))
        .await
        .unwrap());
    let row = store.credential(&name).await.unwrap().unwrap();
    assert_eq!(
        (row.sealed.as_slice(), row.generation, row.refreshes),
        (&b"two"[..], 2, 1)
    );
    assert_eq!(row.lease_owner, None);
    assert!(row.refreshed_at.is_some());
    // A late writer of the old generation writes nothing.
    assert!(!store
        .put_credential(write(&name, b"stale", "k1", false), Some(1))
        .await
        .unwrap());
    assert_eq!(
        store.credential(&name).await.unwrap().unwrap().sealed,
        b"two"
    );

    // An expired lease can be taken over; a released one too.
    assert!(store
        .claim_credential(
            &name,
            "authorization_code",
            "k1",
            Some(2),
            "a",
            t,
            t + Duration::milliseconds(1)
        )
        .await
        .unwrap());
    let later = t + Duration::seconds(1);
    assert!(store
        .claim_credential(
            &name,
            "authorization_code",
            "k1",
            Some(2),
            "b",
            later,
            later + Duration::seconds(30)
        )
        .await
        .unwrap());
    store.release_credential(&name, "a").await.unwrap();
    assert_eq!(
        store
            .credential(&name)
            .await
            .unwrap()
            .unwrap()
            .lease_owner
            .as_deref(),
        Some("b")
    );
    store.release_credential(&name, "b").await.unwrap();
    assert_eq!(
        store.credential(&name).await.unwrap().unwrap().lease_owner,
        None
    );

    // A refusal: needs_reconnect, with its reason.
    let mut refused = write(&name, b"", "k1", false);
    refused.status = CredentialStatus::NeedsReconnect;
    refused.reason = Some("invalid_grant".to_owned());
    assert!(store.put_credential(refused, Some(2)).await.unwrap());
    let row = store.credential(&name).await.unwrap().unwrap();
    assert_eq!(row.status, CredentialStatus::NeedsReconnect);
    assert_eq!(row.reason.as_deref(), Some("invalid_grant"));
    // A reconnect replaces the row whatever its generation.
    assert!(store
        .put_credential(write(&name, b"three", "k1", true), None)
        .await
        .unwrap());
    let row = store.credential(&name).await.unwrap().unwrap();
    assert_eq!(
        (row.status, row.refreshes, row.reason),
        (CredentialStatus::Connected, 0, None)
    );

    assert!(store.forget_credential(&name).await.unwrap());
    assert!(!store.forget_credential(&name).await.unwrap());
    assert_eq!(store.credential(&name).await.unwrap(), None);
}

pub async fn a_first_claim_makes_an_empty_row(store: &dyn Store) {
    let name = unique("seeded");
    let t = now();
    assert!(store
        .claim_credential(
            &name,
            "refresh_token",
            "k1",
            None,
            "a",
            t,
            t + Duration::seconds(30)
        )
        .await
        .unwrap());
    assert!(!store
        .claim_credential(
            &name,
            "refresh_token",
            "k1",
            None,
            "b",
            t,
            t + Duration::seconds(30)
        )
        .await
        .unwrap());
    let row = store.credential(&name).await.unwrap().unwrap();
    assert_eq!(
        (row.sealed.len(), row.generation, row.grant.as_str()),
        (0, 1, "refresh_token")
    );
    assert!(store
        .put_credential(write(&name, b"first", "k1", false), Some(1))
        .await
        .unwrap());
    store.forget_credential(&name).await.unwrap();
}

pub async fn a_rekey_moves_every_row_or_none(store: &dyn Store) {
    let (old, new) = (unique("old"), unique("new"));
    let names = [unique("a"), unique("b")];
    for name in &names {
        store
            .put_credential(write(name, b"x", &old, true), None)
            .await
            .unwrap();
    }
    let resealed: Vec<Resealed> = names
        .iter()
        .map(|n| Resealed {
            connection: n.clone(),
            sealed: b"y".to_vec(),
        })
        .collect();
    // Some row is under neither key: refused, nothing moved.
    let stray = unique("stray");
    store
        .put_credential(write(&stray, b"x", "other", true), None)
        .await
        .unwrap();
    assert!(store
        .rekey_credentials(&old, &new, resealed.clone())
        .await
        .is_err());
    for name in &names {
        assert_eq!(store.credential(name).await.unwrap().unwrap().key_id, old);
    }
    store.forget_credential(&stray).await.unwrap();
    // Every check forgets its rows: ours are the only ones left.
    assert_eq!(
        store.rekey_credentials(&old, &new, resealed).await.unwrap(),
        2
    );
    for name in &names {
        let row = store.credential(name).await.unwrap().unwrap();
        assert_eq!(
            (row.key_id.as_str(), row.sealed.as_slice()),
            (new.as_str(), &b"y"[..])
        );
        store.forget_credential(name).await.unwrap();
    }
}

pub async fn a_reconnect_makes_the_executions_that_waited_due(store: &dyn Store) {
    let scenario = unique("reconnect");
    let connection = unique("crm");
    let mut past = Past::days_ago(300);
    let mut stopped = Vec::new();
    for message in [
        format!("connection `{connection}` needs to be reconnected: invalid_grant"),
        format!("connection `{connection}` needs to be reconnected: it was never connected"),
        "POST /x answered 500".to_owned(),
    ] {
        let (_, at) = past.next();
        let id = start(store, &scenario, at).await;
        store
            .finish_execution(
                id,
                OWNER,
                Finish {
                    status: ExecutionStatus::Incomplete,
                    error: Some(ExecutionError {
                        step: "me".to_owned(),
                        message,
                    }),
                    finished_at: at,
                    next_retry_at: Some(now() + Duration::days(1)),
                },
            )
            .await
            .unwrap();
        stopped.push(id);
    }
    let due = now();
    let prefix = format!("connection `{connection}` needs to be reconnected");
    assert_eq!(store.retry_incomplete(&prefix, due).await.unwrap(), 2);
    for (i, id) in stopped.iter().enumerate() {
        let read = summary(store, *id).await;
        if i < 2 {
            assert_eq!(read.next_retry_at, Some(due));
        } else {
            assert!(read.next_retry_at.unwrap() > due + Duration::hours(1));
        }
    }
}
