//! `webaccel ipfs add|get|stats`: the content store and the gateway client from the shell.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Subcommand;
use webaccel_ipfs::{parse_cid, GatewayConfig, Resolver};

#[derive(Subcommand)]
pub enum IpfsCommand {
    /// Compute the CID of each FILE (CIDv1, raw leaves, 1 MiB chunks, balanced DAG-PB: the same
    /// CID Helia and `ipfs add --cid-version=1 --raw-leaves --chunker=size-1048576` give) and
    /// put a copy in the local store. Prints the CID.
    Add {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Get the file with this CID: from the local store, or fetched from the gateways and
    /// verified block by block (then kept in the store).
    Get {
        cid: String,
        /// Where to write it ("-" for stdout). Default: ./CID
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Gateway to try, in order (repeatable); replaces WEBACCEL_GATEWAYS and the defaults.
        #[arg(long = "gateway", value_name = "URL")]
        gateways: Vec<String>,
        /// Use the local store only; never touch the network.
        #[arg(long, conflicts_with = "gateways")]
        offline: bool,
        /// Print the fetch record as JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// What the local store holds, and where.
    Stats {
        #[arg(long)]
        json: bool,
    },
}

pub fn run(command: IpfsCommand) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    match command {
        IpfsCommand::Add { files } => {
            let ipfs = Resolver::open_default()?;
            for file in &files {
                let added = ipfs.add(file)?;
                if files.len() == 1 {
                    println!("{}", added.cid);
                } else {
                    println!("{}  {}", added.cid, file.display());
                }
            }
        }
        IpfsCommand::Get { cid, output, gateways, offline, json } => {
            let cid = parse_cid(&cid)?;
            let mut ipfs = Resolver::open_default()?;
            if !gateways.is_empty() {
                ipfs = ipfs.with_gateways(GatewayConfig::from_env()?.with_gateways(&gateways)?)?;
            }
            let resolved = runtime.block_on(async {
                if offline {
                    ipfs.cached(&cid).await?.ok_or_else(|| {
                        anyhow::anyhow!(
                            "{cid} is not in the local store ({}); drop --offline to fetch it",
                            ipfs.store().dir().display()
                        )
                    })
                } else {
                    Ok(ipfs.resolve(&cid).await?)
                }
            })?;
            let output = output.unwrap_or_else(|| PathBuf::from(cid.to_string()));
            write_out(&resolved.path, &output)?;
            let r = &resolved.record;
            if json {
                println!("{}", serde_json::to_string_pretty(r)?);
            } else {
                let from = match (&r.gateway, r.cache_hit) {
                    (_, true) => "local store (cache hit)".to_string(),
                    (Some(g), false) => format!("{g} ({}, verified)", r.via),
                    (None, false) => "?".to_string(),
                };
                eprintln!("{} {} bytes from {from} in {:.0} ms", r.cid, r.bytes, r.ms);
                for failure in &r.failures {
                    eprintln!("  before that: {failure}");
                }
            }
        }
        IpfsCommand::Stats { json } => {
            let ipfs = Resolver::open_default()?;
            let s = ipfs.stats();
            if json {
                let value = serde_json::json!({
                    "dir": s.store.dir, "files": s.store.files, "bytes": s.store.bytes,
                    "max_bytes": s.store.max_bytes, "gateways": s.gateways,
                });
                println!("{}", serde_json::to_string_pretty(&value)?);
            } else {
                println!("store     {}", s.store.dir.display());
                println!("files     {}", s.store.files);
                println!("bytes     {} of {} allowed", s.store.bytes, s.store.max_bytes);
                println!("gateways  {}", s.gateways.join(", "));
            }
        }
    }
    Ok(())
}

fn write_out(stored: &Path, output: &Path) -> Result<()> {
    if output == Path::new("-") {
        let mut file = std::fs::File::open(stored)?;
        let stdout = std::io::stdout();
        let mut lock = stdout.lock();
        std::io::copy(&mut file, &mut lock)?;
        lock.flush()?;
        return Ok(());
    }
    std::fs::copy(stored, output).with_context(|| format!("cannot write {}", output.display()))?;
    Ok(())
}
