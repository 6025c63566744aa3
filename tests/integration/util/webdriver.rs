//! Real browsers over WebDriver: headless Chromium (chromedriver) and Firefox ESR
//! (geckodriver), on a phone or a desktop viewport, driving the test daemon as a member
//! would: typing into fields, pressing buttons, going Back and reloading. Every `check`
//! saves a screenshot under `target/browser-screenshots/` and runs axe-core on the page.
//!
//! Nothing here is skipped when a browser is missing: `tests/run.sh` installs them, and
//! a missing one fails the test with the command to run.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use super::TestDaemon;

#[derive(Clone, Copy, Debug)]
pub enum Engine {
    Chromium,
    Firefox,
}

#[derive(Clone, Copy, Debug)]
pub enum Viewport {
    /// 390×844, an iPhone 14's CSS pixels: where most members are.
    Phone,
    Desktop,
}

impl Viewport {
    fn size(self) -> (u32, u32) {
        match self {
            Viewport::Phone => (390, 844),
            Viewport::Desktop => (1280, 900),
        }
    }
}

/// One browser on one daemon, for one test.
pub struct Web<'a> {
    pub daemon: &'a TestDaemon,
    pub client: Client,
    pub engine: Engine,
    pub viewport: Viewport,
    driver: Child,
    shots: PathBuf,
    step: u32,
    _profile: tempfile::TempDir,
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[derive(Debug)]
struct AddVirtualAuthenticator;

impl fantoccini::wd::WebDriverCompatibleCommand for AddVirtualAuthenticator {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        let session = session_id.unwrap_or_default();
        base_url.join(&format!("session/{session}/webauthn/authenticator"))
    }

    fn method_and_body(&self, _: &url::Url) -> (hyper::Method, Option<String>) {
        let options = json!({
            "protocol": "ctap2",
            "transport": "internal",
            "hasResidentKey": true,
            "hasUserVerification": true,
            "isUserConsenting": true,
            "isUserVerified": true,
            "automaticPresenceSimulation": true,
        });
        (hyper::Method::POST, Some(options.to_string()))
    }
}

/// Where screenshots go, one folder per test and browser.
pub fn screenshot_root() -> PathBuf {
    repo().join("target/browser-screenshots")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn spawn_driver(engine: Engine, port: u16) -> Child {
    let (program, args) = match engine {
        Engine::Chromium => ("chromedriver", vec![format!("--port={port}")]),
        Engine::Firefox => (
            "geckodriver",
            vec![
                "--port".into(),
                port.to_string(),
                "--log".into(),
                "error".into(),
            ],
        ),
    };
    Command::new(program)
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot start {program} ({e}): run `bash tests/run.sh`, which installs the browsers and drivers")
        })
}

fn capabilities(
    engine: Engine,
    viewport: Viewport,
    profile: &Path,
) -> serde_json::Map<String, Value> {
    let (width, height) = viewport.size();
    let caps = match engine {
        Engine::Chromium => {
            let mut options = json!({
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--no-first-run", "--disable-quic", "--lang=ja",
                    format!("--window-size={width},{height}"),
                    format!("--user-data-dir={}", profile.display()),
                ],
            });
            if let Viewport::Phone = viewport {
                options["mobileEmulation"] = json!({
                    "deviceMetrics": {"width": width, "height": height, "pixelRatio": 2, "mobile": true, "touch": true},
                });
            }
            json!({"browserName": "chrome", "goog:chromeOptions": options})
        }
        Engine::Firefox => {
            firefox_profile(profile, viewport);
            json!({
                "browserName": "firefox",
                "moz:firefoxOptions": {
                    "binary": "/usr/bin/firefox-esr",
                    "args": ["-headless", "-profile", profile.display().to_string()],
                },
            })
        }
    };
    caps.as_object().unwrap().clone()
}

/// A fresh Firefox profile. Its toolbars' minimum widths would keep the window at 500
/// CSS pixels or more: `userChrome.css` lifts them, so a phone's 390 fits.
fn firefox_profile(dir: &Path, viewport: Viewport) {
    let ratio = match viewport {
        Viewport::Phone => "2.0",
        Viewport::Desktop => "1.0",
    };
    let prefs = [
        (
            "toolkit.legacyUserProfileCustomizations.stylesheets",
            "true".to_string(),
        ),
        ("intl.accept_languages", "\"ja\"".into()),
        ("layout.css.devPixelsPerPx", format!("\"{ratio}\"")),
        ("network.captive-portal-service.enabled", "false".into()),
        ("network.connectivity-service.enabled", "false".into()),
        ("browser.safebrowsing.malware.enabled", "false".into()),
        ("browser.safebrowsing.phishing.enabled", "false".into()),
        ("signon.rememberSignons", "false".into()),
    ];
    let user_js: String = prefs
        .iter()
        .map(|(name, value)| format!("user_pref(\"{name}\", {value});\n"))
        .collect();
    std::fs::write(dir.join("user.js"), user_js).unwrap();
    std::fs::create_dir_all(dir.join("chrome")).unwrap();
    let css = ":root, #main-window, #navigator-toolbox, #nav-bar, #TabsToolbar, toolbar, #urlbar-container, #search-container { min-width: 0 !important; }\n";
    std::fs::write(dir.join("chrome/userChrome.css"), css).unwrap();
}

