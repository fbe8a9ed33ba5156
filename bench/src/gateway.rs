//! Gateway overhead against direct calls, measured with wrk in one run on one box.

use std::path::Path;
use std::process::Command;

use serde_json::json;
use tandem_testkit::{GatewayProcess, RegionOptions, RegionProcess};

use crate::stats::{median, save};

/// p50 latency (ms) and throughput (requests/s) of one wrk run.
fn wrk(url: &str, key: &str, secs: u32) -> anyhow::Result<(f64, f64)> {
    let out = Command::new("wrk")
        .args(["-t1", "-c8", &format!("-d{secs}s"), "--latency", "-H"])
        .arg(format!("Ocp-Apim-Subscription-Key: {key}"))
        .arg(url)
        .output()
        .map_err(|e| anyhow::anyhow!("running wrk (apt-get install wrk): {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    anyhow::ensure!(!text.contains("Non-2xx"), "wrk saw errors:\n{text}");
    parse_wrk(&text).ok_or_else(|| anyhow::anyhow!("unexpected wrk output:\n{text}"))
}

/// Reads the 50 % latency line and `Requests/sec` from wrk's `--latency` report.
pub fn parse_wrk(text: &str) -> Option<(f64, f64)> {
    let mut p50 = None;
    let mut rps = None;
    for line in text.lines().map(str::trim) {
        if let Some(v) = line.strip_prefix("50%") {
            p50 = to_ms(v.trim());
        } else if let Some(v) = line.strip_prefix("Requests/sec:") {
            rps = v.trim().parse().ok();
        }
    }
    Some((p50?, rps?))
}

fn to_ms(v: &str) -> Option<f64> {
    let split = v.find(|c: char| c.is_ascii_alphabetic())?;
    let (num, unit) = v.split_at(split);
    let n: f64 = num.parse().ok()?;
    Some(match unit {
        "us" => n / 1e3,
        "ms" => n,
        "s" => n * 1e3,
        _ => return None,
    })
}

/// Runs the gateway overhead benchmark.
pub async fn run(bin: &Path, out: &Path, rounds: usize) -> anyhow::Result<()> {
    let region = RegionProcess::start(bin, "westus", RegionOptions::default()).await;
    let key = region.create_resource("bench").key1;
    let dir = std::env::temp_dir().join(format!("tandem-bench-gw-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let file = dir.join("regions.toml");
    std::fs::write(
        &file,
        format!("gateway_key = \"gw\"\n[[regions]]\nname = \"westus\"\nendpoint = \"{}\"\nkey = \"{key}\"\n", region.url),
    )?;
    let gateway = GatewayProcess::start(bin, &file);
    let route = "/cognitiveservices/voices/list";
    let (mut d50, mut drps, mut g50, mut grps) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    wrk(&format!("{}{route}", region.url), &key, 2)?; // warm-up
    wrk(&format!("{}{route}", gateway.url), "gw", 2)?;
    for _ in 0..rounds {
        let (p, r) = wrk(&format!("{}{route}", region.url), &key, 5)?;
        d50.push(p);
        drps.push(r);
        let (p, r) = wrk(&format!("{}{route}", gateway.url), "gw", 5)?;
        g50.push(p);
        grps.push(r);
    }
    let added = median(&g50) - median(&d50);
    let ratio = median(&grps) / median(&drps);
    println!(
        "\n### Gateway overhead (wrk -t1 -c8, GET {route}, {rounds} interleaved 5 s rounds)\n"
    );
    println!("| path | p50 latency | throughput |");
    println!("|---|---|---|");
    println!(
        "| direct to the region | {:.3} ms | {:.0} req/s |",
        median(&d50),
        median(&drps)
    );
    println!(
        "| through `tandem gateway` | {:.3} ms | {:.0} req/s |",
        median(&g50),
        median(&grps)
    );
    println!("\nAdded p50 latency: {added:.3} ms (goal ≤ 0.3 ms). Throughput ratio: {:.0} % (goal ≥ 80 %).", ratio * 100.0);
    save(
        out,
        "gateway",
        &json!({"rounds": rounds, "direct_p50_ms": d50, "direct_rps": drps, "gateway_p50_ms": g50,
                "gateway_rps": grps, "added_p50_ms": added, "throughput_ratio": ratio}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_wrk_reports() {
        let text = "  Latency Distribution\n     50%  412.00us\n     75%    1.20ms\nRequests/sec:  12345.67\n";
        assert_eq!(parse_wrk(text), Some((0.412, 12345.67)));
        assert_eq!(to_ms("1.5s"), Some(1500.0));
        assert_eq!(parse_wrk("garbage"), None);
    }
}
