//! Remote browsers through Selenium Grid 4: one more way to get a browser, so that everything
//! after it (the page, the data channel, loads and runs) is the code local browsers use.
//!
//! A hub's `/status` lists its nodes and their slots; each slot is offered as `grid:<name>`,
//! `<name>` being its `webaccel:name` capability (Grid matches custom prefixed capabilities,
//! so a request for `webaccel:name` lands on that node), else `<browserName>@<node host>`. A
//! session is created on the hub (`POST /session`, which wants `application/json;
//! charset=utf-8`), asking for `se:cdpEnabled` (Chromium family: the hub then answers with
//! `se:cdp`, a browser-level DevTools endpoint proxied through it) or `webSocketUrl` (Firefox:
//! a BiDi endpoint through the hub, on a session that already exists), and for
//! `acceptInsecureCerts`, since remote pages are served over TLS with a self-signed certificate.
//! The session is kept alive across quiet phases (a hub reaps idle sessions) and deleted when the
//! browser is dropped.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::time::Duration;

use serde::Serialize;
use serde_json::{json, Value};

use std::path::PathBuf;
use std::sync::Arc;

use crate::bidi::Bidi;
use crate::error::{BrowserError, Result};
use crate::launch::{
    connect_cdp, refused_switch, BrowserKind, Control, Host, LaunchedBrowser, CHROMIUM_SWITCHES, FIREFOX_PREFS,
};

/// How long the hub may take to start a browser for a session request. A free matching slot
/// starts in seconds; a request still waiting after this is a slot that is busy or gone.
const CREATE_TIMEOUT: Duration = Duration::from_secs(60);
/// Short calls (`/status`, keep-alive, delete).
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the hub is asked whether it still holds a session after its browser went away.
const GONE_CHECK: Duration = Duration::from_secs(5);
/// A WebDriver command this often counts as activity, so the hub's session timeout does not
/// reap a browser that sits warm in the pool.
const KEEPALIVE: Duration = Duration::from_secs(30);

/// Where the hubs are, and the address remote pages reach this machine at.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct GridConfig {
    /// Hub base URLs (`http://host:4444`).
    pub hubs: Vec<String>,
    /// The address the asset server listens on for remote pages, with a port (0: any free one,
    /// for networks that let the nodes reach any port here); None: the local address that routes
    /// to the hub, on any port.
    pub advertise: Option<SocketAddr>,
}

impl GridConfig {
    /// `WEBACCEL_GRID` (hub URLs, comma-separated) and `WEBACCEL_ADVERTISE`.
    pub fn from_env() -> Result<Self> {
        let hubs = std::env::var("WEBACCEL_GRID").unwrap_or_default();
        let hubs = parse_hubs(hubs.split(',').filter(|h| !h.trim().is_empty()))?;
        let advertise = match std::env::var("WEBACCEL_ADVERTISE") {
            Ok(ip) if !ip.trim().is_empty() => Some(parse_advertise(&ip)?),
            _ => None,
        };
        Ok(GridConfig { hubs, advertise })
    }

    /// The address remote pages load from: `advertise`, else the local address the system
    /// would use to reach `hub` (no packet is sent), on any port.
    pub fn advertise_for(&self, hub: &str) -> Result<SocketAddr> {
        if let Some(addr) = self.advertise {
            return Ok(addr);
        }
        let url = reqwest::Url::parse(hub).map_err(|e| bad_hub(hub, &e.to_string()))?;
        let port = url.port_or_known_default().unwrap_or(4444);
        let host = url.host_str().ok_or_else(|| bad_hub(hub, "it names no host"))?;
        let target: SocketAddr = std::net::ToSocketAddrs::to_socket_addrs(&(host, port))
            .map_err(|e| bad_hub(hub, &e.to_string()))?
            .next()
            .ok_or_else(|| bad_hub(hub, "its host does not resolve"))?;
        let probe = UdpSocket::bind(if target.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" })
            .and_then(|s| s.connect(target).map(|_| s))
            .and_then(|s| s.local_addr())
            .map_err(|e| BrowserError::Grid(format!("no local address routes to the hub {hub}: {e}; set advertise")))?;
        Ok(SocketAddr::new(probe.ip(), 0))
    }
}

fn bad_hub(hub: &str, why: &str) -> BrowserError {
    BrowserError::Grid(format!("{hub:?} is not a hub URL like http://hub:4444 ({why})"))
}

/// Hub URLs, checked and without a trailing slash.
pub fn parse_hubs<S: AsRef<str>>(hubs: impl IntoIterator<Item = S>) -> Result<Vec<String>> {
    hubs.into_iter()
        .map(|h| {
            let h = h.as_ref().trim().trim_end_matches('/');
            let url = reqwest::Url::parse(h).map_err(|e| bad_hub(h, &e.to_string()))?;
            if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
                return Err(bad_hub(h, "it must be http:// or https:// with a host"));
            }
            Ok(h.to_string())
        })
        .collect()
}

