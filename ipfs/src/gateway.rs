//! The gateway client: fetch a file by CID from trustless HTTP gateways, trusting none of them.
//!
//! For each gateway in order it asks for a CAR of the whole DAG in depth-first order (one
//! request, streamed); a gateway that will not serve CARs, or sends blocks out of order, is asked
//! for each block on its own (`application/vnd.ipld.raw`, several at a time: `raw_blocks.rs`). Every block goes through the
//! verifying walk (`walk.rs`). Transient failures (connection, timeout, 5xx, a cut stream) are
//! retried with exponential backoff; a gateway that sends a block that does not match its CID,
//! or the wrong DAG, is not retried: the next gateway is tried. Problems with the content itself
//! (a directory, a malformed DAG whose blocks do verify) or the local disk stop the fetch, since
//! no other gateway could fix them.

use std::collections::HashSet;
use std::fs::File;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::TryStreamExt;
use reqwest::header::{ACCEPT, CONTENT_TYPE};
use tokio::io::{AsyncRead, ReadBuf};
use tokio::sync::mpsc;

use crate::car::{CarError, CarReader};
use crate::cid::Cid;
use crate::raw_blocks::RawSource;
use crate::walk::{assemble, BlockSource, SourceError, WalkError, Walked};

/// Public gateways that answer trustless (CAR and raw block) requests.
pub const DEFAULT_GATEWAYS: [&str; 3] = ["https://trustless-gateway.link", "https://ipfs.io", "https://dweb.link"];
/// The trustless gateway spec's block size bound is 2 MiB; allow slack, refuse beyond.
pub const MAX_BLOCK: usize = 4 * 1024 * 1024;
/// CAR blocks read ahead of the walk (network and hashing overlap); at most this many blocks
/// are in memory at once.
const READ_AHEAD: usize = 8;

#[derive(Debug, Clone, PartialEq)]
pub struct GatewayConfig {
    /// Base URLs (`https://host[:port]`), tried in order.
    pub gateways: Vec<String>,
    /// Tries per gateway (and per block, in raw mode) before moving on.
    pub attempts: u32,
    /// Wait before the first retry; doubled for each further one.
    pub backoff: Duration,
    pub connect_timeout: Duration,
    /// Longest silence allowed: for the response head and between body reads.
    pub read_timeout: Duration,
    /// The whole fetch, every gateway and retry included, must end within this: a gateway
    /// that drips a byte now and then never trips `read_timeout`.
    pub deadline: Duration,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            gateways: DEFAULT_GATEWAYS.iter().map(|g| g.to_string()).collect(),
            attempts: 3,
            backoff: Duration::from_millis(500),
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(30),
            deadline: Duration::from_secs(3600),
        }
    }
}

impl GatewayConfig {
    /// Defaults, with the gateways from `WEBACCEL_GATEWAYS` (comma- or space-separated) if set,
    /// and the deadline from `WEBACCEL_IPFS_DEADLINE_S` (seconds).
    pub fn from_env() -> Result<Self, FetchError> {
        let mut config = GatewayConfig::default();
        if let Ok(text) = std::env::var("WEBACCEL_IPFS_DEADLINE_S") {
            let seconds = text.trim().parse::<f64>().ok().filter(|s| *s > 0.0 && s.is_finite());
            config.deadline = Duration::from_secs_f64(seconds.ok_or(FetchError::BadDeadline(text))?);
        }
        match std::env::var("WEBACCEL_GATEWAYS") {
            Ok(list) => config.with_gateways(list.split([',', ' ', '\n']).filter(|s| !s.trim().is_empty())),
            Err(_) => Ok(config),
        }
    }

    /// The same settings with these gateways, checked and normalised.
    pub fn with_gateways<S: AsRef<str>>(mut self, gateways: impl IntoIterator<Item = S>) -> Result<Self, FetchError> {
        self.gateways = gateways.into_iter().map(|g| normalize(g.as_ref())).collect::<Result<_, _>>()?;
        if self.gateways.is_empty() {
            return Err(FetchError::NoGateways);
        }
        Ok(self)
    }
}

