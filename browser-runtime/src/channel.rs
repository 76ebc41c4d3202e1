//! The data channel between the host and one page: a WebSocket the page opens to the asset
//! server. CDP or WebDriver BiDi stays the control plane (launch, load, capabilities, crash
//! events); tensors and run requests travel here instead, as binary frames. A CDP call costs a
//! JSON round trip through the browser process and carries binary data only as base64 strings,
//! which alone measured more than the whole budget the bridge has per inference (a BiDi round
//! trip in Firefox costs more still).
//!
//! A frame, in both directions: the header's length (u32, little-endian), the header (JSON),
//! then the body (raw tensor bytes). Requests carry `{id, method, args, transfer}`; replies
//! carry `{id, result, posted}` or `{id, error}`. The host pads request headers with spaces so
//! that bodies start 8-byte aligned in the frame: the page then views its input tensors in
//! place.
//!
//! Bodies over [`LARGE_BODY`] do not ride in frames: measured with a 64 MiB tensor, Chromium
//! moved WebSocket messages at a third of the speed of plain HTTP bodies from the same server.
//! So a large input is parked on the asset server and the request names its URL
//! (`transfer.inputsUrl`), and a large reply is POSTed to `transfer.outputUrl` (`posted`).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::ws::{Message, WebSocket};
use futures::stream::SplitSink;
use futures::{SinkExt, StreamExt};
use serde_json::json;

use crate::assets::AssetServer;
use crate::calls::Calls;

/// Bodies (and so tensors) start at a multiple of this within a frame.
pub const ALIGN: usize = 8;

/// Bodies larger than this travel as HTTP bodies instead of inside frames.
pub const LARGE_BODY: usize = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error("the page's data channel is closed")]
    Closed,
    #[error("{0}")]
    Page(String),
    #[error("unreadable frame from the page: {0}")]
    BadFrame(String),
    #[error("the page said it posted its reply's body, but none arrived")]
    NothingPosted,
}

/// A reply: the page's `result` and the body that came with it.
#[derive(Debug)]
pub struct Reply {
    pub result: serde_json::Value,
    pub body: Bytes,
    /// The body was POSTed to the asset server rather than framed.
    posted: bool,
}

pub struct PageChannel {
    assets: Arc<AssetServer>,
    /// Callers write their requests themselves: a writer task would add a task wake-up to
    /// every call's latency.
    outgoing: tokio::sync::Mutex<SplitSink<WebSocket, Message>>,
    /// Calls waiting for their reply; closed with the socket, so that no call can start
    /// waiting on a channel that will never answer.
    pending: Arc<Calls<Result<Reply, ChannelError>>>,
    /// False once the socket has closed, for those who wait on something else meanwhile.
    open: tokio::sync::watch::Receiver<bool>,
}

impl PageChannel {
    /// Takes over an accepted socket; a task routes the replies to their calls.
    pub fn start(socket: WebSocket, assets: Arc<AssetServer>) -> Self {
        let (sink, mut stream) = socket.split();
        let pending = Arc::new(Calls::new());
        let routes = pending.clone();
        let (open_tx, open) = tokio::sync::watch::channel(true);
        tokio::spawn(async move {
            while let Some(Ok(message)) = stream.next().await {
                let Message::Binary(frame) = message else { continue };
                match decode(frame) {
                    Ok((id, reply)) => routes.answer(id, reply),
                    Err(e) => tracing::warn!("dropping a frame from the page: {e}"),
                }
            }
            // Every waiting call wakes with `Closed`.
            routes.close();
            let _ = open_tx.send(false);
        });
        PageChannel { assets, outgoing: tokio::sync::Mutex::new(sink), pending, open }
    }

    /// False once the socket has closed: no call on it can be answered any more.
    pub fn is_open(&self) -> bool {
        self.pending.is_open()
    }

    /// Changes to false when the socket closes.
    pub fn watch_open(&self) -> tokio::sync::watch::Receiver<bool> {
        self.open.clone()
    }

    /// Sends one request and waits for its reply. Callers bound the wait (see the session).
    /// The body is taken by value: a large one is parked as it is, without a copy.
    pub async fn call(&self, method: &str, args: serde_json::Value, body: Vec<u8>) -> Result<Reply, ChannelError> {
        let (slots, framed) = Slots::open(&self.assets, body);
        let mut transfer = json!({"outputUrl": slots.output_url, "largeBody": LARGE_BODY});
        if let Some(url) = &slots.input_url {
            transfer["inputsUrl"] = json!(url);
        }
        let mut reply = self.exchange(json!({"method": method, "args": args, "transfer": transfer}), &framed).await?;
        if reply.posted {
            reply.body = self.assets.take_output(&slots.output_id).ok_or(ChannelError::NothingPosted)?;
        }
        Ok(reply)
    }