/// `IP` (any port) or `IP:PORT` (`[v6]:PORT`): where remote pages reach this machine.
pub fn parse_advertise(addr: &str) -> Result<SocketAddr> {
    let addr = addr.trim();
    addr.parse::<SocketAddr>().or_else(|_| addr.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 0))).map_err(|_| {
        BrowserError::Grid(format!(
            "advertise {addr:?} is not an IP address of this machine, with or without a port (10.0.0.5 or 10.0.0.5:8443)"
        ))
    })
}

/// How `advertise` is shown: without a port when any port will do.
pub fn show_advertise(addr: SocketAddr) -> String {
    if addr.port() == 0 {
        addr.ip().to_string()
    } else {
        addr.to_string()
    }
}

/// One slot a hub offers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Slot {
    /// As scripts name it, without the `grid:` prefix.
    pub name: String,
    pub hub: String,
    /// The slot's `browserName` (`chrome`, `MicrosoftEdge`, `firefox`, `safari`).
    pub browser_name: String,
    pub node_uri: String,
    /// The node's operating system, as it reports it (`Linux 6.1 amd64`).
    pub os: String,
    /// A session is running in it now.
    pub busy: bool,
    /// Whether the slot was tagged with `webaccel:name` (then the request names it).
    pub tagged: bool,
    /// Its stereotype's `webaccel:*` capabilities, `name` among them, without the prefix; string
    /// values as they are, others as JSON.
    pub tags: BTreeMap<String, String>,
}

impl Slot {
    /// How webaccel drives this slot's browser.
    pub fn kind(&self) -> BrowserKind {
        if self.browser_name.eq_ignore_ascii_case("firefox") {
            BrowserKind::Firefox
        } else {
            BrowserKind::Chromium
        }
    }

    pub fn full_name(&self) -> String {
        format!("grid:{}", self.name)
    }
}

pub(crate) fn client() -> Result<reqwest::Client> {
    // reqwest is built without a bundled crypto provider; the workspace builds ring.
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
    reqwest::Client::builder()
        .connect_timeout(CALL_TIMEOUT)
        .build()
        .map_err(|e| BrowserError::Grid(format!("cannot set up the HTTP client: {e}")))
}

fn unreachable(hub: &str, e: impl std::fmt::Display) -> BrowserError {
    BrowserError::Grid(format!(
        "the Selenium Grid hub {hub} did not answer ({e}); start it (java -jar selenium-server.jar hub), check the \
         address, or change configure_browsers(#{{grid: ...}}) / WEBACCEL_GRID"
    ))
}

/// The slots `/status` lists on every hub, in hub and node order.
pub async fn slots(http: &reqwest::Client, hubs: &[String]) -> Result<Vec<Slot>> {
    let mut out = Vec::new();
    for hub in hubs {
        let status: Value = http
            .get(format!("{hub}/status"))
            .timeout(CALL_TIMEOUT)
            .send()
            .await
            .map_err(|e| unreachable(hub, e))?
            .json()
            .await
            .map_err(|e| unreachable(hub, e))?;
        out.extend(parse_status(hub, &status));
    }
    Ok(out)
}

