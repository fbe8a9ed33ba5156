//! A TCP proxy that injects faults on demand. `tandem drill` puts one in front of each region
//! (the SDK and the region's pair reach the region through it, so a restarted region keeps its
//! address, and network faults are one switch), and `tandem-testkit` wraps it as `FaultProxy`
//! for the black-box tests: tests and drills inject the very same faults.
//!
//! In [`ProxyFault::None`] it relays bytes both ways. Switching the fault (or the target)
//! closes every open connection, so pooled keep-alive connections cannot slip past a newly
//! injected fault. Errors are returned, never panics: this one runs in the product.

#![deny(missing_docs)]

mod proxy;

pub use proxy::{Proxy, ProxyError, ProxyFault, Result};
