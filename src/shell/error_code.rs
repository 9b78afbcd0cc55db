//! Bounded error codes: what an error is, in a few words an alert rule can
//! name. librdkafka has some 200 codes and care's errors wrap them in
//! context; a metric label takes one of the short list below, so every
//! series exists from the start (at zero) and none can multiply.

use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode as C;

/// What went wrong, as a metric label and a log field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// No broker reachable, a connection dropped, a name that does not resolve.
    Transport,
    /// A request or a message that timed out.
    Timeout,
    /// Authentication, TLS or an ACL refused it: needs an operator.
    Auth,
    /// Another process took over this one's transactional or instance id.
    Fenced,
    /// A topic or partition that does not exist (or not yet).
    UnknownTopic,
    /// A record larger than a producer, topic or broker takes.
    TooLarge,
    /// Leadership or coordinator moving: brokers restarting, a rebalance.
    Coordinator,
    /// A record of a transaction was not delivered, so it must abort.
    Delivery,
    /// A transactional call that never returned (librdkafka #5456).
    Stuck,
    /// A changelog record this binary cannot read.
    CorruptRecord,
    /// Restored state older than the group's committed offsets: read again.
    StaleRead,
    /// A `CARE_FAULT` injection.
    Injected,
    /// Anything else; the log line has the whole error.
    Other,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 13] = [
        ErrorCode::Transport,
        ErrorCode::Timeout,
        ErrorCode::Auth,
        ErrorCode::Fenced,
        ErrorCode::UnknownTopic,
        ErrorCode::TooLarge,
        ErrorCode::Coordinator,
        ErrorCode::Delivery,
        ErrorCode::Stuck,
        ErrorCode::CorruptRecord,
        ErrorCode::StaleRead,
        ErrorCode::Injected,
        ErrorCode::Other,
    ];

    /// What a Kafka client error can be: the codes every error metric
    /// shows from the start.
    pub const KAFKA: [ErrorCode; 8] = [
        ErrorCode::Transport,
        ErrorCode::Timeout,
        ErrorCode::Auth,
        ErrorCode::Fenced,
        ErrorCode::UnknownTopic,
        ErrorCode::TooLarge,
        ErrorCode::Coordinator,
        ErrorCode::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Transport => "transport",
            ErrorCode::Timeout => "timeout",
            ErrorCode::Auth => "auth",
            ErrorCode::Fenced => "fenced",
            ErrorCode::UnknownTopic => "unknown_topic",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::Coordinator => "coordinator",
            ErrorCode::Delivery => "delivery",
            ErrorCode::Stuck => "stuck",
            ErrorCode::CorruptRecord => "corrupt_record",
            ErrorCode::StaleRead => "stale_read",
            ErrorCode::Injected => "injected",
            ErrorCode::Other => "other",
        }
    }

    /// Index in [`ErrorCode::ALL`].
    pub fn idx(self) -> usize {
        ErrorCode::ALL.iter().position(|c| *c == self).unwrap_or(ErrorCode::ALL.len() - 1)
    }

    /// The code of one of librdkafka's error codes.
    pub fn of_rdkafka(code: C) -> ErrorCode {
        match code {
            C::BrokerTransportFailure | C::AllBrokersDown | C::Resolve | C::NetworkException | C::BrokerNotAvailable | C::DestroyBroker | C::BrokerDestroy => ErrorCode::Transport,
            C::MessageTimedOut | C::OperationTimedOut | C::RequestTimedOut | C::TimedOutQueue => ErrorCode::Timeout,
            C::Authentication
            | C::SSL
            | C::SaslAuthenticationFailed
            | C::UnsupportedSASLMechanism
            | C::IllegalSASLState
            | C::TopicAuthorizationFailed
            | C::GroupAuthorizationFailed
            | C::ClusterAuthorizationFailed
            | C::TransactionalIdAuthorizationFailed => ErrorCode::Auth,
            C::Fenced | C::ProducerFenced | C::InvalidProducerEpoch | C::FencedInstanceId | C::TransactionCoordinatorFenced => ErrorCode::Fenced,
            C::UnknownTopicOrPartition | C::UnknownTopic | C::UnknownPartition => ErrorCode::UnknownTopic,
            C::MessageSizeTooLarge | C::InvalidMessageSize | C::MessageBatchTooLarge => ErrorCode::TooLarge,
            C::LeaderNotAvailable
            | C::NotLeaderForPartition
            | C::CoordinatorLoadInProgress
            | C::CoordinatorNotAvailable
            | C::NotCoordinator
            | C::RebalanceInProgress
            | C::WaitingForCoordinator
            | C::NotEnoughReplicas
            | C::NotEnoughReplicasAfterAppend
            | C::ConcurrentTransactions => ErrorCode::Coordinator,
            _ => ErrorCode::Other,
        }
    }

    /// The code of a Kafka client error.
    pub fn of_kafka(e: &KafkaError) -> ErrorCode {
        if let KafkaError::Transaction(t) = e {
            return ErrorCode::of_rdkafka(t.code());
        }
        e.rdkafka_error_code().map_or(ErrorCode::Other, ErrorCode::of_rdkafka)
    }

    /// The code of an error with context: the first cause in its chain
    /// that care knows.
    pub fn of(e: &anyhow::Error) -> ErrorCode {
        use crate::shell::publish::PublishError;
        use crate::shell::txn::TxnError;
        for c in e.chain() {
            if c.is::<crate::shell::faults::InjectedAbort>() {
                return ErrorCode::Injected;
            }
            match c.downcast_ref::<PublishError>() {
                Some(PublishError::Delivery { .. }) => return ErrorCode::Delivery,
                Some(PublishError::FlushTimeout(_)) => return ErrorCode::Timeout,
                Some(PublishError::Send(k) | PublishError::Create(k)) => return ErrorCode::of_kafka(k),
                Some(PublishError::Thread(_)) | None => {}
            }
            match c.downcast_ref::<TxnError>() {
                Some(TxnError::Stuck { .. }) => return ErrorCode::Stuck,
                Some(TxnError::Kafka(k)) => return ErrorCode::of_kafka(k),
                _ => {}
            }
            if let Some(k) = c.downcast_ref::<KafkaError>() {
                return ErrorCode::of_kafka(k);
            }
        }
        ErrorCode::Other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_and_found_through_context() {
        let names: std::collections::BTreeSet<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(names.len(), ErrorCode::ALL.len());
        assert!(ErrorCode::ALL.iter().enumerate().all(|(i, c)| c.idx() == i));
        let down = anyhow::Error::new(KafkaError::MessageConsumption(C::AllBrokersDown)).context("polling");
        assert_eq!(ErrorCode::of(&down), ErrorCode::Transport);
        let fenced = anyhow::Error::new(KafkaError::ConsumerCommit(C::FencedInstanceId)).context("committing offsets");
        assert_eq!(ErrorCode::of(&fenced), ErrorCode::Fenced);
        let failed = anyhow::Error::new(crate::shell::publish::PublishError::Delivery { failed: 2, first: "x".into() }).context("flushing");
        assert_eq!(ErrorCode::of(&failed), ErrorCode::Delivery);
        assert_eq!(ErrorCode::of(&anyhow::anyhow!("something else")), ErrorCode::Other);
        assert_eq!(ErrorCode::of_rdkafka(C::TopicAuthorizationFailed), ErrorCode::Auth);
    }
}