/// The slots of one hub's `/status` answer.
fn parse_status(hub: &str, status: &Value) -> Vec<Slot> {
    let mut out = Vec::new();
    for node in status["value"]["nodes"].as_array().into_iter().flatten() {
        if node["availability"] != "UP" {
            continue;
        }
        let uri = node["uri"].as_str().unwrap_or_default().to_string();
        let host = reqwest::Url::parse(&uri).ok().and_then(|u| u.host_str().map(str::to_string)).unwrap_or_default();
        let os =
            ["name", "version", "arch"].iter().filter_map(|k| node["osInfo"][k].as_str()).collect::<Vec<_>>().join(" ");
        for slot in node["slots"].as_array().into_iter().flatten() {
            let stereotype = &slot["stereotype"];
            let browser_name = stereotype["browserName"].as_str().unwrap_or("chrome").to_string();
            let tag = stereotype["webaccel:name"].as_str();
            let tags = stereotype
                .as_object()
                .into_iter()
                .flatten()
                .filter_map(|(k, v)| {
                    let key = k.strip_prefix("webaccel:")?;
                    Some((key.to_string(), v.as_str().map_or_else(|| v.to_string(), str::to_string)))
                })
                .collect();
            out.push(Slot {
                name: tag.map_or_else(|| format!("{browser_name}@{host}"), str::to_string),
                hub: hub.to_string(),
                browser_name,
                node_uri: uri.clone(),
                os: os.clone(),
                busy: !slot["session"].is_null(),
                tagged: tag.is_some(),
                tags,
            });
        }
    }
    out
}

/// A session on a hub, deleted when dropped.
pub(crate) struct GridSession {
    pub slot: Slot,
    pub id: String,
    /// The capabilities the hub answered with.
    pub capabilities: Value,
    http: reqwest::Client,
    keepalive: tokio::task::JoinHandle<()>,
}

impl GridSession {
    /// Asks `slot`'s hub for a session with `capabilities` (merged over what names the slot).
    pub async fn create(http: &reqwest::Client, slot: &Slot, mut capabilities: Value) -> Result<Self> {
        capabilities["browserName"] = json!(slot.browser_name);
        capabilities["acceptInsecureCerts"] = json!(true);
        if slot.tagged {
            capabilities["webaccel:name"] = json!(slot.name);
        }
        let body = json!({"capabilities": {"alwaysMatch": capabilities}});
        let asked = body["capabilities"]["alwaysMatch"].to_string();
        let refused = |why: String| {
            BrowserError::Grid(format!(
                "the hub {} gave no session for grid:{} ({why}); asked for {asked}. Check that the node is up and free \
                 (detect() lists the slots), or that its driver can start the browser",
                slot.hub, slot.name
            ))
        };
        let response = http
            .post(format!("{}/session", slot.hub))
            .header(reqwest::header::CONTENT_TYPE, "application/json; charset=utf-8")
            .body(body.to_string())
            .timeout(CREATE_TIMEOUT)
            .send()
            .await
            .map_err(|e| {
                if e.is_timeout() {
                    refused(format!("no slot was free within {} s", CREATE_TIMEOUT.as_secs()))
                } else {
                    unreachable(&slot.hub, e)
                }
            })?;
        let status = response.status();
        let answer: Value = response.json().await.map_err(|e| refused(format!("HTTP {status}, {e}")))?;
        if !status.is_success() {
            let message = answer["value"]["message"].as_str().unwrap_or("no message");
            return Err(refused(format!("HTTP {status}: {}", message.lines().next().unwrap_or(message))));
        }
        let id = answer["value"]["sessionId"].as_str().ok_or_else(|| refused("no sessionId".into()))?.to_string();
        let capabilities = answer["value"]["capabilities"].clone();
        let keepalive = tokio::spawn(keep_alive(http.clone(), slot.hub.clone(), id.clone()));
        Ok(GridSession { slot: slot.clone(), id, capabilities, http: http.clone(), keepalive })
    }

