//! `tandem drill`: proves what Tandem promises when a region dies, on real processes.
//!
//! A [`Scenario`] (TOML) names:
//! - the regions: `tandem serve` processes the drill starts on loopback with embedded storage,
//!   or existing endpoints; each behind a TCP [`Proxy`] (`tandem-faults`) that everyone (the
//!   SDK, the gateway, the region's pair) goes through;
//! - the load: a weighted mix of default and custom (`cid`) STT, public and custom voice TTS,
//!   speaker verification and enrollment, at a fixed rate and concurrency, through the failover
//!   SDK (`tandem-client`) and through a `tandem gateway` the drill starts; the assets it needs
//!   are seeded first through the public APIs (`seed`);
//! - the faults on a timeline (`kill -9`, `SIGSTOP`/`SIGCONT`, restart, the proxy's blackhole,
//!   injected statuses and delays, a partition of the replication link between a pair);
//! - the goals.
//!
//! [`run`] plays it on wall time and writes a [`Report`] (JSON and Markdown) and a chart (SVG
//! and PNG). The report is computed from the recorded calls and faults alone
//! ([`report::build`]), so its arithmetic is unit-tested without processes or clocks.

#![deny(missing_docs)]

mod chart;
mod error;
pub mod lag;
mod load;
mod region;
pub mod report;
mod run;
mod scenario;
pub mod seed;

#[cfg(test)]
mod tests;

pub use chart::{write_png, write_svg, FONT_ENV};
pub use error::{DrillError, Result};
pub use load::{error_type, kind_of, Kind, Sample};
pub use report::{FaultRecord, GoalCheck, Report};
pub use run::{run, Options, Outcome};
pub use scenario::{Action, FaultSpec, Goals, Load, RegionSpec, Scenario, Seed};
pub use tandem_faults::{Proxy, ProxyFault};
