//! The control endpoint's messages and their framing: one JSON object per line, each way,
//! with a bounded line length. docs/protocol.md describes every message.

use std::io::{BufRead, ErrorKind};

use serde::{Deserialize, Serialize};

use crate::net::Flags;
use crate::stats::UnitStats;
use crate::train::{Command, Event, RunState, Tunable};

/// Bumped whenever a message changes meaning; client and run must agree.
pub const PROTOCOL_VERSION: u32 = 1;
/// The longest line a run accepts from a client (a command is a few dozen bytes).
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;
/// The longest line a client accepts from a run (an epoch's statistics of a wide network).
pub const MAX_REPLY_BYTES: usize = 64 << 20;

/// What a client is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A dashboard: gets the snapshot of the run so far, then every event.
    Viewer,
    /// A script (`ltmlp ctl`): gets replies and the trainer's acknowledgements only.
    Control,
}

/// Client → run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// The first message of every connection.
    Hello { version: u32, role: Role },
    /// Steer the run; acknowledged by a `steered` event once the trainer has carried it out.
    Command(Command),
    /// Where the run is, as one `status` reply.
    Status,
}

/// Where a run is, for `ltmlp ctl DIR status` and `ltmlp ls`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub dir: String,
    pub pid: u32,
    pub state: Option<RunState>,
    pub preset: Option<String>,
    pub variant: Option<String>,
    pub epoch: usize,
    pub epochs: usize,
    pub iteration: u64,
    pub learning_rate: Option<f64>,
    pub flags: Option<Flags>,
    /// The best monitored error (or loss, for autoencoders) so far.
    pub best: Option<f64>,
    pub viewers: usize,
    pub steering_actions: usize,
    pub tunables: Vec<Tunable>,
    /// A foreign trainer's declared commands (`ltmlp host`); absent for ltmlp's own runs,
    /// which carry out every command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commands: Option<Vec<String>>,
}

/// Run → client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reply {
    Welcome {
        version: u32,
        pid: u32,
        dir: String,
    },
    /// The events of the run so far follow, then `snapshot_end`. A viewer that fell behind gets
    /// a new snapshot (`resync: true`) and must start its picture afresh.
    SnapshotBegin {
        resync: bool,
    },
    /// Written `{"snapshot_end":null}` (an object like every line); a bare `"snapshot_end"`
    /// from an older run still reads.
    #[serde(serialize_with = "null_payload")]
    SnapshotEnd,
    /// One event; `units` carries the per-unit statistics of its layers (not part of the
    /// metrics files' format, so sent beside the event).
    Event {
        event: Event,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        units: Vec<UnitStats>,
    },
    /// The command was handed to the trainer (its `steered` event follows).
    Accepted {
        command: Command,
    },
    Status(Box<Status>),
    /// The request was refused; the connection stays open unless the message says otherwise.
    Error {
        message: String,
    },
}

impl Reply {
    /// An event with its per-unit statistics beside it.
    pub fn event(event: &Event) -> Reply {
        let units = match event {
            Event::Layers { layers, .. } => layers.iter().map(|l| l.per_unit.clone()).collect(),
            Event::Epoch(m) | Event::Replayed(m) => {
                m.layers.iter().map(|l| l.per_unit.clone()).collect()
            }
            _ => Vec::new(),
        };
        Reply::Event {
            event: event.clone(),
            units,
        }
    }

    /// The event with its per-unit statistics put back, if this is an event.
    pub fn into_event(self) -> Option<Event> {
        let Reply::Event { mut event, units } = self else {
            return None;
        };
        let layers = match &mut event {
            Event::Layers { layers, .. } => Some(layers),
            Event::Epoch(m) | Event::Replayed(m) => Some(&mut m.layers),
            _ => None,
        };
        if let Some(layers) = layers {
            for (layer, units) in layers.iter_mut().zip(units) {
                layer.per_unit = units;
            }
        }
        Some(event)
    }
}

