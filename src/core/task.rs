//! Tasks: the unit of state, restore, revoke and commit.
//!
//! A task owns the state folded from one partition of its input topics
//! (customers, stream time, timers, dirty set, input offsets, `emit_from`).
//! Exactly one worker owns a task at a time; nothing else touches its state.

use std::fmt;

/// Names a task as Kafka Streams does: `<group>_<partition>`. Group 0 is the
/// co-partitioned source topics; later groups can name repartition topics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TaskId {
    pub group: u16,
    pub partition: i32,
}

impl TaskId {
    /// The task of partition `partition` of the source topics.
    pub const fn source(partition: i32) -> TaskId {
        TaskId { group: 0, partition }
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}_{}", self.group, self.partition)
    }
}

/// Where a task is in its life on this instance. Its input is paused until
/// it is `Active`; readiness is false while any task is not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Handed to this instance by the group, nothing done yet.
    Assigned,
    /// Reading its state back before it may process input.
    Restoring,
    /// Processing input.
    Active,
    /// Finishing its last batch before it is handed over.
    Revoking,
}

impl Phase {
    /// Lowercase name, for logs, metrics labels and HTTP.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Assigned => "assigned",
            Phase::Restoring => "restoring",
            Phase::Active => "active",
            Phase::Revoking => "revoking",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_ids_read_like_kafka_streams_and_sort_by_group_then_partition() {
        assert_eq!(TaskId::source(3).to_string(), "0_3");
        let mut ids = [TaskId { group: 1, partition: 0 }, TaskId::source(2), TaskId::source(0)];
        ids.sort();
        assert_eq!(ids, [TaskId::source(0), TaskId::source(2), TaskId { group: 1, partition: 0 }]);
    }
}