fn normalize(gateway: &str) -> Result<String, FetchError> {
    let g = gateway.trim().trim_end_matches('/');
    let url = reqwest::Url::parse(g).map_err(|_| FetchError::BadGateway(gateway.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(FetchError::BadGateway(gateway.to_string()));
    }
    Ok(g.to_string())
}

/// How a fetch got its blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Via {
    Car,
    Raw,
}

impl Via {
    pub fn name(self) -> &'static str {
        match self {
            Via::Car => "car",
            Via::Raw => "raw",
        }
    }
}

/// One gateway's failure, naming the gateway and the CID.
#[derive(Debug, thiserror::Error)]
#[error("gateway {gateway} ({}) for {cid}: {error}", if *via == Via::Car { "CAR" } else { "raw blocks" })]
pub struct GatewayFailure {
    pub gateway: String,
    pub cid: Cid,
    pub via: Via,
    pub error: WalkError,
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("no gateway is configured; set WEBACCEL_GATEWAYS to gateway URLs separated by commas")]
    NoGateways,

    #[error(
        "{0:?} is not a gateway URL like https://trustless-gateway.link; fix WEBACCEL_GATEWAYS or the gateways option"
    )]
    BadGateway(String),

    #[error(
        "could not fetch {cid} from any gateway: {}. Check the CID, the network, or WEBACCEL_GATEWAYS",
        list(failures)
    )]
    Exhausted { cid: Cid, failures: Vec<GatewayFailure> },

    /// The content or the local disk is at fault: another gateway would not help.
    #[error("{0}")]
    Fatal(Box<GatewayFailure>),

    #[error("could not set up the HTTP client: {0}")]
    Client(String),

    #[error(
        "fetching {cid} did not finish within {seconds} s (every gateway and retry included){}; a slow or \
         hostile gateway, or a very large file: check WEBACCEL_GATEWAYS, or raise WEBACCEL_IPFS_DEADLINE_S",
        if failures.is_empty() { String::new() } else { format!(" after: {}", list(failures)) }
    )]
    Deadline { cid: String, seconds: u32, failures: Vec<GatewayFailure> },

    #[error("WEBACCEL_IPFS_DEADLINE_S is {0:?}; give a positive number of seconds")]
    BadDeadline(String),
}

fn list(failures: &[GatewayFailure]) -> String {
    folded(failures).join("; ")
}

/// The failures as text, with retries that failed the same way folded into one line.
pub(crate) fn folded(failures: &[GatewayFailure]) -> Vec<String> {
    let mut lines: Vec<(String, usize)> = Vec::new();
    for text in failures.iter().map(|f| f.to_string()) {
        match lines.last_mut() {
            Some((last, n)) if *last == text => *n += 1,
            _ => lines.push((text, 1)),
        }
    }
    lines.into_iter().map(|(text, n)| if n > 1 { format!("{text} ({n} tries)") } else { text }).collect()
}

/// A finished fetch.
#[derive(Debug)]
pub struct Fetched {
    pub gateway: String,
    pub via: Via,
    pub walked: Walked,
    /// What failed before the gateway that succeeded (retries included).
    pub failures: Vec<GatewayFailure>,
}

#[derive(Debug, Clone)]
pub struct GatewayClient {
    http: reqwest::Client,
    config: GatewayConfig,
}

enum Verdict {
    Retry,
    TryRaw,
    NextGateway,
    Stop,
}

fn verdict(error: &WalkError, via: Via) -> Verdict {
    use SourceError as S;
    let source = match error {
        WalkError::Source(source) => Some(&**source),
        _ => None,
    };
    let transient = match source {
        Some(S::Transport(_) | S::Timeout(_) | S::Ended { .. } | S::Cut { .. } | S::Car(CarError::Io(_))) => true,
        Some(S::Http { status, .. }) => *status == 408 || *status == 429 || *status >= 500,
        _ => false,
    };
    match (error, source) {
        // Raw mode already retried each block.
        _ if transient && via == Via::Raw => Verdict::NextGateway,
        _ if transient => Verdict::Retry,
        (_, Some(S::Unsupported { .. } | S::Unexpected { .. })) if via == Via::Car => Verdict::TryRaw,
        (
            WalkError::Node { .. }
            | WalkError::SizeMismatch { .. }
            | WalkError::Unsupported(_)
            | WalkError::Io(_)
            | WalkError::TooLarge { .. }
            | WalkError::Expands { .. },
            _,
        ) => Verdict::Stop,
        // Tampered, wrong root, malformed CAR, 404, …: this gateway cannot be trusted for it.
        _ => Verdict::NextGateway,
    }
}

