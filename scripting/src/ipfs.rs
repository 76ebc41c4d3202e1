//! The `ipfs` module for scripts: `ipfs::fetch(cid)`, `ipfs::fetch(cid, #{gateways, offline})`,
//! `ipfs::add(path)` and `ipfs::stats()`. Each returns a map (the fetch record, the add record,
//! the store's figures).
//!
//! The resolver (store + gateway client) is the one `Services` shares with `accelerate`; it is
//! opened on first use, so a session that never touches IPFS never creates the store directory.

use std::sync::Arc;

use rhai::{Dynamic, EvalAltResult, Map, Module};
use webaccel_ipfs::{parse_cid, GatewayConfig, Resolver};

use crate::error::ApiError;
use crate::options::OptionValue;
use crate::services::Services;

const FETCH: &str = "ipfs::fetch";

struct Ipfs {
    services: Arc<Services>,
}

impl Ipfs {
    fn resolver(&self) -> Result<Arc<Resolver>, ApiError> {
        self.services.ipfs()
    }

    fn fetch(&self, cid: &str, options: &Map) -> Result<Dynamic, ApiError> {
        let cid = parse_cid(cid).map_err(webaccel_ipfs::Error::from)?;
        let mut resolver = self.resolver()?;
        let mut offline = false;
        for (key, value) in options {
            let opt = OptionValue { function: FETCH, key, value };
            match key.as_str() {
                "offline" => offline = opt.boolean()?,
                "gateways" => {
                    let urls = opt.strings("must be an array of gateway URLs", "strings")?;
                    let config = GatewayConfig::from_env()
                        .and_then(|c| c.with_gateways(&urls))
                        .map_err(webaccel_ipfs::Error::from)?;
                    resolver = Arc::new(resolver.with_gateways(config)?);
                }
                other => {
                    return Err(ApiError::UnknownOption {
                        function: FETCH,
                        key: other.to_string(),
                        valid: "gateways, offline".into(),
                    })
                }
            }
        }
        // An interrupted fetch is dropped where it waits; its partial file is a temporary
        // file, removed with it.
        let resolved = self.services.wait(async {
            if offline {
                resolver.cached(&cid).await.map(|hit| hit.ok_or(ApiError::NotCached(cid.to_string())))
            } else {
                resolver.resolve(&cid).await.map(Ok)
            }
        })???;
        let mut record = to_map(&resolved.record);
        record.insert("path".into(), resolved.path.display().to_string().into());
        Ok(record.into())
    }

    fn add(&self, path: &str) -> Result<Dynamic, ApiError> {
        Ok(to_map(&self.resolver()?.add(std::path::Path::new(path))?).into())
    }

    fn stats(&self) -> Result<Dynamic, ApiError> {
        let s = self.resolver()?.stats();
        let mut map = Map::new();
        map.insert("dir".into(), s.store.dir.display().to_string().into());
        map.insert("files".into(), (s.store.files as i64).into());
        map.insert("bytes".into(), (s.store.bytes as i64).into());
        map.insert("max_bytes".into(), (s.store.max_bytes as i64).into());
        map.insert("hits".into(), (s.hits as i64).into());
        map.insert("misses".into(), (s.misses as i64).into());
        map.insert("fetched_bytes".into(), (s.fetched_bytes as i64).into());
        map.insert("gateways".into(), s.gateways.into_iter().map(Dynamic::from).collect::<rhai::Array>().into());
        Ok(map.into())
    }
}

fn to_map(value: &impl serde::Serialize) -> Map {
    rhai::serde::to_dynamic(value).ok().and_then(|d| d.try_cast::<Map>()).unwrap_or_default()
}

/// The module, registered by the host as the static module `ipfs`.
pub fn module(services: Arc<Services>) -> Module {
    let api = Arc::new(Ipfs { services });
    let mut module = Module::new();
    let a = api.clone();
    module.set_native_fn("fetch", move |cid: &str| -> Result<Dynamic, Box<EvalAltResult>> {
        Ok(a.fetch(cid, &Map::new())?)
    });
    let a = api.clone();
    module.set_native_fn("fetch", move |cid: &str, options: Map| -> Result<Dynamic, Box<EvalAltResult>> {
        Ok(a.fetch(cid, &options)?)
    });
    let a = api.clone();
    module.set_native_fn("add", move |path: &str| -> Result<Dynamic, Box<EvalAltResult>> { Ok(a.add(path)?) });
    let a = api;
    module.set_native_fn("stats", move || -> Result<Dynamic, Box<EvalAltResult>> { Ok(a.stats()?) });
    module
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::{Config, ScriptHost};

    #[test]
    fn add_then_fetch_from_the_store_and_explain_bad_options() {
        let dir = tempfile::tempdir().unwrap();
        // The only test in this crate that reads WEBACCEL_IPFS_DIR; nothing else sets it.
        std::env::set_var("WEBACCEL_IPFS_DIR", dir.path().join("store"));
        let file = dir.path().join("weights.bin");
        std::fs::write(&file, vec![7u8; 1_500_000]).unwrap();
        let mut host = ScriptHost::new(Config::default(), Arc::new(|_, _: &str| {})).unwrap();
        let code = format!(
            r#"let a = ipfs::add("{}");
               let f = ipfs::fetch(a.cid, #{{offline: true}});
               [a.cid, a.bytes, f.cache_hit, f.via, f.verified, f.bytes, ipfs::stats().hits, ipfs::stats().files]"#,
            file.display()
        );
        let out = host.eval(&code).unwrap().into_array().unwrap();
        let cid = out[0].clone().into_string().unwrap();
        assert!(cid.starts_with("bafybei"), "two chunks make a DAG-PB root: {cid}");
        assert_eq!(out[1].as_int().unwrap(), 1_500_000);
        assert!(out[2].as_bool().unwrap());
        assert_eq!(out[3].clone().into_string().unwrap(), "cache");
        assert!(!out[4].as_bool().unwrap(), "a cache hit is not re-hashed");
        assert_eq!(out[5].as_int().unwrap(), 1_500_000);
        assert_eq!((out[6].as_int().unwrap(), out[7].as_int().unwrap()), (1, 1));

        let err = host
            .eval(r#"ipfs::fetch("bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku", #{offline: true})"#);
        assert!(err.unwrap_err().message.contains("not in the local IPFS store"));
        let err =
            host.eval(r#"ipfs::fetch("bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku", #{gateway: []})"#);
        assert!(err.unwrap_err().message.contains("valid options: gateways, offline"));
        let err = host.eval(r#"ipfs::fetch("not-a-cid")"#).unwrap_err();
        assert!(err.message.contains("'not-a-cid' is not a CID"), "{}", err.message);
        host.services().shutdown();
    }
}