impl<'a> Web<'a> {
    /// Starts the browser and its driver; `name` names the screenshot folder.
    pub async fn start(
        daemon: &'a TestDaemon,
        engine: Engine,
        viewport: Viewport,
        name: &str,
    ) -> Web<'a> {
        let port = free_port();
        let driver = spawn_driver(engine, port);
        let profile = tempfile::tempdir().unwrap();
        let caps = capabilities(engine, viewport, profile.path());
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(client) => break client,
                Err(e) if Instant::now() > deadline => panic!("{engine:?} did not start: {e}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        };
        let shots =
            screenshot_root().join(format!("{name}-{engine:?}-{viewport:?}").to_lowercase());
        let _ = std::fs::remove_dir_all(&shots);
        std::fs::create_dir_all(&shots).unwrap();
        let mut web = Web {
            daemon,
            client,
            engine,
            viewport,
            driver,
            shots,
            step: 0,
            _profile: profile,
        };
        web.fit().await;
        web
    }

    /// Makes the page area exactly the viewport's size, whatever the window adds.
    async fn fit(&mut self) {
        let (width, height) = self.viewport.size();
        // Measured on one of our pages: a phone lays out by its `<meta name=viewport>`.
        self.open("/").await;
        if let (Engine::Chromium, Viewport::Phone) = (self.engine, self.viewport) {
            assert_eq!(self.inner_size().await, (width, height), "emulated phone");
            return;
        }
        // Window sizes are in CSS pixels, like the viewport.
        self.client.set_window_size(width, height).await.unwrap();
        let (inner_w, inner_h) = self.inner_size().await;
        let extra = (
            width.saturating_sub(inner_w),
            height.saturating_sub(inner_h),
        );
        if extra != (0, 0) {
            self.client
                .set_window_size(width + extra.0, height + extra.1)
                .await
                .unwrap();
        }
        assert_eq!(self.inner_size().await, (width, height), "viewport size");
    }

    pub async fn inner_size(&self) -> (u32, u32) {
        let size = self
            .script("return [window.innerWidth, window.innerHeight];")
            .await;
        (
            size[0].as_u64().unwrap() as u32,
            size[1].as_u64().unwrap() as u32,
        )
    }

    pub async fn script(&self, source: &str) -> Value {
        self.client.execute(source, vec![]).await.unwrap()
    }

    /// Runs a script that answers later: it calls `done(value)` (its last argument).
    pub async fn script_async(&self, source: &str) -> Value {
        let wrapped = format!("const done = arguments[arguments.length - 1];\n{source}");
        self.client.execute_async(&wrapped, vec![]).await.unwrap()
    }

    /// Opens a path on the daemon, or a full URL (a mailed link).
    pub async fn open(&self, path_or_url: &str) {
        let url = match path_or_url.starts_with("http") {
            true => path_or_url.to_string(),
            false => format!("{}{path_or_url}", self.daemon.base_url()),
        };
        self.client.goto(&url).await.unwrap();
    }

