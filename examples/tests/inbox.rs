//! The reviewer inbox page in headless Chromium, driven over the WebDriver protocol
//! (chromedriver) against a real `serve` process: sign in with a token, see the draft with its
//! rationale and customer, request changes, be refused approving one's own redraft (four eyes),
//! and approve it as someone else.
//!
//! Needs Debian's `chromium` and `chromium-driver`: `scripts/ensure-chromium` installs them
//! when missing (as root, or with password-less sudo); where it cannot, the test fails and
//! says so. `REFUND_REVIEW_SKIP_BROWSER=1` skips it explicitly.

mod common;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{manager, spawn, wait_outcome, wait_pending};
use examples::refund::auth::{Role, issue_token};
use examples::refund::domain::RefundOutcome;
use serde_json::{Value, json};

const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A chromedriver process and one headless Chromium session; both end on drop.
struct Browser {
    driver: Child,
    base: String,
    session: String,
    http: ureq::Agent,
    _profile: tempfile::TempDir,
}

impl Browser {
    fn start() -> Option<Self> {
        if std::env::var("REFUND_REVIEW_SKIP_BROWSER").is_ok_and(|v| v == "1") {
            eprintln!("REFUND_REVIEW_SKIP_BROWSER=1: the browser test is skipped");
            return None;
        }
        // A fresh machine has no browser: the project's own script installs Debian's packages
        // (it does nothing when they are there), so `cargo test --workspace` needs nothing
        // installed beforehand.
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/ensure-chromium");
        let installed = Command::new(script)
            .status()
            .unwrap_or_else(|e| panic!("cannot run {script}: {e}"));
        assert!(
            installed.success(),
            "{script} could not install chromium and chromium-driver ({installed}); install \
             them by hand, or set REFUND_REVIEW_SKIP_BROWSER=1"
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start chromedriver ({e}); install Debian's `chromium` and \
                     `chromium-driver` (.ci/run does), or set REFUND_REVIEW_SKIP_BROWSER=1"
                )
            });
        let http: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = http
                .get(&format!("{base}/status"))
                .call()
                .ok()
                .and_then(|mut r| r.body_mut().read_json::<Value>().ok())
                .is_some_and(|v| v["value"]["ready"] == true);
            if ready {
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        let profile = tempfile::tempdir().unwrap();
        let mut browser = Self {
            driver,
            base,
            session: String::new(),
            http,
            _profile: profile,
        };
        let caps = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage",
                         format!("--user-data-dir={}", browser._profile.path().display())]
            }
        }}});
        let v = browser.call("POST", "/session", Some(caps));
        browser.session = v["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {v}"))
            .to_owned();
        Some(browser)
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.base);
        let res = match (method, body) {
            ("POST", Some(b)) => self.http.post(&url).send_json(&b),
            ("POST", None) => self.http.post(&url).send_json(json!({})),
            ("DELETE", _) => self.http.delete(&url).call(),
            _ => self.http.get(&url).call(),
        };
        let v: Value = res
            .expect("chromedriver answers")
            .body_mut()
            .read_json()
            .expect("chromedriver answers JSON");
        v["value"].clone()
    }

    fn session(&self, path: &str) -> String {
        format!("/session/{}{path}", self.session)
    }

    fn goto(&self, url: &str) {
        self.call("POST", &self.session("/url"), Some(json!({ "url": url })));
    }

    /// The element matching `css`, once it exists (polled for up to 30 s).
    fn find(&self, css: &str) -> String {
        self.wait(&format!("element `{css}`"), || {
            let v = self.call(
                "POST",
                &self.session("/element"),
                Some(json!({ "using": "css selector", "value": css })),
            );
            v[ELEMENT_KEY].as_str().map(str::to_owned)
        })
    }

    fn text(&self, element: &str) -> String {
        self.call(
            "GET",
            &self.session(&format!("/element/{element}/text")),
            None,
        )
        .as_str()
        .unwrap_or("")
        .to_owned()
    }

    fn type_into(&self, css: &str, text: &str) {
        let el = self.find(css);
        self.call("POST", &self.session(&format!("/element/{el}/clear")), None);
        self.call(
            "POST",
            &self.session(&format!("/element/{el}/value")),
            Some(json!({ "text": text })),
        );
    }

    /// Clicks the element matching `css`. The page re-renders its list after every load, so
    /// an element found a moment ago may be gone by the click: WebDriver then answers "stale
    /// element reference" and the click is retried on the element that replaced it.
    fn click(&self, css: &str) {
        self.wait(&format!("a click on `{css}`"), || {
            let el = self.find(css);
            let v = self.call("POST", &self.session(&format!("/element/{el}/click")), None);
            match v["error"].as_str() {
                None => Some(()),
                Some("stale element reference" | "element not interactable") => None,
                Some(e) => panic!("clicking `{css}` failed: {e}: {}", v["message"]),
            }
        });
    }

    /// Waits until the text of `css` contains `needle`, and returns it.
    fn wait_text(&self, css: &str, needle: &str) -> String {
        self.wait(&format!("`{needle}` in `{css}`"), || {
            let t = self.text(&self.find(css));
            t.contains(needle).then_some(t)
        })
    }

    fn wait<T>(&self, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(v) = f() {
                return v;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self
                .http
                .delete(&format!("{}/session/{}", self.base, self.session))
                .call();
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

#[test]
fn a_reviewer_decides_in_the_inbox_page() {
    let Some(browser) = Browser::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let w = spawn(&dir, &[]);
    let api = manager(&w, &dir, "ops");
    let run = "review-T-1001";
    api.start("T-1001", None).unwrap();
    let first = wait_pending(&api, run);

    browser.goto(&format!("{}/inbox", w.addr()));
    // A wrong token loads nothing and says why.
    browser.type_into("#token", "rr_wrong");
    browser.click("#signin");
    browser.wait_text("#message", "unknown or revoked token");

    let ana = issue_token(dir.path(), "ana", Role::Manager, None).unwrap();
    browser.type_into("#token", &ana);
    browser.click("#signin");
    browser.wait_text("#who", "signed in as ana (manager)");
    let card = format!(".review[data-run=\"{run}\"]");
    let shown = browser.wait_text(&card, "draft 1");
    for needle in [
        "T-1001",
        "Ada Lovelace",
        "$129.00 of $129.00",
        "the item arrived damaged",
    ] {
        assert!(shown.contains(needle), "{needle} missing from {shown}");
    }

    browser.type_into(&format!("{card} textarea"), "make it $60");
    browser.click(&format!("{card} button.request_changes"));
    browser.wait_text("#message", "request_changes review-T-1001: delivered");
    let second = wait_pending(&api, run);
    assert_ne!(second.wait_id, first.wait_id);
    browser.click("#signin"); // reload the list
    let shown = browser.wait_text(&card, "draft 2");
    assert!(shown.contains("$60.00 of $129.00"), "{shown}");

    // Four eyes: ana asked for the changes, so her approval is refused on the page.
    browser.click(&format!("{card} button.approved"));
    browser.wait_text("#message", "refused: four eyes");

    let bo = issue_token(dir.path(), "bo", Role::Manager, None).unwrap();
    browser.type_into("#token", &bo);
    browser.click("#signin");
    browser.wait_text("#who", "signed in as bo");
    browser.wait_text(&card, "draft 2");
    browser.click(&format!("{card} button.approved"));
    browser.wait_text("#message", "approved review-T-1001: delivered");
    browser.wait_text("#reviews", "Nothing is waiting.");
    let outcome = wait_outcome(&api, run);
    assert!(
        matches!(
            &outcome,
            RefundOutcome::Refunded { amount_cents: 6_000, reviewer_id, .. } if reviewer_id == "bo"
        ),
        "{outcome:?}"
    );
}
