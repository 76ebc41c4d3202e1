//! The raw-block fallback: a gateway that serves no CARs is asked for each block on its own
//! (`application/vnd.ipld.raw`), several at a time.
//!
//! One request per block in walk order would leave the link idle for a round trip per block, so
//! up to [`IN_FLIGHT`] blocks are requested ahead: the ones the walk announced it will need next
//! (a node's links, as soon as the node is verified). Blocks still arrive at the walk one by one,
//! in its order, and each is verified there like a CAR block; fetched-ahead blocks wait in
//! memory until asked for, and they count against the same bound, so at most `IN_FLIGHT`
//! blocks (each ≤ [`MAX_BLOCK`](crate::gateway::MAX_BLOCK)) are held whatever the file's size.

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;

use bytes::Bytes;
use tokio::task::JoinSet;

use crate::cid::Cid;
use crate::gateway::GatewayClient;
use crate::walk::{BlockSource, SourceError};

/// Requests (and fetched, not yet used blocks) at once. Eight keeps a public gateway's
/// per-client limits in view while hiding most of the per-request latency.
pub const IN_FLIGHT: usize = 8;

/// Single blocks by CID from one gateway, each retried with backoff, fetched ahead of the walk.
pub struct RawSource {
    client: GatewayClient,
    gateway: String,
    /// CIDs the walk will ask for, in its order, not yet requested.
    planned: VecDeque<Cid>,
    requests: JoinSet<(Cid, Result<Bytes, SourceError>)>,
    /// CIDs being requested (the tasks in `requests`).
    requested: HashSet<Cid>,
    /// Answers that came before the walk asked for them.
    ready: HashMap<Cid, Result<Bytes, SourceError>>,
}

impl RawSource {
    pub fn new(client: GatewayClient, gateway: &str) -> Self {
        RawSource {
            client,
            gateway: gateway.to_string(),
            planned: VecDeque::new(),
            requests: JoinSet::new(),
            requested: HashSet::new(),
            ready: HashMap::new(),
        }
    }

    fn request(&mut self, cid: Cid) {
        let (client, gateway) = (self.client.clone(), self.gateway.clone());
        self.requested.insert(cid);
        self.requests.spawn(async move { (cid, fetch_with_retries(&client, &gateway, cid).await) });
    }

    /// Starts planned requests while fewer than `IN_FLIGHT` blocks are requested or waiting.
    fn fill(&mut self, received: &HashSet<Cid>) {
        while self.requested.len() + self.ready.len() < IN_FLIGHT {
            let Some(cid) = self.planned.pop_front() else { break };
            // A repeated block (a link listed twice, or one the walk already has) is fetched once.
            if !received.contains(&cid) && !self.requested.contains(&cid) && !self.ready.contains_key(&cid) {
                self.request(cid);
            }
        }
    }
}

impl BlockSource for RawSource {
    fn next(&mut self, cid: &Cid, received: &HashSet<Cid>) -> impl Future<Output = Result<Bytes, SourceError>> + Send {
        let cid = *cid;
        async move {
            loop {
                if let Some(answer) = self.ready.remove(&cid) {
                    self.fill(received);
                    return answer;
                }
                // The walk's own block goes first, even past the bound (by one).
                if !self.requested.contains(&cid) {
                    self.request(cid);
                }
                self.fill(received);
                let (got, answer) = match self.requests.join_next().await {
                    Some(Ok(done)) => done,
                    Some(Err(e)) => return Err(SourceError::Transport(format!("a block request failed: {e}"))),
                    // Cannot happen (the wanted block was just requested); an error, not a panic.
                    None => return Err(SourceError::Transport(format!("no request in flight for block {cid}"))),
                };
                self.requested.remove(&got);
                self.ready.insert(got, answer);
            }
        }
    }

    fn upcoming(&mut self, cids: &[Cid]) {
        // Depth-first: a node's links come before anything announced earlier.
        for cid in cids.iter().rev() {
            self.planned.push_front(*cid);
        }
    }
}

/// One block, retried with backoff on transient failures.
async fn fetch_with_retries(client: &GatewayClient, gateway: &str, cid: Cid) -> Result<Bytes, SourceError> {
    let attempts = client.config().attempts;
    let mut attempt = 1;
    loop {
        match client.raw_block(gateway, &cid).await {
            Ok(bytes) => return Ok(bytes),
            Err(e @ (SourceError::Transport(_) | SourceError::Timeout(_))) if attempt < attempts => {
                tracing::debug!("gateway {gateway} block {cid}: {e}; retrying");
            }
            Err(SourceError::Http { status, .. }) if (status == 429 || status >= 500) && attempt < attempts => {}
            Err(e) => return Err(e),
        }
        tokio::time::sleep(client.backoff(attempt)).await;
        attempt += 1;
    }
}
