//! Who may use the dashboard and act through it, over HTTP against the real
//! daemon: CSRF tokens and foreign origins, decisions by someone not listed,
//! the login with an admin token, and throttled guessing.

use crate::dashboard_util::start;

#[tokio::test]
async fn forms_need_their_csrf_token_and_a_foreign_origin_is_refused() {
    let ui = start(vec![]).await;
    let waiting = ui.reward("ann@bigco.example", 4000).await;
    ui.until_status(&waiting, "waiting").await;
    let decide = format!("/ui/executions/{waiting}/decide");
    // No session at all.
    let page = ui
        .post(&decide, &[("decision", "approve"), ("by", "olivia")])
        .await;
    assert_eq!(page.status, 403);
    let page = ui.get(&format!("/ui/executions/{waiting}")).await;
    let session = page.set_cookie.clone().expect("a session cookie");
    assert!(
        session.contains("HttpOnly") && session.contains("SameSite=Strict"),
        "{session}"
    );
    let csrf = page.csrf();
    for (form, headers) in [
        (vec![("decision", "approve"), ("by", "olivia")], vec![]),
        (
            vec![("decision", "approve"), ("by", "olivia"), ("csrf", "0000")],
            vec![],
        ),
        (
            vec![
                ("decision", "approve"),
                ("by", "olivia"),
                ("csrf", csrf.as_str()),
            ],
            vec![("origin", "https://evil.example")],
        ),
    ] {
        let page = ui.post_with(&decide, &form, &headers).await;
        assert_eq!(page.status, 403, "{form:?} {headers:?}: {}", page.body);
    }
    for action in ["retry", "replay"] {
        let page = ui
            .post(
                &format!("/ui/executions/{waiting}/{action}"),
                &[("csrf", "x")],
            )
            .await;
        assert_eq!(page.status, 403, "{action}");
    }
    let page = ui
        .post("/ui/executions/retry", &[("status", "incomplete")])
        .await;
    assert_eq!(page.status, 403);
    assert_eq!(ui.status(&waiting).await, "waiting", "nothing was decided");
    // Someone not listed, and a missing name, are refused with a reason.
    let page = ui
        .post(
            &decide,
            &[("decision", "approve"), ("by", "mallory"), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(page.status, 403, "{}", page.body);
    assert!(page.body.contains("mallory"), "{}", page.body);
    let page = ui
        .post(
            &decide,
            &[("decision", "approve"), ("by", " "), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(page.status, 400);
    // With the token it goes through, and who decided is kept and shown.
    let page = ui
        .post(
            &decide,
            &[
                ("decision", "approve"),
                ("by", "olivia"),
                ("comment", "fine"),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    ui.until_status(&waiting, "succeeded").await;
    let shown = ui.get(&format!("/ui/executions/{waiting}")).await.body;
    assert!(
        shown.contains("olivia") && shown.contains("fine"),
        "{shown}"
    );
    let again = ui
        .post(
            &decide,
            &[("decision", "reject"), ("by", "olivia"), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(again.status, 409, "deciding twice: {}", again.body);
}

#[tokio::test]
async fn with_an_admin_token_the_dashboard_asks_for_it_once() {
    let token = "adm1n-t0ken-for-tests";
    let ui = start(vec![("SCENARIST_ADMIN_TOKEN".to_owned(), token.to_owned())]).await;
    let page = ui.get("/ui/executions?key=a%40b").await;
    assert_eq!(page.status, 303);
    let login = page.location.unwrap();
    assert!(
        login.starts_with("/ui/login?next=%2Fui%2Fexecutions"),
        "{login}"
    );
    let form = ui.get(&login).await;
    assert_eq!(form.status, 200);
    assert!(form.body.contains("type=\"password\""));
    let wrong = ui
        .post(
            "/ui/login",
            &[("token", "guess"), ("next", "/ui/executions")],
        )
        .await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.body.contains("That token is not right.") && !wrong.body.contains("guess"));
    assert!(wrong.set_cookie.is_none());
    let right = ui
        .post(
            "/ui/login",
            &[("token", token), ("next", "https://evil.example/")],
        )
        .await;
    assert_eq!(
        (right.status, right.location.as_deref()),
        (303, Some("/ui")),
        "no open redirect"
    );
    assert!(right.set_cookie.unwrap().contains("HttpOnly"));
    let page = ui.get("/ui/executions").await;
    assert_eq!(page.status, 200, "signed in");
    assert!(!page.body.contains(token), "the token is never shown");
    // The API still wants the Bearer token; the cookie is not enough there.
    let session = ui.cookie.lock().unwrap().clone().unwrap();
    let api = ui
        .http
        .get(ui.url("/api/executions"))
        .header("cookie", session)
        .send()
        .await
        .unwrap();
    assert_eq!(api.status().as_u16(), 401);
    let csrf = page.csrf();
    let out = ui.post("/ui/logout", &[("csrf", &csrf)]).await;
    assert_eq!(out.status, 303);
    assert_eq!(ui.get("/ui/executions").await.status, 303, "signed out");
}

/// Guessing the admin token is slowed down: after 10 wrong tokens in a
/// minute from one address, that address gets 429, even with the right one.
#[tokio::test]
async fn repeated_wrong_tokens_from_one_address_get_429() {
    let token = "adm1n-t0ken-for-tests";
    let ui = start(vec![("SCENARIST_ADMIN_TOKEN".to_owned(), token.to_owned())]).await;
    let api = |bearer: &str| {
        ui.http
            .get(ui.url("/api/executions"))
            .header("authorization", format!("Bearer {bearer}"))
            .send()
    };
    assert_eq!(api(token).await.unwrap().status().as_u16(), 200);
    for n in 0..10 {
        let status = api(&format!("guess-{n}")).await.unwrap().status().as_u16();
        assert_eq!(status, 401, "guess {n}");
    }
    let blocked = api("guess-11").await.unwrap();
    assert_eq!(blocked.status().as_u16(), 429);
    let wait: u64 = blocked.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    assert_eq!(
        api(token).await.unwrap().status().as_u16(),
        429,
        "the right token waits too"
    );
    let login = ui
        .post("/ui/login", &[("token", token), ("next", "/ui")])
        .await;
    assert_eq!(login.status, 429, "the dashboard's login shares the count");
}
