//! The walk over regions in priority order: failover on persistent failures, and hedging of
//! slow calls to the next region (first decisive answer wins, the other call is dropped).

use std::time::Duration;

use crate::config::CallKind;
use crate::engine::{Build, Engine, RegionResult, Reply, Tried, Walked};
use crate::error::ClientError;
use crate::observe::ClientEvent;

impl Engine {
    /// Runs `a`; past `after`, also runs `b`. The first decisive result wins and the other
    /// call is dropped (cancelled). Returns the results and how many regions were used. With a
    /// streaming answer, the first decisive response head wins.
    async fn hedged<R: Reply>(
        &self,
        kind: CallKind,
        a: usize,
        b: usize,
        after: Duration,
        build: Build<'_>,
    ) -> (Vec<Tried<R>>, usize) {
        let fa = self.call_region(kind, a, build);
        tokio::pin!(fa);
        tokio::select! {
            r = &mut fa => return (vec![r], 1),
            _ = tokio::time::sleep(after) => {}
        }
        tracing::debug!(from = self.label(a), to = self.label(b), "hedging");
        self.emit(ClientEvent::Hedge {
            from: self.label(a),
            to: self.label(b),
        });
        let fb = self.call_region(kind, b, build);
        tokio::pin!(fb);
        let (first, other_is_a) = tokio::select! {
            r = &mut fa => (r, false),
            r = &mut fb => (r, true),
        };
        if !matches!(first.result, RegionResult::Failed(_)) {
            return (vec![first], 2);
        }
        let second = if other_is_a { fa.await } else { fb.await };
        (vec![first, second], 2)
    }

    /// The whole call: regions in priority order (closed, then recovering), failing over on
    /// persistent failures. Failover events are emitted only when a tried region failed, not
    /// for regions skipped because their breaker is open.
    pub async fn walk<R: Reply>(
        &self,
        kind: CallKind,
        build: Build<'_>,
    ) -> Result<Walked<R>, ClientError> {
        let order = self.candidates();
        if order.is_empty() {
            return Err(ClientError::AllRegionsFailed {
                attempts: 0,
                last: "no region available: every circuit breaker is open".into(),
            });
        }
        self.budget.deposit();
        let hedge = self.policy.hedge_after(kind);
        let (mut i, mut attempts, mut failovers) = (0, 0, 0);
        let mut last = String::new();
        while i < order.len() {
            let (results, used) = match hedge {
                Some(after) if i + 1 < order.len() => {
                    self.hedged(kind, order[i], order[i + 1], after, build)
                        .await
                }
                _ => (vec![self.call_region(kind, order[i], build).await], 1),
            };
            for tried in results {
                attempts += tried.attempts;
                match tried.result {
                    RegionResult::Failed(why) => {
                        last = format!("{}: {why}", self.name(tried.region));
                    }
                    _ => {
                        return Ok(Walked {
                            tried,
                            attempts,
                            failovers,
                        })
                    }
                }
            }
            let failed = order[i + used - 1];
            i += used;
            if let Some(&next) = order.get(i) {
                failovers += 1;
                self.metrics.failovers.inc();
                tracing::info!(
                    from = self.label(failed),
                    to = self.label(next),
                    "failing over"
                );
                self.emit(ClientEvent::Failover {
                    from: self.label(failed),
                    to: self.label(next),
                });
            }
        }
        Err(ClientError::AllRegionsFailed { attempts, last })
    }
}
