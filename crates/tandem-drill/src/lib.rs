//! `tandem drill`: proves what Tandem promises when a region dies, on real processes.
//!
//! A [`Scenario`] (TOML) names the regions, which the drill starts as `tandem serve` processes
//! on loopback with embedded storage, each behind a TCP [`Proxy`] that everyone (the SDK, the
//! region's pair) goes through; the load, sent through the failover SDK (`tandem-client`) at a
//! fixed rate and concurrency; the faults on a timeline (`kill -9`, `SIGSTOP`/`SIGCONT`,
//! restart, and the proxy's blackhole, injected statuses and delays); and the goals. [`run`]
//! plays it on wall time and writes a [`Report`] (JSON and Markdown) and an SVG chart. The
//! report is computed from the recorded calls and faults alone ([`report::build`]), so its
//! arithmetic is unit-tested without processes or clocks.
//!
//! Not yet: existing endpoints as regions, custom speech / custom voice / enrollment load,
//! partitions between pairs, the gateway as a load path.

#![deny(missing_docs)]

mod chart;
mod error;
mod load;
mod proxy;
mod region;
pub mod report;
mod run;
mod scenario;

#[cfg(test)]
mod tests;

pub use chart::write_svg;
pub use error::{DrillError, Result};
pub use load::{error_type, kind_of, Kind, Sample};
pub use proxy::{Proxy, ProxyFault};
pub use report::{FaultRecord, GoalCheck, Report};
pub use run::{run, Options, Outcome};
pub use scenario::{Action, FaultSpec, Goals, Load, RegionSpec, Scenario};
