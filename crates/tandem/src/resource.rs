//! `tandem resource …`: resources and keys, straight on the region's store.

use anyhow::{anyhow, Context};
use serde_json::json;
use tandem_core::{KeySlot, RegionConfig, ResourceId};
use tandem_server::{create_resource, regenerate_key};
use tandem_store::{Resource, Store};

use crate::cli::ResourceCommand;

async fn open(cfg: &RegionConfig) -> anyhow::Result<Store> {
    std::fs::create_dir_all(&cfg.data_dir)
        .with_context(|| format!("creating {}", cfg.data_dir.display()))?;
    tandem_server::open_region_store(cfg)
        .await
        .context("opening the region's store")
}

async fn find(store: &Store, cfg: &RegionConfig, which: &str) -> anyhow::Result<Resource> {
    let found = match which.parse::<ResourceId>() {
        Ok(id) => store.meta.get_resource(id).await?,
        Err(_) => store.meta.get_resource_by_name(&cfg.region, which).await?,
    };
    found
        .filter(|r| r.region == cfg.region)
        .ok_or_else(|| anyhow!("no resource {which:?} in region {}", cfg.region))
}

/// Runs a resource subcommand.
pub async fn run(cmd: ResourceCommand) -> anyhow::Result<()> {
    match cmd {
        ResourceCommand::Create {
            region,
            name,
            concurrency,
            json,
        } => {
            let cfg = region.resolve()?;
            let store = open(&cfg).await?;
            let limit = concurrency.unwrap_or(cfg.default_concurrency);
            let created = create_resource(store.meta.as_ref(), &cfg.region, &name, limit)
                .await
                .map_err(|e| anyhow!("{e}"))?;
            if json {
                println!("{}", created.to_json());
            } else {
                println!("id:     {}", created.resource.id);
                println!("region: {}", created.resource.region);
                println!("name:   {}", created.resource.name);
                println!("key1:   {}", created.key1.expose());
                println!("key2:   {}", created.key2.expose());
                eprintln!("(the keys are shown only now; Tandem stores only their hashes)");
            }
            store.close().await;
        }
        ResourceCommand::List { region, json } => {
            let cfg = region.resolve()?;
            let store = open(&cfg).await?;
            let rs = store.meta.list_resources(&cfg.region).await?;
            if json {
                let v: Vec<_> = rs
                    .iter()
                    .map(|r| json!({"id": r.id.to_string(), "region": r.region.to_string(), "name": r.name, "concurrencyLimit": r.concurrency_limit}))
                    .collect();
                println!("{}", serde_json::Value::Array(v));
            } else {
                println!("{:<38} {:<10} {:>11}  NAME", "ID", "REGION", "CONCURRENCY");
                for r in rs {
                    println!(
                        "{:<38} {:<10} {:>11}  {}",
                        r.id, r.region, r.concurrency_limit, r.name
                    );
                }
            }
            store.close().await;
        }
        ResourceCommand::Delete { region, resource } => {
            let cfg = region.resolve()?;
            let store = open(&cfg).await?;
            let r = find(&store, &cfg, &resource).await?;
            store.meta.delete_resource(r.id).await?;
            println!("deleted {} ({})", r.id, r.name);
            store.close().await;
        }
        ResourceCommand::RegenerateKey {
            region,
            resource,
            key,
            json,
        } => {
            let cfg = region.resolve()?;
            let slot: KeySlot = key.parse()?;
            let store = open(&cfg).await?;
            let r = find(&store, &cfg, &resource).await?;
            let new_key = regenerate_key(store.meta.as_ref(), r.id, slot)
                .await
                .map_err(|e| anyhow!("{e}"))?;
            if json {
                println!(
                    "{}",
                    json!({"id": r.id.to_string(), slot.as_str(): new_key.expose()})
                );
            } else {
                println!("{}: {}", slot.as_str(), new_key.expose());
            }
            store.close().await;
        }
    }
    Ok(())
}
