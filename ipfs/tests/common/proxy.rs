//! Misbehaving gateways for the tests: a proxy in front of the real Helia gateway that damages
//! its responses in one chosen way, a port that refuses connections, and one that accepts and
//! never answers.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use webaccel_ipfs::car;

#[derive(Debug, Clone, PartialEq)]
pub enum Tamper {
    /// Flip one byte inside the last block of a CAR, or in the middle of a raw block.
    FlipByte,
    /// Send only the first half of the body.
    Truncate,
    /// Give two blocks each other's bytes: every block is genuine, just under the wrong CID.
    SwapBlocks,
    /// Answer a CAR request for any CID with the CAR of this other CID.
    WrongRoot(String),
    /// Refuse CARs (406), serve raw blocks faithfully: a gateway without CAR support.
    NoCar,
    /// Refuse CARs (406) and flip one byte in the middle of every raw block.
    NoCarFlipByte,
    /// Send half of a CAR, then nothing, holding the connection open.
    Stall,
}

struct Proxy {
    upstream: String,
    tamper: Tamper,
    http: reqwest::Client,
}

pub struct Running {
    pub url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    pub fn new(url: String, task: tokio::task::JoinHandle<()>) -> Self {
        Running { url, task }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub async fn start(upstream: &str, tamper: Tamper) -> Running {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let proxy = Arc::new(Proxy { upstream: upstream.to_string(), tamper, http: reqwest::Client::new() });
    let app = axum::Router::new().fallback(handle).with_state(proxy);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Running { url, task }
}

async fn handle(State(proxy): State<Arc<Proxy>>, request: Request) -> Response {
    let path_and_query = request.uri().path_and_query().map(|p| p.as_str().to_string()).unwrap_or_default();
    let accept = request.headers().get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let is_car = path_and_query.contains("format=car") || accept.contains("application/vnd.ipld.car");
    if is_car && matches!(proxy.tamper, Tamper::NoCar | Tamper::NoCarFlipByte) {
        return Response::builder().status(StatusCode::NOT_ACCEPTABLE).body(Body::from("no CARs here")).unwrap();
    }
    let mut target = path_and_query.clone();
    if let (true, Tamper::WrongRoot(other)) = (is_car, &proxy.tamper) {
        let cid = path_and_query.trim_start_matches("/ipfs/").split(['?', '/']).next().unwrap_or("");
        target = path_and_query.replacen(cid, other, 1);
    }
    let upstream = proxy
        .http
        .get(format!("{}{target}", proxy.upstream))
        .header(header::ACCEPT, accept)
        .send()
        .await
        .expect("the Helia gateway behind the proxy answers");
    let status = upstream.status();
    let content_type = upstream.headers().get(header::CONTENT_TYPE).cloned();
    let body = upstream.bytes().await.expect("upstream body").to_vec();
    let body = if status.is_success() { damage(&proxy.tamper, is_car, body) } else { Damaged::Whole(body) };
    let mut response = match body {
        Damaged::Whole(bytes) => Response::new(Body::from(bytes)),
        Damaged::ThenStall(bytes) => {
            let first = futures::stream::once(async move { Ok::<_, std::io::Error>(Bytes::from(bytes)) });
            Response::new(Body::from_stream(futures::StreamExt::chain(first, futures::stream::pending())))
        }
    };
    *response.status_mut() = status;
    if let Some(ct) = content_type {
        response.headers_mut().insert(header::CONTENT_TYPE, ct);
    } else {
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    }
    response
}

enum Damaged {
    Whole(Vec<u8>),
    ThenStall(Vec<u8>),
}

fn damage(tamper: &Tamper, is_car: bool, mut body: Vec<u8>) -> Damaged {
    match tamper {
        Tamper::FlipByte if is_car => {
            // The last block of a depth-first CAR is the file's last leaf; 50 bytes from the end
            // is inside its data for any leaf of 50+ bytes.
            let at = body.len() - 50;
            body[at] ^= 0x01;
        }
        Tamper::FlipByte | Tamper::NoCarFlipByte => {
            let at = body.len() / 2;
            body[at] ^= 0x01;
        }
        Tamper::Truncate => body.truncate(body.len() / 2),
        Tamper::SwapBlocks if is_car => {
            let (roots, blocks) = car::parse_all(&body).expect("Helia sends a valid CAR");
            let mut blocks: Vec<(webaccel_ipfs::Cid, Vec<u8>)> =
                blocks.into_iter().map(|(c, b)| (c, b.to_vec())).collect();
            // Two raw leaves of the same length, so the damage is in content, not in framing.
            let leaves: Vec<usize> =
                (0..blocks.len()).filter(|&i| blocks[i].0.codec() == webaccel_ipfs::cid::RAW).collect();
            let (i, j) = (leaves[0], leaves[1]);
            assert_eq!(blocks[i].1.len(), blocks[j].1.len(), "the test file's first two chunks are full");
            let (a, b) = (blocks[i].1.clone(), blocks[j].1.clone());
            blocks[i].1 = b;
            blocks[j].1 = a;
            body = car::write(roots[0], &blocks).expect("write CAR");
        }
        Tamper::Stall if is_car => {
            body.truncate(body.len() / 2);
            return Damaged::ThenStall(body);
        }
        _ => {}
    }
    Damaged::Whole(body)
}

/// A gateway URL on which nothing listens (connection refused).
pub async fn down() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    drop(listener);
    url
}

/// A gateway that accepts connections and never says a word.
pub async fn silent() -> Running {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
        tokio::time::sleep(Duration::MAX).await;
    });
    Running { url, task }
}
