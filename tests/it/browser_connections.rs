//! The dashboard's Connections page in headless Chromium: click Connect,
//! pass the authorization server's consent page (oxide-auth's flow, see
//! `oauth_server.rs`), land back on Connections showing `connected`; the
//! scenario then signs in with the token; Disconnect forgets it. No token
//! shows on any page. Skips like the other browser tests without Chromium.

use std::time::Duration;

use fantoccini::Locator;

use crate::browser::{browser, click};
use crate::connections_util::Setup;
use crate::daemon_util::eventually;

async fn status(client: &fantoccini::Client) -> String {
    client
        .find(Locator::Css("tr[data-connection=\"crm\"] .status"))
        .await
        .expect("the crm row")
        .text()
        .await
        .unwrap()
}

#[tokio::test]
async fn connect_from_the_dashboard_through_the_consent_page_then_disconnect() {
    let Some(browser) = browser().await else {
        return;
    };
    let setup = Setup::new(3600, "60s").await;
    let daemon = setup.serve(0).await;
    let client = browser.client.clone();
    let outcome = async {
        client
            .goto(&format!("{}/ui/connections", daemon.url))
            .await
            .unwrap();
        assert_eq!(status(&client).await, "not_connected");
        click(&client, "tr[data-connection=\"crm\"] button.connect").await;
        // The provider's own page: who signs in, and what the app may do.
        let allow = client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css("#allow"))
            .await
            .expect("the authorization server's consent page");
        assert!(client
            .current_url()
            .await
            .unwrap()
            .as_str()
            .starts_with(&setup.server.url));
        allow.click().await.unwrap();
        client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_url(
                &url::Url::parse(&format!("{}/ui/connections?connected=crm", daemon.url)).unwrap(),
            )
            .await
            .expect("back on Connections");
        assert_eq!(status(&client).await, "connected");
        let page = client.source().await.unwrap();
        assert!(page.contains("`crm` is connected."), "the flash");
        assert_eq!(setup.leaked(&page), Vec::<String>::new());
        assert_eq!(setup.server.requests("authorization_code"), 1);

        // The scenario signs in with what the dashboard kept.
        let run = setup.run().await;
        assert_eq!(run.code, 0, "{run:?}");
        assert_eq!(
            run.json()["steps"]["me"]["output"]["body"]["owner"],
            crate::oauth_server::OWNER
        );

        click(&client, "tr[data-connection=\"crm\"] button.forget").await;
        let forgotten = eventually(10, || async { status(&client).await == "not_connected" }).await;
        assert!(forgotten, "Disconnect forgets the tokens");
    };
    let result = futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(outcome)).await;
    if let Err(panic) = result {
        if let Ok(png) = client.screenshot().await {
            let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser");
            let _ = std::fs::create_dir_all(&dir);
            let _ = std::fs::write(dir.join("connections.png"), png);
        }
        let _ = client.close().await;
        std::panic::resume_unwind(panic);
    }
    let _ = client.close().await;
    daemon.stop().await;
}
