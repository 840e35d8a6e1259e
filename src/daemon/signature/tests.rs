use super::*;
use axum::http::HeaderValue;

fn headers(pairs: &[(&'static str, String)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.insert(*name, HeaderValue::from_str(value).unwrap());
    }
    map
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn mac(key: &[u8], text: &[u8]) -> Vec<u8> {
    let mut mac = HmacSha256::new_from_slice(key).unwrap();
    mac.update(text);
    mac.finalize().into_bytes().to_vec()
}

fn signed(scheme: SignatureScheme) -> Check<'static> {
    Check::Signed {
        scheme,
        tolerance: 300,
        target: Target::default(),
    }
}

#[test]
fn standard_webhooks_matches_the_specifications_example() {
    // The example of the Standard Webhooks reference libraries.
    let secret = ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned()];
    let body = br#"{"test": 2432232314}"#;
    let request = headers(&[
        ("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek".into()),
        ("webhook-timestamp", "1614265330".into()),
        (
            "webhook-signature",
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=".into(),
        ),
    ]);
    let check = signed(SignatureScheme::StandardWebhooks);
    assert_eq!(verify(check, &secret, &request, body, 1614265330), Ok(()));
    assert_eq!(
        verify(check, &secret, &request, b"{\"test\": 1}", 1614265330),
        Err(Refusal::Mismatch)
    );
    assert!(matches!(
        verify(check, &secret, &request, body, 1614265330 + 301),
        Err(Refusal::Stale {
            age: 301,
            ahead: false,
            ..
        })
    ));
}

#[test]
fn stripe_takes_any_v1_and_any_secret_of_a_rotation() {
    let body = br#"{"id":"evt_1","type":"invoice.paid"}"#;
    let now = 1_700_000_000;
    let new = mac(
        b"whsec_new",
        format!("{now}.{}", std::str::from_utf8(body).unwrap()).as_bytes(),
    );
    let header = format!("t={now},v1={},v1={},v0=abcd", "00".repeat(32), hex(&new));
    let request = headers(&[("stripe-signature", header)]);
    let check = signed(SignatureScheme::Stripe);
    let rotation = ["whsec_old".to_owned(), "whsec_new".to_owned()];
    assert_eq!(verify(check, &rotation, &request, body, now + 10), Ok(()));
    assert_eq!(
        verify(check, &rotation[..1], &request, body, now),
        Err(Refusal::Mismatch)
    );
    assert!(matches!(
        verify(check, &rotation, &request, body, now - 400),
        Err(Refusal::Stale { ahead: true, .. })
    ));
    let no_time = headers(&[("stripe-signature", format!("v1={}", hex(&new)))]);
    assert!(matches!(
        verify(check, &rotation, &no_time, body, now),
        Err(Refusal::Malformed { .. })
    ));
}

#[test]
fn github_and_slack_sign_what_their_documentation_says() {
    let body = b"payload=1";
    let github = headers(&[(
        "x-hub-signature-256",
        format!("sha256={}", hex(&mac(b"gh", body))),
    )]);
    assert_eq!(
        verify(
            signed(SignatureScheme::Github),
            &["gh".to_owned()],
            &github,
            body,
            0
        ),
        Ok(())
    );
    let slack = headers(&[
        ("x-slack-request-timestamp", "1531420618".into()),
        (
            "x-slack-signature",
            format!("v0={}", hex(&mac(b"sl", b"v0:1531420618:payload=1"))),
        ),
    ]);
    let check = signed(SignatureScheme::Slack);
    assert_eq!(
        verify(check, &["sl".to_owned()], &slack, body, 1531420618),
        Ok(())
    );
    assert_eq!(
        verify(check, &["sl".to_owned()], &HeaderMap::new(), body, 0),
        Err(Refusal::MissingHeader("x-slack-request-timestamp".into()))
    );
}

