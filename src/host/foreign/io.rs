//! The two pipes to a foreign trainer: its lines read on a thread of their own with a bound
//! (an overlong line is skipped without being held), and the host's commands written on
//! another through a small queue, so that a trainer that stops reading never blocks the host.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};

use crossbeam_channel::{bounded, Receiver, Sender, TrySendError};

use super::messages::{self, TrainerEvent};

/// The longest line a trainer may write: as long as a line the hub sends its viewers (an
/// epoch's per-unit statistics of a wide network).
pub const MAX_TRAINER_LINE: usize = crate::remote::wire::MAX_REPLY_BYTES;
/// Commands queued for a trainer that has not read them yet.
const COMMAND_QUEUE: usize = 64;

/// What the reader thread hands over.
#[derive(Debug)]
pub enum Input {
    /// Line `number` (1-based) as an event, or the reason it is dropped.
    Line {
        number: usize,
        event: Result<TrainerEvent, String>,
    },
    /// The trainer's output ended (`None`) or failed.
    End(Option<String>),
}

/// Starts reading `source` line by line.
pub fn read_lines(source: impl Read + Send + 'static, limit: usize) -> Receiver<Input> {
    let (tx, rx) = bounded(256);
    let _ = std::thread::Builder::new()
        .name("ltmlp-host-read".into())
        .spawn(move || {
            let mut reader = BufReader::with_capacity(1 << 16, source);
            let mut line = Vec::new();
            let mut number = 0;
            loop {
                number += 1;
                let input = match read_bounded_line(&mut reader, limit, &mut line) {
                    Ok(Framed::Line) => Input::Line {
                        number,
                        event: messages::decode(&line),
                    },
                    Ok(Framed::TooLong) => Input::Line {
                        number,
                        event: Err(format!(
                            "longer than {limit} bytes; skipped without reading it whole"
                        )),
                    },
                    Ok(Framed::End) => Input::End(None),
                    Err(e) => Input::End(Some(e.to_string())),
                };
                let end = matches!(input, Input::End(_));
                if tx.send(input).is_err() || end {
                    return;
                }
            }
        });
    rx
}

enum Framed {
    Line,
    /// The line was longer than the limit; its bytes were consumed and dropped.
    TooLong,
    End,
}

/// One line into `line`, or the rest of an overlong line skipped in chunks.
fn read_bounded_line(
    reader: &mut impl BufRead,
    limit: usize,
    line: &mut Vec<u8>,
) -> std::io::Result<Framed> {
    line.clear();
    let mut too_long = false;
    loop {
        let chunk = match reader.fill_buf() {
            Ok(c) => c,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if chunk.is_empty() {
            return Ok(match (too_long, line.is_empty()) {
                (true, _) => Framed::TooLong,
                // A last line without its newline still counts.
                (false, false) => Framed::Line,
                (false, true) => Framed::End,
            });
        }
        let (taken, done) = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (chunk.len(), false),
        };
        let body = if done { taken - 1 } else { taken };
        if !too_long && line.len() + body > limit {
            too_long = true;
            line.clear();
            line.shrink_to(1 << 16);
        }
        if !too_long {
            line.extend_from_slice(&chunk[..body]);
        }
        reader.consume(taken);
        if done {
            return Ok(if too_long {
                Framed::TooLong
            } else {
                Framed::Line
            });
        }
    }
}

/// The host's side of the trainer's command pipe.
pub struct CommandPipe {
    queue: Sender<String>,
    /// Set by the writer when a write failed: why the trainer no longer reads.
    closed: Receiver<String>,
    broken: Option<String>,
}

/// Starts the writer thread on `sink`.
pub fn write_lines(mut sink: impl Write + Send + 'static) -> CommandPipe {
    let (queue, lines) = bounded::<String>(COMMAND_QUEUE);
    let (closed_tx, closed) = bounded(1);
    let _ = std::thread::Builder::new()
        .name("ltmlp-host-write".into())
        .spawn(move || {
            for line in lines.iter() {
                if let Err(e) = sink.write_all(line.as_bytes()).and_then(|()| sink.flush()) {
                    let _ = closed_tx.send(e.to_string());
                    return;
                }
            }
        });
    CommandPipe {
        queue,
        closed,
        broken: None,
    }
}

impl CommandPipe {
    /// Queues one line; the reason when the trainer cannot take it.
    pub fn send(&mut self, line: String) -> Result<(), String> {
        if let Some(why) = self.broken() {
            return Err(why);
        }
        match self.queue.try_send(line) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => Err(format!(
                "the trainer has not read its last {COMMAND_QUEUE} commands"
            )),
            Err(TrySendError::Disconnected(_)) => Err(self
                .broken()
                .unwrap_or_else(|| "the command pipe is closed".into())),
        }
    }

    /// Why the trainer no longer reads commands, once a write has failed.
    pub fn broken(&mut self) -> Option<String> {
        if self.broken.is_none() {
            self.broken = self.closed.try_recv().ok();
        }
        self.broken.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_overlong_line_is_skipped_and_the_next_one_read() {
        let mut text = vec![b'x'; 1000];
        text.extend_from_slice(b"\nshort\nlast");
        let mut reader = BufReader::with_capacity(16, &text[..]);
        let mut line = Vec::new();
        assert!(matches!(
            read_bounded_line(&mut reader, 100, &mut line).unwrap(),
            Framed::TooLong
        ));
        assert!(line.capacity() <= 1 << 16);
        assert!(matches!(
            read_bounded_line(&mut reader, 100, &mut line).unwrap(),
            Framed::Line
        ));
        assert_eq!(line, b"short");
        assert!(matches!(
            read_bounded_line(&mut reader, 100, &mut line).unwrap(),
            Framed::Line
        ));
        assert_eq!(line, b"last");
        assert!(matches!(
            read_bounded_line(&mut reader, 100, &mut line).unwrap(),
            Framed::End
        ));
    }
}