    /// The path (and query) the browser shows.
    pub async fn path(&self) -> String {
        let url = self.client.current_url().await.unwrap();
        match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        }
    }

    /// Types into the field with this id, replacing what it held.
    pub async fn fill(&self, id: &str, value: &str) {
        let field = self.client.find(Locator::Id(id)).await.unwrap();
        field.clear().await.unwrap();
        field.send_keys(value).await.unwrap();
    }

    /// The value a field holds now (what the page kept after an error).
    pub async fn value(&self, id: &str) -> String {
        let field = self.client.find(Locator::Id(id)).await.unwrap();
        field.prop("value").await.unwrap().unwrap_or_default()
    }

    /// Gives Chromium a virtual authenticator (WebDriver's WebAuthn extension): a
    /// platform authenticator that keeps discoverable credentials and verifies the user
    /// at once, as a phone's screen lock would.
    pub async fn add_virtual_authenticator(&self) {
        self.client
            .issue_cmd(AddVirtualAuthenticator)
            .await
            .expect("a virtual authenticator");
    }

    /// Presses a button that does not lead to a new page (a script answers in place).
    pub async fn click(&self, css: &str) {
        let button = self.client.find(Locator::Css(css)).await.unwrap();
        button.click().await.unwrap();
    }

    /// Clicks a checkbox (by id), as a member ticks or unticks it: no new page.
    pub async fn toggle(&self, id: &str) {
        let field = self.client.find(Locator::Id(id)).await.unwrap();
        field.click().await.unwrap();
    }

    /// Presses the button matched by this CSS selector and waits for the next page.
    pub async fn press(&self, css: &str) {
        let button = self.client.find(Locator::Css(css)).await.unwrap();
        let old = self.client.find(Locator::Css("html")).await.unwrap();
        button.click().await.unwrap();
        self.wait_for_new_page(old).await;
    }

    /// Presses the (first) button or link whose text is exactly `label`.
    pub async fn press_labelled(&self, label: &str) {
        let xpath = format!(
            "(//button[normalize-space()='{label}'] | //a[normalize-space()='{label}'])[1]"
        );
        let target = self.client.find(Locator::XPath(&xpath)).await.unwrap();
        let old = self.client.find(Locator::Css("html")).await.unwrap();
        target.click().await.unwrap();
        self.wait_for_new_page(old).await;
    }

    async fn wait_for_new_page(&self, old: fantoccini::elements::Element) {
        let deadline = Instant::now() + Duration::from_secs(15);
        // The old document's root goes stale once the next page has loaded.
        while old.tag_name().await.is_ok() {
            assert!(Instant::now() < deadline, "no new page after the click");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        self.wait_loaded().await;
    }

    async fn wait_loaded(&self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while self.script("return document.readyState;").await != "complete" {
            assert!(Instant::now() < deadline, "page did not finish loading");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    pub async fn back(&self) {
        self.client.back().await.unwrap();
        self.wait_loaded().await;
    }

    pub async fn reload(&self) {
        self.client.refresh().await.unwrap();
        self.wait_loaded().await;
    }

    /// Scrolls the part of the page a step is about into view, for its screenshot.
    pub async fn scroll_to(&self, css: &str) {
        let element = self.client.find(Locator::Css(css)).await.unwrap();
        let script = "arguments[0].scrollIntoView({block: 'center'});";
        let arg = serde_json::to_value(&element).unwrap();
        self.client.execute(script, vec![arg]).await.unwrap();
    }

    /// The page's visible text.
    pub async fn text(&self) -> String {
        let body = self.client.find(Locator::Css("body")).await.unwrap();
        body.text().await.unwrap()
    }

    pub async fn heading(&self) -> String {
        let h1 = self.client.find(Locator::Css("h1")).await.unwrap();
        h1.text().await.unwrap()
    }

    /// The id of the element that has the keyboard focus.
    pub async fn focused_id(&self) -> String {
        let id = self
            .script("return document.activeElement ? document.activeElement.id : '';")
            .await;
        id.as_str().unwrap_or("").to_string()
    }

    /// Waits (up to 10 s) for a script to put `expected` on the page.
    pub async fn wait_for_text(&self, expected: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.text().await.contains(expected) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.expect_text(expected).await;
    }

    /// Asserts the page shows `expected` somewhere in its text.
    pub async fn expect_text(&self, expected: &str) {
        let text = self.text().await;
        assert!(
            text.contains(expected),
            "expected 「{expected}」 on {} in:\n{text}",
            self.path().await
        );
    }

    /// A step a person could look at: a screenshot, and axe-core finds no violation.
    pub async fn check(&mut self, step: &str) {
        self.step += 1;
        let png = self.client.screenshot().await.unwrap();
        let file = self.shots.join(format!("{:02}-{step}.png", self.step));
        std::fs::write(&file, png).unwrap();
        let violations = self.axe().await;
        let path = self.path().await;
        log_check(&self.shots, step, &path, violations.len());
        assert!(
            violations.is_empty(),
            "axe-core on {path} ({step}): {}",
            serde_json::to_string_pretty(&violations).unwrap()
        );
    }

    /// axe-core's violations on this page (every rule of its default run).
    async fn axe(&self) -> Vec<Value> {
        self.client.execute(axe_source(), vec![]).await.unwrap();
        let run = "const done = arguments[arguments.length - 1];
            axe.run(document).then(r => done(r.violations.map(v => ({
                id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.map(n => n.target.join(' ') + ': ' + n.failureSummary)
            }))), e => done([{id: 'axe-error', help: String(e)}]));";
        let result = self.client.execute_async(run, vec![]).await.unwrap();
        result.as_array().cloned().unwrap_or_default()
    }

    pub async fn finish(mut self) {
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Web<'_> {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

fn axe_source() -> &'static str {
    static SOURCE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SOURCE.get_or_init(|| {
        let path = repo().join("tests/browser/node_modules/axe-core/axe.min.js");
        let source = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e}: run `bash tests/run.sh`, which installs axe-core",
                path.display()
            )
        });
        format!("{source}\nreturn true;")
    })
}

/// One line per checked page, for the suite's summary.
fn log_check(shots: &Path, step: &str, path: &str, violations: usize) {
    use std::io::Write;
    let folder = shots.file_name().unwrap().to_string_lossy();
    let line = format!("{folder}\t{step}\t{path}\t{violations}\n");
    let log = screenshot_root().join("axe.tsv");
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    file.write_all(line.as_bytes()).unwrap();
}
