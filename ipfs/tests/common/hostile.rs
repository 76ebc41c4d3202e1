//! A gateway the test controls block by block: it serves raw blocks it was given (and refuses
//! CARs, so the client asks block by block), optionally dripping each body a few bytes at a
//! time, slowly enough to defeat any per-read timeout.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use webaccel_ipfs::Cid;

pub use super::proxy::Running;

struct Blocks {
    blocks: HashMap<Cid, Bytes>,
    /// Send each body `bytes` at a time with this pause between pieces.
    drip: Option<(usize, Duration)>,
}

pub async fn serve(blocks: HashMap<Cid, Bytes>, drip: Option<(usize, Duration)>) -> Running {
    let state = Arc::new(Blocks { blocks, drip });
    let app = axum::Router::new().fallback(handle).with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Running::new(url, task)
}

async fn handle(State(state): State<Arc<Blocks>>, request: Request) -> Response {
    let path = request.uri().path().to_string();
    let wants_car = request.uri().query().is_some_and(|q| q.contains("format=car"));
    if wants_car {
        return Response::builder().status(StatusCode::NOT_ACCEPTABLE).body(Body::from("no CARs here")).unwrap();
    }
    let cid = path.trim_start_matches("/ipfs/");
    let Some(block) = webaccel_ipfs::parse_cid(cid).ok().and_then(|c| state.blocks.get(&c).cloned()) else {
        return Response::builder().status(StatusCode::NOT_FOUND).body(Body::from("not here")).unwrap();
    };
    let body = match state.drip {
        None => Body::from(block),
        Some((size, pause)) => {
            let pieces: Vec<Bytes> = block.chunks(size).map(Bytes::copy_from_slice).collect();
            let stream = futures::stream::iter(pieces).then(move |piece| async move {
                tokio::time::sleep(pause).await;
                Ok::<_, std::io::Error>(piece)
            });
            Body::from_stream(stream)
        }
    };
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/vnd.ipld.raw")
        .body(body)
        .unwrap()
}

use futures::StreamExt;
