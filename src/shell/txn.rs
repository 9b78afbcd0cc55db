//! Transactional calls with a bound librdkafka cannot break.
//!
//! librdkafka can leave `send_offsets_to_transaction` waiting for ever when
//! the cluster restarts under it: its coordinator request never checks its
//! own timeout (librdkafka #5456), and, as we read its code, a
//! FindCoordinator that fails while the broker loads waits for a broker
//! state change that may never come. Observed here: a broker restarted
//! mid-commit left care blocked in that call for minutes, in about one run
//! in three (a stack dump showed it waiting in `rd_kafka_txn_op_req0`).
//!
//! So every transactional call runs on one caller thread, and the worker
//! waits for it at most the call's own timeout plus a grace period. A call
//! that does not come back leaves its producer unusable, since librdkafka
//! runs one transactional call at a time: the caller reports
//! [`TxnError::Stuck`] and refuses further calls, and the worker replaces the
//! producer. The new producer's `init_transactions`, with the same
//! transactional id, fences the stuck one and settles its transaction
//! (aborts it, or completes a commit already under way); the stuck thread is
//! left to finish or not, holding the old producer (the worker stops after a
//! few replacements rather than pile them up).

use std::sync::mpsc;
use std::time::Duration;

use rdkafka::error::KafkaError;

/// What a transactional call can come back with.
#[derive(Debug, thiserror::Error)]
pub enum TxnError {
    #[error(transparent)]
    Kafka(#[from] KafkaError),
    #[error("{call} did not return within {after:?} (librdkafka #5456); the producer must be replaced")]
    Stuck { call: &'static str, after: Duration },
}

type Call<P> = Box<dyn FnOnce(&P) -> Result<(), KafkaError> + Send>;

/// Runs calls on `P` (the producer) on its own thread, each bounded.
pub struct TxnCaller<P> {
    calls: mpsc::Sender<Call<P>>,
    results: mpsc::Receiver<Result<(), KafkaError>>,
    stuck: Option<(&'static str, Duration)>,
    /// Time a call may take past its own timeout before it counts as stuck.
    grace: Duration,
}

impl<P: Send + Sync + 'static> TxnCaller<P> {
    /// Starts the caller thread, which owns a handle on the producer.
    ///
    /// # Errors
    /// The thread cannot be started.
    pub fn start(producer: std::sync::Arc<P>, grace: Duration) -> std::io::Result<TxnCaller<P>> {
        let (calls, inbox) = mpsc::channel::<Call<P>>();
        let (outbox, results) = mpsc::channel();
        std::thread::Builder::new().name("care-txn".into()).spawn(move || {
            for call in inbox {
                if outbox.send(call(&producer)).is_err() {
                    break;
                }
            }
        })?;
        Ok(TxnCaller { calls, results, stuck: None, grace })
    }

    /// Runs `f`, whose own timeout is `timeout`, and waits at most that plus
    /// a grace period.
    ///
    /// # Errors
    /// The call's error, or [`TxnError::Stuck`] for this and every later call.
    pub fn call(&mut self, name: &'static str, timeout: Duration, f: impl FnOnce(&P) -> Result<(), KafkaError> + Send + 'static) -> Result<(), TxnError> {
        if let Some((call, after)) = self.stuck {
            return Err(TxnError::Stuck { call, after });
        }
        let limit = timeout + self.grace;
        let sent = self.calls.send(Box::new(f)).is_ok();
        match self.results.recv_timeout(limit) {
            Ok(r) if sent => r.map_err(TxnError::from),
            _ => {
                self.stuck = Some((name, limit));
                Err(TxnError::Stuck { call: name, after: limit })
            }
        }
    }

    /// Whether a call got stuck: the producer must be replaced.
    pub fn is_stuck(&self) -> bool {
        self.stuck.is_some()
    }

    /// The call that got stuck, if one did.
    pub fn stuck_in(&self) -> Option<&'static str> {
        self.stuck.map(|(call, _)| call)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    const GRACE: Duration = Duration::from_millis(50);

    #[test]
    fn a_call_that_returns_gives_its_result() {
        let mut c = TxnCaller::start(Arc::new(5u32), GRACE).unwrap();
        assert!(c.call("ok", Duration::ZERO, |p| if *p == 5 { Ok(()) } else { Err(KafkaError::Canceled) }).is_ok());
        assert!(matches!(c.call("err", Duration::ZERO, |_| Err(KafkaError::Canceled)), Err(TxnError::Kafka(KafkaError::Canceled))));
        assert!(!c.is_stuck());
    }

    #[test]
    fn a_call_that_never_returns_is_reported_stuck_and_so_is_every_later_one() {
        let mut c = TxnCaller::start(Arc::new(()), GRACE).unwrap();
        let (_hold, wait) = mpsc::channel::<()>();
        let started = std::time::Instant::now();
        // Blocks until `_hold` drops, i.e. past the bound.
        let r = c.call("send_offsets", Duration::ZERO, move |_| {
            let _ = wait.recv();
            Ok(())
        });
        assert!(matches!(r, Err(TxnError::Stuck { call: "send_offsets", .. })), "{r:?}");
        assert!(started.elapsed() >= GRACE);
        assert!(c.is_stuck());
        assert!(matches!(c.call("commit", Duration::ZERO, |_| Ok(())), Err(TxnError::Stuck { call: "send_offsets", .. })));
    }
}