/// A payload-less message's `null`, so that the line is `{"name":null}` like `{"status":null}`.
fn null_payload<S: serde::Serializer>(serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_unit()
}

/// One message as a line.
pub fn encode<T: Serialize>(message: &T) -> String {
    let mut line = serde_json::to_string(message)
        .unwrap_or_else(|e| format!("{{\"error\":{{\"message\":\"cannot encode: {e}\"}}}}"));
    line.push('\n');
    line
}

/// Why a line could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("a message longer than {0} bytes")]
    TooLong(usize),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Reads one line of at most `max` bytes into `line` (without the newline); `Ok(false)` at
/// the end of the stream. A longer line is an error before it is held in memory whole.
pub fn read_line(
    reader: &mut impl BufRead,
    max: usize,
    line: &mut Vec<u8>,
) -> Result<bool, FrameError> {
    line.clear();
    loop {
        let chunk = match reader.fill_buf() {
            Ok(c) => c,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        if chunk.is_empty() {
            // A last line without its newline still counts.
            return Ok(!line.is_empty());
        }
        let (taken, done) = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (chunk.len(), false),
        };
        let body = if done { taken - 1 } else { taken };
        if line.len() + body > max {
            return Err(FrameError::TooLong(max));
        }
        line.extend_from_slice(&chunk[..body]);
        reader.consume(taken);
        if done {
            return Ok(true);
        }
    }
}

/// A client's line as a request, or the reason it is not one.
pub fn decode_request(line: &[u8]) -> Result<Request, String> {
    let text = std::str::from_utf8(line).map_err(|_| "the message is not UTF-8".to_string())?;
    let request: Request = serde_json::from_str(text)
        .map_err(|e| format!("not a request ({e}); see docs/protocol.md"))?;
    if let Request::Command(Command::Set { key, value }) = &request {
        if key.len() > 200 || value.len() > 10_000 {
            return Err("set: the key or value is too long".into());
        }
    }
    Ok(request)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::Param;

    #[test]
    fn requests_round_trip_and_junk_is_refused() {
        for r in [
            Request::Hello {
                version: PROTOCOL_VERSION,
                role: Role::Viewer,
            },
            Request::Command(Command::Toggle(Param::Alpha)),
            Request::Command(Command::Set {
                key: "train.momentum".into(),
                value: "0.95".into(),
            }),
            Request::Status,
        ] {
            let line = encode(&r);
            assert_eq!(decode_request(line.trim_end().as_bytes()).unwrap(), r);
        }
        assert!(decode_request(b"{\"command\":\"launch\"}").is_err());
        assert!(decode_request(&[0xff, 0xfe]).is_err());
        assert!(decode_request(b"{\"status\":null,\"extra\":1}").is_err());
    }

    #[test]
    fn every_reply_line_is_one_json_object_and_the_older_bare_snapshot_end_still_reads() {
        let line = encode(&Reply::SnapshotEnd);
        assert_eq!(line, "{\"snapshot_end\":null}\n");
        for text in ["{\"snapshot_end\":null}", "\"snapshot_end\""] {
            let reply: Reply = serde_json::from_str(text).unwrap();
            assert_eq!(reply, Reply::SnapshotEnd, "{text}");
        }
    }

    #[test]
    fn a_line_beyond_the_bound_is_refused_without_reading_it_whole() {
        let long = vec![b'x'; 1000];
        let mut reader = std::io::BufReader::with_capacity(16, &long[..]);
        let mut line = Vec::new();
        assert!(matches!(
            read_line(&mut reader, 100, &mut line),
            Err(FrameError::TooLong(100))
        ));
        assert!(line.len() <= 100);
        let mut reader = std::io::BufReader::new(&b"ab\ncd"[..]);
        assert!(read_line(&mut reader, 100, &mut line).unwrap());
        assert_eq!(line, b"ab");
        assert!(read_line(&mut reader, 100, &mut line).unwrap());
        assert_eq!(line, b"cd");
        assert!(!read_line(&mut reader, 100, &mut line).unwrap());
    }
}
