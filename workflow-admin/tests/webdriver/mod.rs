//! A small WebDriver client for the browser tests: one chromedriver process and one headless
//! Chromium session, with the few commands the tests use. Shared by the admin console's test
//! (`mod webdriver;`) and the refund example's inbox test (included by path), so that a fix
//! to it, such as retrying clicks on stale elements, reaches both.

// Each test uses a different subset of the commands.
#![allow(dead_code)]

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A chromedriver process and one headless Chromium session; both end on drop.
pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    http: ureq::Agent,
    profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver and a session, installing the browser first where it is missing;
    /// `None` when the environment variable `skip_var` is `1` (the test is then skipped).
    pub fn start(skip_var: &str) -> Option<Self> {
        if std::env::var(skip_var).is_ok_and(|v| v == "1") {
            eprintln!("{skip_var}=1: the browser test is skipped");
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
             them by hand, or set {skip_var}=1"
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
                     `chromium-driver` (.ci/run does), or set {skip_var}=1"
                )
            });
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

    pub fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
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

    pub fn session(&self, path: &str) -> String {
        format!("/session/{}{path}", self.session)
    }

    pub fn goto(&self, url: &str) {
        self.call("POST", &self.session("/url"), Some(json!({ "url": url })));
    }

    pub fn find(&self, css: &str) -> String {
        self.wait(&format!("element `{css}`"), || {
            let v = self.call(
                "POST",
                &self.session("/element"),
                Some(json!({ "using": "css selector", "value": css })),
            );
            v[ELEMENT_KEY].as_str().map(str::to_owned)
        })
    }

    pub fn text(&self, element: &str) -> String {
        self.call(
            "GET",
            &self.session(&format!("/element/{element}/text")),
            None,
        )
        .as_str()
        .unwrap_or("")
        .to_owned()
    }

    pub fn attribute(&self, element: &str, name: &str) -> Option<String> {
        self.call(
            "GET",
            &self.session(&format!("/element/{element}/attribute/{name}")),
            None,
        )
        .as_str()
        .map(str::to_owned)
    }

    pub fn count(&self, css: &str) -> usize {
        self.call(
            "POST",
            &self.session("/elements"),
            Some(json!({ "using": "css selector", "value": css })),
        )
        .as_array()
        .map_or(0, Vec::len)
    }

    pub fn type_into(&self, css: &str, text: &str) {
        let el = self.find(css);
        self.call("POST", &self.session(&format!("/element/{el}/clear")), None);
        self.call(
            "POST",
            &self.session(&format!("/element/{el}/value")),
            Some(json!({ "text": text })),
        );
    }

    /// Clicks the element matching `css`. The page re-renders after every load, so an element
    /// found a moment ago may be gone by the click: WebDriver then answers "stale element
    /// reference" and the click is retried on the element that replaced it.
    pub fn click(&self, css: &str) {
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
    pub fn answer_prompt(&self, text: &str) {
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

    pub fn wait_text(&self, css: &str, needle: &str) -> String {
        self.wait(&format!("`{needle}` in `{css}`"), || {
            let t = self.text(&self.find(css));
            t.contains(needle).then_some(t)
        })
    }

    pub fn wait<T>(&self, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
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