impl GatewayClient {
    pub fn new(config: GatewayConfig) -> Result<Self, FetchError> {
        // reqwest is built without a bundled crypto provider; use ring, which the workspace
        // already compiles. Another part of the process may have installed one first: fine.
        if rustls::crypto::CryptoProvider::get_default().is_none() {
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        let http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .read_timeout(config.read_timeout)
            .user_agent(concat!("webaccel/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| FetchError::Client(e.to_string()))?;
        Ok(GatewayClient { http, config })
    }

    pub fn config(&self) -> &GatewayConfig {
        &self.config
    }

    /// Fetches `cid` into `out` (an empty file; it is truncated before each try), writing at
    /// most `limit` bytes, within the configured deadline. On success every byte in `out` was
    /// verified against `cid`.
    pub async fn fetch_into(&self, cid: &Cid, out: Arc<File>, limit: u64) -> Result<Fetched, FetchError> {
        let mut failures = Vec::new();
        let deadline = self.config.deadline;
        match tokio::time::timeout(deadline, self.fetch_from_gateways(cid, out, limit, &mut failures)).await {
            Ok(done) => done,
            Err(_) => Err(FetchError::Deadline {
                cid: cid.to_string(),
                seconds: deadline.as_secs().min(u32::MAX as u64) as u32,
                failures,
            }),
        }
    }

    async fn fetch_from_gateways(
        &self,
        cid: &Cid,
        out: Arc<File>,
        limit: u64,
        failures: &mut Vec<GatewayFailure>,
    ) -> Result<Fetched, FetchError> {
        if self.config.gateways.is_empty() {
            return Err(FetchError::NoGateways);
        }
        for (i, gateway) in self.config.gateways.iter().enumerate() {
            let last = i + 1 == self.config.gateways.len();
            let mut via = Via::Car;
            let mut attempt = 1;
            loop {
                out.set_len(0).map_err(|e| fatal(gateway, cid, via, WalkError::Io(e)))?;
                let result = match via {
                    Via::Car => self.walk_car(gateway, cid, out.clone(), limit).await,
                    Via::Raw => {
                        let mut source = RawSource::new(self.clone(), gateway);
                        assemble(cid, &mut source, out.clone(), limit).await
                    }
                };
                let error = match result {
                    Ok(walked) => {
                        let failures = std::mem::take(failures);
                        return Ok(Fetched { gateway: gateway.clone(), via, walked, failures });
                    }
                    Err(error) => error,
                };
                let next = verdict(&error, via);
                let failure = GatewayFailure { gateway: gateway.clone(), cid: *cid, via, error };
                match next {
                    Verdict::Stop => return Err(FetchError::Fatal(Box::new(failure))),
                    Verdict::Retry if attempt < self.config.attempts => {
                        tracing::info!("{failure}; retrying (attempt {} of {})", attempt + 1, self.config.attempts);
                        failures.push(failure);
                        tokio::time::sleep(self.backoff(attempt)).await;
                        attempt += 1;
                    }
                    Verdict::TryRaw => {
                        tracing::info!("{failure}; asking the same gateway for single blocks");
                        failures.push(failure);
                        via = Via::Raw;
                        attempt = 1;
                    }
                    Verdict::Retry | Verdict::NextGateway => {
                        tracing::warn!("{failure}{}", if last { "" } else { "; trying the next gateway" });
                        failures.push(failure);
                        break;
                    }
                }
            }
        }
        Err(FetchError::Exhausted { cid: *cid, failures: std::mem::take(failures) })
    }

    pub(crate) fn backoff(&self, attempt: u32) -> Duration {
        self.config.backoff.saturating_mul(1 << (attempt - 1).min(10))
    }

    async fn get(&self, url: String, accept: &str) -> Result<reqwest::Response, SourceError> {
        let request = self.http.get(url).header(ACCEPT, accept).send();
        // reqwest's read timeout covers the body; a server that accepts and never answers is
        // caught here.
        match tokio::time::timeout(self.config.read_timeout, request).await {
            Err(_) => Err(SourceError::Timeout(self.config.read_timeout)),
            Ok(Err(e)) if e.is_timeout() => Err(SourceError::Timeout(self.config.read_timeout)),
            Ok(Err(e)) => Err(SourceError::Transport(describe(&e))),
            Ok(Ok(response)) => Ok(response),
        }
    }

    async fn walk_car(&self, gateway: &str, cid: &Cid, out: Arc<File>, limit: u64) -> Result<Walked, WalkError> {
        let url = format!("{gateway}/ipfs/{cid}?format=car&dag-scope=all");
        let response = self.get(url, "application/vnd.ipld.car; version=1; order=dfs; dups=n").await?;
        let status = response.status().as_u16();
        let content_type = header_text(&response, CONTENT_TYPE);
        if matches!(status, 400 | 406 | 415 | 501) {
            return Err(SourceError::Unsupported { what: "CARs", status, content_type }.into());
        }
        if status != 200 {
            return Err(http_error(response).await.into());
        }
        let mut params = content_type.split(';').map(str::trim);
        let is_car = params.next().is_some_and(|t| t.eq_ignore_ascii_case("application/vnd.ipld.car"));
        let version_ok = params.all(|p| !p.starts_with("version=") || p == "version=1");
        if !is_car || !version_ok {
            return Err(SourceError::Unsupported { what: "CAR v1", status, content_type }.into());
        }
        let mut source = CarSource::start(response, self.config.read_timeout);
        assemble(cid, &mut source, out, limit).await
    }

    pub(crate) async fn raw_block(&self, gateway: &str, cid: &Cid) -> Result<Bytes, SourceError> {
        let url = format!("{gateway}/ipfs/{cid}?format=raw");
        let mut response = self.get(url, "application/vnd.ipld.raw").await?;
        let status = response.status().as_u16();
        if status != 200 {
            return Err(http_error(response).await);
        }
        let content_type = header_text(&response, CONTENT_TYPE);
        if !content_type.starts_with("application/vnd.ipld.raw") {
            return Err(SourceError::Unsupported { what: "raw blocks", status, content_type });
        }
        if response.content_length().is_some_and(|n| n > MAX_BLOCK as u64) {
            return Err(SourceError::TooLarge { limit: MAX_BLOCK });
        }
        let mut body = BytesMut::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| body_error(&e, self.config.read_timeout))? {
            if body.len() + chunk.len() > MAX_BLOCK {
                return Err(SourceError::TooLarge { limit: MAX_BLOCK });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body.freeze())
    }
}

fn fatal(gateway: &str, cid: &Cid, via: Via, error: WalkError) -> FetchError {
    FetchError::Fatal(Box::new(GatewayFailure { gateway: gateway.to_string(), cid: *cid, via, error }))
}

fn header_text(response: &reqwest::Response, name: reqwest::header::HeaderName) -> String {
    response.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("").to_string()
}

/// reqwest's Display stops at the outermost cause ("error sending request"); the reason that
/// helps (connection refused, DNS) is further down the chain.
fn describe(e: &reqwest::Error) -> String {
    // The URL would repeat the gateway and CID that the failure already names.
    let mut text = e.to_string();
    if let Some(url) = e.url() {
        text = text.replace(&format!(" for url ({url})"), "");
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn body_error(e: &reqwest::Error, read_timeout: Duration) -> SourceError {
    if e.is_timeout() {
        SourceError::Timeout(read_timeout)
    } else {
        SourceError::Transport(describe(e))
    }
}

async fn http_error(response: reqwest::Response) -> SourceError {
    let status = response.status().as_u16();
    // A short excerpt of the gateway's explanation, if it gives one quickly.
    let body = tokio::time::timeout(Duration::from_secs(2), response.text()).await.ok().and_then(Result::ok);
    let body = body.unwrap_or_default().chars().take(200).collect::<String>().trim().to_string();
    SourceError::Http { status, body }
}

/// Blocks of a CAR response, parsed by a task that reads ahead of the walk.
struct CarSource {
    blocks: mpsc::Receiver<Result<(Cid, Bytes), SourceError>>,
    reader: tokio::task::JoinHandle<()>,
}

impl CarSource {
    fn start(response: reqwest::Response, read_timeout: Duration) -> Self {
        let (tx, rx) = mpsc::channel(READ_AHEAD);
        let reader = tokio::spawn(async move {
            let hit_eof = Arc::new(AtomicBool::new(false));
            // iroh-car reports a failed read as a parse error; keep the real cause aside.
            let body_failed = Arc::new(std::sync::Mutex::new(None::<SourceError>));
            let failed = body_failed.clone();
            let body = tokio_util::io::StreamReader::new(response.bytes_stream().map_err(move |e| {
                let error = body_error(&e, read_timeout);
                let text = error.to_string();
                *failed.lock().expect("poisoned") = Some(error);
                std::io::Error::other(text)
            }));
            let body = EofFlag { inner: body, hit: hit_eof.clone() };
            let body = tokio::io::BufReader::with_capacity(256 * 1024, body);
            // A CAR error after the connection failed or the body ran out is a transport
            // problem or truncation, worth a retry; otherwise the gateway sent something that is
            // not a CAR.
            let classify = |e: CarError| -> SourceError {
                if let Some(cause) = body_failed.lock().expect("poisoned").take() {
                    return cause;
                }
                match e {
                    CarError::Malformed(detail) if hit_eof.load(Ordering::SeqCst) => SourceError::Cut { detail },
                    e => SourceError::Car(e),
                }
            };
            let mut car = match CarReader::new(body).await {
                Ok(car) => car,
                Err(e) => {
                    let _ = tx.send(Err(classify(e))).await;
                    return;
                }
            };
            loop {
                let item = match car.next_block().await {
                    Ok(Some(block)) => Ok(block),
                    Ok(None) => return,
                    Err(e) => Err(classify(e)),
                };
                let stop = item.is_err();
                // The walk has finished or failed when nobody receives any more.
                if tx.send(item).await.is_err() || stop {
                    return;
                }
            }
        });
        CarSource { blocks: rx, reader }
    }
}

impl Drop for CarSource {
    fn drop(&mut self) {
        // Stop reading the response as soon as the walk is done with it.
        self.reader.abort();
    }
}

impl BlockSource for CarSource {
    fn next(
        &mut self,
        cid: &Cid,
        received: &HashSet<Cid>,
    ) -> impl std::future::Future<Output = Result<Bytes, SourceError>> + Send {
        let expected = *cid;
        async move {
            loop {
                match self.blocks.recv().await {
                    None => return Err(SourceError::Ended { missing: expected }),
                    Some(Err(e)) => return Err(e),
                    Some(Ok((got, bytes))) if got == expected => return Ok(bytes),
                    // A repeat of a block the walk already has (a `dups=y` stream): skip it.
                    Some(Ok((got, _))) if received.contains(&got) => continue,
                    Some(Ok((got, _))) => return Err(SourceError::Unexpected { got, expected }),
                }
            }
        }
    }
}

/// Notes whether the wrapped reader reached its end.
struct EofFlag<R> {
    inner: R,
    hit: Arc<AtomicBool>,
}

impl<R: AsyncRead + Unpin> AsyncRead for EofFlag<R> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(poll, Poll::Ready(Ok(()))) && buf.filled().len() == before && buf.remaining() > 0 {
            self.hit.store(true, Ordering::SeqCst);
        }
        poll
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gateway_lists_are_checked() {
        let c = GatewayConfig::default().with_gateways(["http://127.0.0.1:8080/", " https://ipfs.io"]).unwrap();
        assert_eq!(c.gateways, ["http://127.0.0.1:8080", "https://ipfs.io"]);
        let err = GatewayConfig::default().with_gateways(["ftp://x"]).unwrap_err().to_string();
        assert!(err.contains("\"ftp://x\" is not a gateway URL"), "{err}");
        assert!(matches!(GatewayConfig::default().with_gateways(Vec::<String>::new()), Err(FetchError::NoGateways)));
    }
}
