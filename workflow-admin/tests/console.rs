//! The web console in headless Chromium, driven over the WebDriver protocol (chromedriver):
//! sign in with the token, list runs, filter them, open a run (state, pending wait with its
//! metadata, the diagram with the current state highlighted, the trace) and cancel it behind
//! its confirmation.
//!
//! Needs Debian's `chromium` and `chromium-driver`: `scripts/ensure-chromium` installs them
//! when missing; where it cannot, the test fails and says so. `WORKFLOW_ADMIN_SKIP_BROWSER=1`
//! skips it explicitly.

mod support;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{TOKEN, serve};
use workflow_runtime::RunStatus;

const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A chromedriver process and one headless Chromium session; both end on drop.
struct Browser {
    driver: Child,
    base: String,
    session: String,
    http: ureq::Agent,
    profile: tempfile::TempDir,
}

impl Browser {
    fn start() -> Option<Self> {
        if std::env::var("WORKFLOW_ADMIN_SKIP_BROWSER").is_ok_and(|v| v == "1") {
            eprintln!("WORKFLOW_ADMIN_SKIP_BROWSER=1: the browser test is skipped");
            return None;
        }
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/ensure-chromium");
        let installed = Command::new(script)
            .status()
            .unwrap_or_else(|e| panic!("cannot run {script}: {e}"));
        assert!(
            installed.success(),
            "{script} could not install chromium and chromium-driver ({installed}); install \
             them by hand, or set WORKFLOW_ADMIN_SKIP_BROWSER=1"
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
            .unwrap_or_else(|e| panic!("cannot start chromedriver: {e}"));
        let http: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        let mut browser = Self {
            driver,
            base: format!("http://127.0.0.1:{port}"),
            session: String::new(),
            http,
            profile: tempfile::tempdir().unwrap(),
        };
        browser.wait("chromedriver to start", || {
            browser
                .http
                .get(&format!("{}/status", browser.base))
                .call()
                .ok()
                .and_then(|mut r| r.body_mut().read_json::<Value>().ok())
                .is_some_and(|v| v["value"]["ready"] == true)
                .then_some(())
        });
        let caps = json!({ "capabilities": { "alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage",
                         format!("--user-data-dir={}", browser.profile.path().display())]
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
        let res = match method {
            "POST" => self.http.post(&url).send_json(body.unwrap_or(json!({}))),
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
        self.call(
            "POST",
            &self.session(&format!("/element/{el}/value")),
            Some(json!({ "text": text })),
        );
    }

    /// Clicks the element matching `css`. The page re-renders after every load, so an element
    /// found a moment ago may be gone by the click: WebDriver then answers "stale element
    /// reference" and the click is retried on the element that replaced it.
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

    /// Answers the page's `prompt` with `text`, once it is open.
    fn answer_prompt(&self, text: &str) {
        self.wait("the confirmation prompt", || {
            let v = self.call("GET", &self.session("/alert/text"), None);
            v.is_string().then_some(())
        });
        self.call(
            "POST",
            &self.session("/alert/text"),
            Some(json!({ "text": text })),
        );
        self.call("POST", &self.session("/alert/accept"), None);
    }

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
            assert!(Instant::now() < deadline, "gave up waiting for {what}");
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
fn an_operator_finds_and_cancels_a_run_in_the_console() {
    let Some(browser) = Browser::start() else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let served = rt.block_on(async {
        let s = serve().await;
        s.engine.start(support::order, "order-a", 10).await.unwrap();
        s.engine.start(support::order, "order-b", 13).await.unwrap();
        s.engine.signal("order-b", "approve", true).await.unwrap();
        workflow_runtime::testing::settle(&s.engine).await;
        s
    });

    browser.goto(&format!("{}/console", served.base));
    browser.type_into("#token", TOKEN);
    browser.click("#login button");
    browser.wait_text("#runs", "order-b");
    let listed = browser.wait_text("#runs", "order-a");
    assert!(listed.contains("waiting (approve)"), "{listed}");
    assert!(listed.contains("failed"), "{listed}");

    // Filter: only the waiting run stays.
    let select = browser.find("#f-status");
    browser.call(
        "POST",
        &browser.session(&format!("/element/{select}/value")),
        Some(json!({ "text": "waiting" })),
    );
    browser.click("#filters button");
    browser.wait("the filter to apply", || {
        let t = browser.text(&browser.find("#runs"));
        (!t.contains("order-b")).then_some(())
    });

    browser.click("tr[data-run=\"order-a\"] a");
    browser.wait_text("#run-status", "waiting (approve)");
    let wait = browser.wait_text("#run-wait", "approve");
    assert!(wait.contains("\"amount\": 10"), "{wait}");
    // The diagram's current state is the wait, highlighted.
    browser.wait_text("#run-diagram .current", "wait approve");
    browser.wait_text("#run-trace", "wait_started");

    browser.click("#do-cancel");
    browser.answer_prompt("customer withdrew");
    browser.wait_text("#run-status", "cancelled (customer withdrew)");
    browser.wait_text("#run-trace", "cancel_requested");
    assert_eq!(
        served.engine.status("order-a").unwrap(),
        RunStatus::Cancelled {
            reason: "customer withdrew".into()
        }
    );
    rt.block_on(served.engine.shutdown());
}