#[test]
fn refusals_never_repeat_the_secret_or_the_expected_signature() {
    let body = b"{}";
    let expected = hex(&mac(b"topsecret", body));
    let request = headers(&[("x-sig", "sha256=00".into())]);
    let refusal = verify(
        Check::Hmac {
            header: "x-sig",
            prefix: "sha256=",
        },
        &["topsecret".to_owned()],
        &request,
        body,
        0,
    )
    .unwrap_err()
    .to_string();
    assert!(
        !refusal.contains("topsecret") && !refusal.contains(&expected),
        "{refusal}"
    );
    let bad = verify(
        signed(SignatureScheme::StandardWebhooks),
        &["whsec_!!not-base64!!".to_owned()],
        &headers(&[
            ("webhook-id", "m".into()),
            ("webhook-timestamp", "0".into()),
            ("webhook-signature", "v1,AAAA".into()),
        ]),
        body,
        0,
    )
    .unwrap_err()
    .to_string();
    assert!(!bad.contains("not-base64"), "{bad}");
}

#[test]
fn the_delivery_id_comes_from_where_each_sender_puts_it() {
    let body = serde_json::json!({ "id": "evt_9", "event_id": "Ev1" });
    let request = headers(&[
        ("webhook-id", "msg_1".into()),
        ("x-github-delivery", "72d3162e".into()),
    ]);
    let id = |scheme| delivery_id(scheme, &request, &body);
    assert_eq!(
        id(SignatureScheme::StandardWebhooks).as_deref(),
        Some("msg_1")
    );
    assert_eq!(id(SignatureScheme::Github).as_deref(), Some("72d3162e"));
    assert_eq!(id(SignatureScheme::Stripe).as_deref(), Some("evt_9"));
    assert_eq!(id(SignatureScheme::Slack).as_deref(), Some("Ev1"));
}

#[test]
fn hubspot_v3_signs_method_url_body_and_the_millisecond_timestamp() {
    let body = br#"[{"eventId":1,"subscriptionType":"deal.propertyChange"}]"#;
    let now = 1_700_000_000;
    let stamp = (now * 1000 + 250).to_string();
    // HubSpot decodes `%3A` and its other listed encodings before signing.
    let called = "https://hooks.example.com/hooks/deals?from=a%3Ab%20c";
    let signed_url = "https://hooks.example.com/hooks/deals?from=a:b%20c";
    let text = format!(
        "POST{signed_url}{}{stamp}",
        std::str::from_utf8(body).unwrap()
    );
    let base64 = base64::engine::general_purpose::STANDARD;
    let signature = base64.encode(mac(b"client-secret", text.as_bytes()));
    let request = headers(&[
        ("x-hubspot-signature-v3", signature.clone()),
        ("x-hubspot-request-timestamp", stamp.clone()),
    ]);
    let check = |method, url| Check::Signed {
        scheme: SignatureScheme::Hubspot,
        tolerance: 300,
        target: Target { method, url },
    };
    let secret = ["client-secret".to_owned()];
    assert_eq!(
        verify(check("POST", called), &secret, &request, body, now + 60),
        Ok(())
    );
    // Wrong secret, another URL or method, a changed body: refused.
    let wrong = ["other".to_owned()];
    assert_eq!(
        verify(check("POST", called), &wrong, &request, body, now),
        Err(Refusal::Mismatch)
    );
    let elsewhere = "https://hooks.example.com/hooks/other?from=a%3Ab%20c";
    assert_eq!(
        verify(check("POST", elsewhere), &secret, &request, body, now),
        Err(Refusal::Mismatch)
    );
    assert_eq!(
        verify(check("PUT", called), &secret, &request, body, now),
        Err(Refusal::Mismatch)
    );
    let tampered = br#"[{"eventId":2,"subscriptionType":"deal.propertyChange"}]"#;
    assert_eq!(
        verify(check("POST", called), &secret, &request, tampered, now),
        Err(Refusal::Mismatch)
    );
    // Older than five minutes: a replay.
    assert!(matches!(
        verify(check("POST", called), &secret, &request, body, now + 301),
        Err(Refusal::Stale {
            age: 301,
            ahead: false,
            ..
        })
    ));
    // A timestamp in seconds is not HubSpot's (and fails the signature anyway).
    let seconds = headers(&[
        ("x-hubspot-signature-v3", signature),
        ("x-hubspot-request-timestamp", "soon".into()),
    ]);
    assert!(matches!(
        verify(check("POST", called), &secret, &seconds, body, now),
        Err(Refusal::Malformed { .. })
    ));
    assert_eq!(
        verify(check("POST", called), &secret, &HeaderMap::new(), body, now),
        Err(Refusal::MissingHeader("x-hubspot-request-timestamp".into()))
    );
}