    /// One frame out, its reply back.
    async fn exchange(&self, mut header: serde_json::Value, body: &[u8]) -> Result<Reply, ChannelError> {
        let (id, rx) = self.pending.open().ok_or(ChannelError::Closed)?;
        header["id"] = json!(id);
        let frame = Message::Binary(encode(&header, body).into());
        if self.outgoing.lock().await.send(frame).await.is_err() {
            self.pending.forget(id);
            return Err(ChannelError::Closed);
        }
        rx.await.map_err(|_| ChannelError::Closed)?
    }
}

/// A call's places on the asset server: the parked input (a large body only) and the slot a
/// large reply is posted to. Dropping them frees both, however the call ended (a timed-out
/// call is dropped mid-way, and a parked body can be large).
struct Slots<'a> {
    assets: &'a AssetServer,
    input_url: Option<String>,
    input_id: Option<String>,
    output_url: String,
    output_id: String,
}

impl<'a> Slots<'a> {
    /// Opens the slots for a call with `body`; returns them and what goes inside the frame
    /// (the body, or nothing when it was parked).
    fn open(assets: &'a AssetServer, body: Vec<u8>) -> (Self, Vec<u8>) {
        let (input_url, input_id, framed) = if body.len() > LARGE_BODY {
            let (url, id) = assets.put_input(body);
            (Some(url), Some(id), Vec::new())
        } else {
            (None, None, body)
        };
        let (output_url, output_id) = assets.output_slot();
        (Slots { assets, input_url, input_id, output_url, output_id }, framed)
    }
}

impl Drop for Slots<'_> {
    fn drop(&mut self) {
        if let Some(id) = &self.input_id {
            self.assets.discard_input(id);
        }
        self.assets.take_output(&self.output_id);
    }
}

/// Rounds `n` up to the next multiple of [`ALIGN`].
pub fn aligned(n: usize) -> usize {
    n.div_ceil(ALIGN) * ALIGN
}

fn encode(header: &serde_json::Value, body: &[u8]) -> Vec<u8> {
    let mut text = header.to_string().into_bytes();
    // Trailing spaces are valid JSON and put the body on an aligned offset.
    text.resize(aligned(4 + text.len()) - 4, b' ');
    let mut frame = Vec::with_capacity(4 + text.len() + body.len());
    frame.extend_from_slice(&(text.len() as u32).to_le_bytes());
    frame.extend_from_slice(&text);
    frame.extend_from_slice(body);
    frame
}

fn decode(frame: Bytes) -> Result<(u64, Result<Reply, ChannelError>), ChannelError> {
    let bad = |what: &str| ChannelError::BadFrame(what.to_string());
    let length: [u8; 4] =
        frame.get(..4).ok_or_else(|| bad("shorter than its length prefix"))?.try_into().expect("4 bytes");
    let end = 4 + u32::from_le_bytes(length) as usize;
    let text = frame.get(4..end).ok_or_else(|| bad("header runs past the frame"))?;
    let mut header: serde_json::Value =
        serde_json::from_slice(text).map_err(|e| ChannelError::BadFrame(format!("header is not JSON: {e}")))?;
    let id = header["id"].as_u64().ok_or_else(|| bad("header has no id"))?;
    let reply = match header["error"].as_str() {
        Some(error) => Err(ChannelError::Page(error.to_string())),
        None => Ok(Reply {
            result: header["result"].take(),
            body: frame.slice(end..),
            posted: header["posted"].as_bool().unwrap_or(false),
        }),
    };
    Ok((id, reply))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_bodies_start_aligned() {
        for pad in 0..20 {
            let header = json!({"id": 1, "method": "run", "args": {"x": "y".repeat(pad)}});
            let frame = encode(&header, &[1, 2, 3]);
            let length = u32::from_le_bytes(frame[..4].try_into().unwrap()) as usize;
            assert_eq!((4 + length) % ALIGN, 0, "pad {pad}");
            let parsed: serde_json::Value = serde_json::from_slice(&frame[4..4 + length]).unwrap();
            assert_eq!(parsed, header);
            assert_eq!(&frame[4 + length..], &[1, 2, 3]);
        }
    }

    #[test]
    fn replies_decode_to_result_or_error() {
        let ok = encode(&json!({"id": 7, "result": {"a": 1}}), b"body");
        let (id, reply) = decode(Bytes::from(ok)).unwrap();
        let reply = reply.unwrap();
        assert_eq!((id, reply.result, &reply.body[..], reply.posted), (7, json!({"a": 1}), &b"body"[..], false));
        let posted = encode(&json!({"id": 9, "result": {}, "posted": true}), b"");
        assert!(decode(Bytes::from(posted)).unwrap().1.unwrap().posted);

        let failed = encode(&json!({"id": 8, "error": "RangeError: bad"}), b"");
        match decode(Bytes::from(failed)).unwrap() {
            (8, Err(ChannelError::Page(message))) => assert_eq!(message, "RangeError: bad"),
            other => panic!("unexpected {other:?}"),
        }
        assert!(matches!(decode(Bytes::from_static(&[9, 0, 0, 0, b'{'])), Err(ChannelError::BadFrame(_))));
        assert!(matches!(decode(Bytes::from_static(&[1])), Err(ChannelError::BadFrame(_))));
    }
}