    /// Whether the hub has ended the session (Some, with what it says of it), or still holds it
    /// (None). Asked two ways for a few seconds, since a hub tearing a session down may hold a
    /// request routed to the closing node for longer than that, or answer it with a 500:
    /// WebDriver's "invalid session id" for a command (the hub's 404 carries the reason), and
    /// the slots of `/status`, which the hub answers from its own map.
    async fn ended(&self) -> reqwest::Result<Option<String>> {
        let url = format!("{}/session/{}/url", self.slot.hub, self.id);
        let started = std::time::Instant::now();
        let mut last = None;
        while started.elapsed() < GONE_CHECK {
            match self.http.get(&url).timeout(Duration::from_secs(2)).send().await {
                Ok(answer) => {
                    let status = answer.status();
                    let body: Value = answer.json().await.unwrap_or(Value::Null);
                    tracing::debug!(%status, error = %body["value"]["error"], "the hub on a session that went away");
                    if status == reqwest::StatusCode::NOT_FOUND || body["value"]["error"] == "invalid session id" {
                        let said = body["value"]["message"].as_str().and_then(|m| m.lines().next()).unwrap_or("");
                        return Ok(Some(format!(" (it says: {said})")));
                    }
                    last = Some(Ok(None));
                }
                Err(e) => last = Some(Err(e)),
            }
            match self.http.get(format!("{}/status", self.slot.hub)).timeout(Duration::from_secs(2)).send().await {
                Ok(answer) => {
                    let status: Value = answer.json().await.unwrap_or(Value::Null);
                    let listed = status["value"]["nodes"].as_array().into_iter().flatten().any(|node| {
                        node["slots"].as_array().into_iter().flatten().any(|s| s["session"]["sessionId"] == self.id)
                    });
                    if !listed {
                        return Ok(Some(" (no slot of its nodes holds it)".into()));
                    }
                    last = Some(Ok(None));
                }
                Err(e) => last = last.or(Some(Err(e))),
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        last.unwrap_or(Ok(None))
    }

    /// Why the session's browser went away, as far as the hub can tell: a hub that no longer
    /// knows the session reaped it (idle past the node's `--session-timeout`) or had it deleted;
    /// otherwise its node or browser stopped.
    pub async fn gone(&self, during: &str) -> BrowserError {
        let ended = self.ended().await;
        let why = match ended {
            Ok(Some(said)) => format!(
                "the hub no longer knows the session{said}: it was reaped for idleness (a node ends a \
                 session quiet for longer than its --session-timeout, 300 s unless set; webaccel touches it every {} \
                 s) or deleted by someone else. Raise the node's --session-timeout if the hub is slow to answer \
                 keep-alives",
                KEEPALIVE.as_secs()
            ),
            Ok(None) => format!("its browser stopped while the node at {} lives on", self.slot.node_uri),
            Err(e) => format!(
                "neither the browser nor the hub answers ({e}); check the node at {} and the hub",
                self.slot.node_uri
            ),
        };
        BrowserError::RemoteGone {
            browser: self.slot.full_name(),
            session: self.id.clone(),
            hub: self.slot.hub.clone(),
            during: during.to_string(),
            why,
        }
    }

    /// Deletes the session on the hub (its node then closes the browser).
    pub async fn delete(&self) {
        self.keepalive.abort();
        let url = format!("{}/session/{}", self.slot.hub, self.id);
        if let Err(e) = self.http.delete(&url).timeout(CALL_TIMEOUT).send().await {
            tracing::debug!("deleting the Grid session {url}: {e}");
        }
    }
}

impl Drop for GridSession {
    fn drop(&mut self) {
        self.keepalive.abort();
        // `delete` is awaited on shutdown; a session dropped elsewhere is deleted in the
        // background while the runtime lives.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let (http, url) = (self.http.clone(), format!("{}/session/{}", self.slot.hub, self.id));
            runtime.spawn(async move {
                let _ = http.delete(&url).timeout(CALL_TIMEOUT).send().await;
            });
        }
    }
}

async fn keep_alive(http: reqwest::Client, hub: String, id: String) {
    loop {
        tokio::time::sleep(KEEPALIVE).await;
        let url = format!("{hub}/session/{id}/url");
        if let Err(e) = http.get(&url).timeout(CALL_TIMEOUT).send().await {
            tracing::debug!("Grid keep-alive {url}: {e}");
        }
    }
}

/// What a remote browser is started with: webaccel's switches (the driver picks the debugging
/// port and the profile), headless, and the user's `extra`. As root on Linux Chromium needs
/// `--no-sandbox`; on other systems the sandbox stays. Returns the capabilities and the switches
/// to record.
fn chromium_capabilities(slot: &Slot, extra: &[String]) -> (Value, Vec<String>) {
    let mut args: Vec<String> =
        CHROMIUM_SWITCHES.iter().filter(|s| !s.starts_with("--remote-debugging-port")).map(|s| s.to_string()).collect();
    args.push("--headless=new".into());
    if slot.os.to_ascii_lowercase().starts_with("linux") {
        args.push("--no-sandbox".into());
    }
    args.extend(extra.iter().cloned());
    let options =
        if slot.browser_name.eq_ignore_ascii_case("MicrosoftEdge") { "ms:edgeOptions" } else { "goog:chromeOptions" };
    (json!({"se:cdpEnabled": true, options: {"args": args}}), args)
}

/// Firefox's: headless, webaccel's prefs and the user's `--pref=` ones, BiDi through the hub.
fn firefox_capabilities(extra: &[String]) -> (Value, Vec<String>) {
    let mut prefs = serde_json::Map::new();
    let typed = |v: &str| -> Value {
        match v {
            "true" => json!(true),
            "false" => json!(false),
            _ => v.parse::<i64>().map_or_else(|_| json!(v), |n| json!(n)),
        }
    };
    for (name, value) in FIREFOX_PREFS {
        prefs.insert(name.to_string(), typed(value));
    }
    let mut args = vec!["-headless".to_string()];
    for flag in extra {
        match flag.strip_prefix("--pref=").and_then(|p| p.split_once('=')) {
            Some((name, value)) => {
                prefs.insert(name.to_string(), typed(value));
            }
            None => args.push(flag.clone()),
        }
    }
    let mut recorded = args.clone();
    recorded.extend(
        prefs.iter().map(|(k, v)| format!("--pref={k}={}", v.as_str().map_or_else(|| v.to_string(), str::to_string))),
    );
    (json!({"webSocketUrl": true, "moz:firefoxOptions": {"args": args, "prefs": prefs}}), recorded)
}

impl LaunchedBrowser {
    /// A browser in `slot`, through its hub: a session created there, then the same control
    /// protocol as a local browser (DevTools over `se:cdp`, or BiDi over the Grid's URL).
    pub(crate) async fn remote(http: &reqwest::Client, slot: &Slot, extra: &[String]) -> Result<Self> {
        let name = slot.full_name();
        if let Some((flag, why)) = extra.iter().find_map(|f| refused_switch(f).map(|why| (f, why))) {
            return Err(BrowserError::Grid(format!("{name}: the switch {flag} is refused: {why}")));
        }
        if slot.browser_name.eq_ignore_ascii_case("safari") {
            // safaridriver speaks classic WebDriver only; webaccel's control of a page (its
            // navigation, scripts and crash events) is CDP or BiDi.
            return Err(BrowserError::Grid(format!(
                "{name} is Safari, and safaridriver offers neither a DevTools (se:cdp) nor a WebDriver BiDi \
                 endpoint, which webaccel drives pages over; on that Mac, register Chrome, Edge or Firefox on the node"
            )));
        }
        let kind = slot.kind();
        let (capabilities, flags) = match kind {
            BrowserKind::Firefox => firefox_capabilities(extra),
            _ => chromium_capabilities(slot, extra),
        };
        let session = GridSession::create(http, slot, capabilities).await?;
        let caps = &session.capabilities;
        let failed =
            |why: String| BrowserError::Grid(format!("{name}: {why} (session {} on {})", session.id, slot.hub));
        let (control, alive, version) = match kind {
            BrowserKind::Firefox => {
                let url = caps["webSocketUrl"].as_str().ok_or_else(|| failed("the hub gave no webSocketUrl".into()))?;
                let version = caps["browserVersion"].as_str().unwrap_or_default();
                let bidi = Bidi::attach(url, &slot.browser_name, version).await.map_err(|e| failed(e.to_string()))?;
                let alive = bidi.liveness();
                (Control::Bidi(Arc::new(bidi)), alive, format!("Firefox/{version}"))
            }
            _ => {
                let url = caps["se:cdp"].as_str().ok_or_else(|| {
                    failed("the hub gave no se:cdp endpoint (is the node a Chromium-family browser with CDP?)".into())
                })?;
                connect_cdp(url.to_string()).await.map_err(failed)?
            }
        };
        tracing::debug!(browser = %name, %version, node = %slot.node_uri, "remote browser ready");
        Ok(LaunchedBrowser {
            kind,
            name,
            executable: PathBuf::from(&slot.node_uri),
            version,
            flags,
            control,
            alive,
            host: Host::Remote(session),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_named_by_their_tag_or_browser_and_host() {
        let status = json!({"value": {"ready": true, "nodes": [
            {"availability": "UP", "uri": "http://10.231.0.11:5555", "osInfo": {"name": "Linux", "version": "6.1", "arch": "amd64"},
             "slots": [{"session": null, "stereotype": {"browserName": "chrome", "webaccel:name": "lab-a", "webaccel:gpu": "RTX 4090", "webaccel:vram_gb": 24}}]},
            {"availability": "UP", "uri": "http://10.0.0.9:5555", "osInfo": {"name": "Windows 11"},
             "slots": [{"session": {"sessionId": "x"}, "stereotype": {"browserName": "MicrosoftEdge"}},
                       {"session": null, "stereotype": {"browserName": "firefox"}}]},
            {"availability": "DOWN", "uri": "http://10.0.0.8:5555", "slots": [{"stereotype": {"browserName": "chrome"}}]}
        ]}});
        let slots = parse_status("http://hub:4444", &status);
        let names: Vec<String> = slots.iter().map(Slot::full_name).collect();
        assert_eq!(names, ["grid:lab-a", "grid:MicrosoftEdge@10.0.0.9", "grid:firefox@10.0.0.9"]);
        assert_eq!((slots[0].os.as_str(), slots[0].tagged, slots[0].busy), ("Linux 6.1 amd64", true, false));
        assert_eq!(
            slots[0].tags,
            BTreeMap::from([
                ("gpu".into(), "RTX 4090".into()),
                ("name".into(), "lab-a".into()),
                ("vram_gb".into(), "24".into())
            ])
        );
        assert!(slots[1].busy && !slots[1].tagged && slots[1].tags.is_empty());
        assert_eq!((slots[1].kind(), slots[2].kind()), (BrowserKind::Chromium, BrowserKind::Firefox));
    }

    #[test]
    fn hub_urls_and_addresses_are_checked() {
        assert_eq!(
            parse_hubs(["http://10.231.0.1:4444/", " https://grid.lab "]).unwrap(),
            ["http://10.231.0.1:4444", "https://grid.lab"]
        );
        let err = parse_hubs(["ftp://x"]).unwrap_err().to_string();
        assert!(err.contains("not a hub URL"), "{err}");
        assert_eq!(show_advertise(parse_advertise("10.231.0.1").unwrap()), "10.231.0.1");
        assert_eq!(parse_advertise(" 10.231.0.1:8443").unwrap().port(), 8443);
        assert_eq!(show_advertise(parse_advertise("[fd00::5]:8443").unwrap()), "[fd00::5]:8443");
        assert!(parse_advertise("fd00::5").unwrap().is_ipv6());
        assert!(parse_advertise("lab").unwrap_err().to_string().contains("not an IP address"));
        let routed = GridConfig { hubs: vec![], advertise: None }.advertise_for("http://127.0.0.1:4444").unwrap();
        assert!(routed.ip().is_loopback() && routed.port() == 0, "{routed}");
    }

    /// Firefox through a Grid is not exercised here (no geckodriver on this machine), so its
    /// request is checked as the hub receives it.
    #[test]
    fn firefox_asks_for_bidi_with_typed_prefs() {
        let (caps, recorded) = firefox_capabilities(&["--pref=dom.webgpu.enabled=false".into(), "-safe-mode".into()]);
        assert_eq!(caps["webSocketUrl"], json!(true));
        assert!(caps.get("se:cdpEnabled").is_none());
        let options = &caps["moz:firefoxOptions"];
        assert_eq!(options["args"], json!(["-headless", "-safe-mode"]));
        assert_eq!(options["prefs"]["dom.webgpu.enabled"], json!(false), "the user's pref wins over webaccel's");
        assert_eq!(options["prefs"]["gfx.webgpu.ignore-blocklist"], json!(true), "booleans go as booleans");
        assert_eq!(options["prefs"]["dom.min_background_timeout_value"], json!(0), "numbers as numbers");
        assert!(recorded.contains(&"--pref=dom.webgpu.enabled=false".to_string()), "{recorded:?}");
    }

    #[test]
    fn chromium_family_asks_for_cdp_in_its_own_options() {
        let slot = |browser: &str, os: &str| Slot {
            name: "x".into(),
            hub: "http://hub:4444".into(),
            browser_name: browser.into(),
            node_uri: "http://10.0.0.9:5555".into(),
            os: os.into(),
            busy: false,
            tagged: false,
            tags: BTreeMap::new(),
        };
        let (edge, flags) = chromium_capabilities(&slot("MicrosoftEdge", "Windows 11"), &["--foo".into()]);
        assert_eq!(edge["se:cdpEnabled"], json!(true));
        assert!(edge.get("goog:chromeOptions").is_none() && edge["ms:edgeOptions"]["args"].is_array());
        assert!(!flags.iter().any(|f| f.starts_with("--remote-debugging-port") || f == "--no-sandbox"), "{flags:?}");
        assert_eq!(flags.last().map(String::as_str), Some("--foo"));
        let (_, linux) = chromium_capabilities(&slot("chrome", "Linux 6.1 amd64"), &[]);
        assert!(linux.contains(&"--no-sandbox".to_string()) && linux.contains(&"--headless=new".to_string()));
    }
}
