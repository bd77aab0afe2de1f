//! The run's records as a trainer hands them on: one list of [`Subscriber`]s (the run folder's
//! files, a TensorBoard writer) that the host assembles and the trainer publishes its events
//! to, without knowing what they write. A subscriber whose write fails keeps the events it
//! missed in order and takes them again on [`Subscribers::flush`]: nothing is lost, and the
//! others go on. The marks a checkpoint stores, so that a resume cuts every record back to it,
//! live here too.

use std::collections::VecDeque;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{EpochMetrics, Event, Steer};

/// Where the metrics log stood when a checkpoint was taken: a resume keeps exactly this
/// prefix and checks that it is unchanged. (Stored in checkpoints: the fields are the format.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetricsMark {
    pub lines: usize,
    pub jsonl_bytes: u64,
    pub jsonl_crc: u32,
}

/// A record that could not be written; the message names the file and the way out.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct WriteError(pub String);

/// One consumer of a run's events that keeps a record of them.
pub trait Subscriber: Send {
    /// Takes one event. An error means nothing of it was kept: the list offers it again.
    fn on_event(&mut self, event: &Event) -> Result<(), WriteError>;

    /// Whether it takes this kind of event at all (the others are not queued for it).
    fn wants(&self, _event: &Event) -> bool {
        true
    }

    /// Where its records stand, for a checkpoint (`None`: it keeps no metrics log).
    fn mark(&self) -> Option<MetricsMark> {
        None
    }

    /// Makes everything taken so far durable; called before a checkpoint is saved.
    fn sync(&mut self) -> Result<(), WriteError> {
        Ok(())
    }
}

/// A run folder as the host opened it for a trainer: where it is (a native run's checkpoint
/// goes there), the subscribers that record the run's events, and what a resume kept.
pub struct RunRecords {
    pub dir: PathBuf,
    pub subscribers: Subscribers,
    /// The evaluations a resume kept, oldest first (sent again as replayed history).
    pub kept: Vec<EpochMetrics>,
    /// The steering a resume kept, whose live settings apply again.
    pub kept_actions: Vec<Steer>,
}

/// The subscribers of one run, in the order they take each event.
#[derive(Default)]
pub struct Subscribers {
    entries: Vec<Entry>,
}

struct Entry {
    subscriber: Box<dyn Subscriber>,
    /// Events it wants but has not taken yet, oldest first.
    backlog: VecDeque<Event>,
}

impl Subscribers {
    pub fn new() -> Self {
        Subscribers::default()
    }

    /// Adds a subscriber at the end of the list.
    pub fn push(&mut self, subscriber: Box<dyn Subscriber>) {
        self.entries.push(Entry {
            subscriber,
            backlog: VecDeque::new(),
        });
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Hands `event` to every subscriber that wants it, after what each still owes; the
    /// first failure, if any (the event waits with the rest for [`Subscribers::flush`]).
    pub fn publish(&mut self, event: &Event) -> Result<(), WriteError> {
        self.queue(event);
        self.flush()
    }

    /// Queues `event` for every subscriber that wants it; [`Subscribers::flush`] hands it on.
    pub fn queue(&mut self, event: &Event) {
        for entry in &mut self.entries {
            if entry.subscriber.wants(event) {
                entry.backlog.push_back(event.clone());
            }
        }
    }

    /// Retries every event a subscriber still owes, in order; the first failure, if any.
    pub fn flush(&mut self) -> Result<(), WriteError> {
        let mut first_error = None;
        for entry in &mut self.entries {
            while let Some(event) = entry.backlog.front() {
                match entry.subscriber.on_event(event) {
                    Ok(()) => {
                        entry.backlog.pop_front();
                    }
                    Err(e) => {
                        first_error.get_or_insert(e);
                        break;
                    }
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Whether some subscriber still owes an event.
    pub fn pending(&self) -> bool {
        self.entries.iter().any(|e| !e.backlog.is_empty())
    }

    /// The metrics log's mark (the first subscriber that keeps one).
    pub fn mark(&self) -> Option<MetricsMark> {
        self.entries.iter().find_map(|e| e.subscriber.mark())
    }

    /// Makes every record durable; the first failure, if any (all are tried).
    pub fn sync(&mut self) -> Result<(), WriteError> {
        let mut first_error = None;
        for entry in &mut self.entries {
            if let Err(e) = entry.subscriber.sync() {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    type Shared<T> = Arc<Mutex<T>>;

    /// Keeps the logs it takes; fails while `failing` is set.
    struct Log {
        taken: Shared<Vec<String>>,
        failing: Shared<bool>,
    }

    impl Subscriber for Log {
        fn on_event(&mut self, event: &Event) -> Result<(), WriteError> {
            if *self.failing.lock().unwrap() {
                return Err(WriteError("disk full".into()));
            }
            if let Event::Log(text) = event {
                self.taken.lock().unwrap().push(text.clone());
            }
            Ok(())
        }
        fn wants(&self, event: &Event) -> bool {
            matches!(event, Event::Log(_))
        }
    }

    fn log() -> (Log, Shared<Vec<String>>, Shared<bool>) {
        let taken = Arc::new(Mutex::new(Vec::new()));
        let failing = Arc::new(Mutex::new(false));
        let sub = Log {
            taken: taken.clone(),
            failing: failing.clone(),
        };
        (sub, taken, failing)
    }

    #[test]
    fn a_failing_subscriber_takes_what_it_missed_in_order_and_the_others_each_once() {
        let (a, a_taken, a_failing) = log();
        let (b, b_taken, _) = log();
        let mut list = Subscribers::new();
        list.push(Box::new(a));
        list.push(Box::new(b));
        list.publish(&Event::Log("1".into())).unwrap();
        *a_failing.lock().unwrap() = true;
        assert!(list.publish(&Event::Log("2".into())).is_err());
        // Not wanted: never queued, so it cannot hold the others up.
        assert!(list
            .publish(&Event::State(super::super::RunState::Paused))
            .is_err());
        assert!(list.publish(&Event::Log("3".into())).is_err());
        assert!(list.pending());
        *a_failing.lock().unwrap() = false;
        list.flush().unwrap();
        assert!(!list.pending());
        assert_eq!(*a_taken.lock().unwrap(), ["1", "2", "3"]);
        assert_eq!(*b_taken.lock().unwrap(), ["1", "2", "3"]);
    }
}
