//! HubSpot's v3 signatures through the real daemon: HubSpot signs the method,
//! the full URL it called, the body and a millisecond timestamp, so the
//! daemon must rebuild the URL as HubSpot saw it (HTTPS, on the forwarded
//! host when a proxy says so, with the path and query as received).

use base64::Engine;

use crate::signatures::{assert_refused, mac, now, start, HUBSPOT};

/// The headers HubSpot sends for `body` posted to `url` at `millis`.
fn hubspot_headers(
    secret: &str,
    url: &str,
    millis: i64,
    body: &str,
) -> Vec<(&'static str, String)> {
    let stamp = millis.to_string();
    let signature = mac(
        secret.as_bytes(),
        &[b"POST", url.as_bytes(), body.as_bytes(), stamp.as_bytes()],
    );
    vec![
        ("X-HubSpot-Request-Timestamp", stamp),
        (
            "X-HubSpot-Signature-v3",
            base64::engine::general_purpose::STANDARD.encode(signature),
        ),
    ]
}

#[tokio::test]
async fn hubspot_signatures_cover_method_url_body_and_time() {
    let hooks = start().await;
    let host = hooks.daemon.url.trim_start_matches("http://").to_owned();
    let url = format!("https://{host}/hooks/in/hubspot?portal=7");
    let body =
        r#"[{"eventId":1,"objectId":42,"propertyName":"dealstage","propertyValue":"closedwon"}]"#;
    let millis = now() * 1000;
    let genuine = hubspot_headers(HUBSPOT, &url, millis, body);
    assert_eq!(hooks.post("hubspot?portal=7", &genuine, body).await.0, 202);
    // Behind a TLS proxy: the URL HubSpot called is on the forwarded host.
    let public = "https://hooks.example.com/hooks/in/hubspot";
    let mut proxied = hubspot_headers(HUBSPOT, public, millis, body);
    proxied.push(("X-Forwarded-Host", "hooks.example.com".into()));
    proxied.push(("X-Forwarded-Proto", "https".into()));
    assert_eq!(hooks.post("hubspot", &proxied, body).await.0, 202);

    let refused = [
        (
            "a wrong secret",
            hubspot_headers("other", &url, millis, body),
            body,
        ),
        (
            "another query",
            hubspot_headers(HUBSPOT, &url.replace("portal=7", "portal=8"), millis, body),
            body,
        ),
        (
            "plain http",
            hubspot_headers(HUBSPOT, &url.replace("https://", "http://"), millis, body),
            body,
        ),
        (
            "a tampered body",
            genuine.clone(),
            r#"[{"eventId":1,"objectId":43}]"#,
        ),
    ];
    for (what, headers, sent) in refused {
        let answer = hooks.post("hubspot?portal=7", &headers, sent).await;
        assert_eq!(answer.0, 401, "{what}: {}", answer.1);
        assert!(
            answer.1["error"]
                .as_str()
                .unwrap()
                .contains("does not match"),
            "{what}"
        );
    }
    assert_refused(
        hooks
            .post(
                "hubspot?portal=7",
                &hubspot_headers(HUBSPOT, &url, millis - 400_000, body),
                body,
            )
            .await,
        "replay",
    );
    assert_refused(
        hooks.post("hubspot?portal=7", &genuine[1..], body).await,
        "missing `x-hubspot-request-timestamp`",
    );
}
