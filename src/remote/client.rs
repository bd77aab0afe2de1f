//! The client side of the control endpoint: a live feed of a run's events for a dashboard
//! (`attach`, `watch`), and one-shot requests for scripts (`ctl`).

use std::io::{BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use crossbeam_channel::{unbounded, Receiver, Sender};

use super::endpoint;
use super::wire::{self, Reply, Request, Role, Status, MAX_REPLY_BYTES, PROTOCOL_VERSION};
use crate::train::{Command, Event, Steer};

/// What a viewer's feed delivers.
#[derive(Debug, Clone, PartialEq)]
pub enum Feed {
    /// The viewer fell behind and gets the run again from the start: forget the picture.
    Reset,
    Event(Event),
    /// An error reply (a refused command, say).
    Error(String),
}

/// A connection that said hello.
pub struct Connection {
    stream: UnixStream,
    reader: BufReader<UnixStream>,
    /// The run's process id and folder, from its welcome.
    pub pid: u32,
}

impl Connection {
    /// Connects to the run in `dir` as `role`.
    pub fn open(dir: &Path, role: Role) -> anyhow::Result<Self> {
        let mut stream = endpoint::connect(dir).map_err(|e| {
            anyhow::anyhow!(
                "{}: no live run to attach to ({e}); `ltmlp ls {}` lists the runs, and \
                 `ltmlp run --resume {}` continues an interrupted one",
                dir.join(endpoint::SOCKET_FILE).display(),
                dir.parent().map_or(".".into(), |p| p.display().to_string()),
                dir.display()
            )
        })?;
        // A run that refuses us may close before our hello is written: its reply says why.
        let hello = stream.write_all(
            wire::encode(&Request::Hello {
                version: PROTOCOL_VERSION,
                role,
            })
            .as_bytes(),
        );
        let reader = BufReader::new(stream.try_clone()?);
        let mut conn = Connection {
            stream,
            reader,
            pid: 0,
        };
        let _ = conn.stream.set_read_timeout(Some(Duration::from_secs(30)));
        match conn.next_reply() {
            Ok(Some(Reply::Welcome { pid, .. })) => conn.pid = pid,
            Ok(Some(Reply::Error { message })) => anyhow::bail!("{}: {message}", dir.display()),
            Ok(other) => {
                hello?;
                anyhow::bail!("{}: unexpected first reply {other:?}", dir.display())
            }
            Err(e) => {
                hello?;
                return Err(e);
            }
        }
        let _ = conn.stream.set_read_timeout(None);
        Ok(conn)
    }

    /// The next reply, or None when the run closed the connection.
    pub fn next_reply(&mut self) -> anyhow::Result<Option<Reply>> {
        let mut line = Vec::new();
        if !wire::read_line(&mut self.reader, MAX_REPLY_BYTES, &mut line)? {
            return Ok(None);
        }
        Ok(Some(serde_json::from_slice(&line).map_err(|e| {
            anyhow::anyhow!("the run sent a message this ltmlp cannot read: {e}")
        })?))
    }

    pub fn send(&mut self, request: &Request) -> std::io::Result<()> {
        self.stream.write_all(wire::encode(request).as_bytes())
    }

    /// A live feed of the run's events (snapshot first) and a sender of commands; the feed
    /// ends when the run closes the connection.
    pub fn into_feed(self) -> (Receiver<Feed>, Sender<Command>) {
        let (feed_tx, feed_rx) = unbounded();
        let (command_tx, command_rx) = unbounded::<Command>();
        let Connection {
            mut stream, reader, ..
        } = self;
        let mut reading = Connection {
            stream: match stream.try_clone() {
                Ok(s) => s,
                Err(_) => return (feed_rx, command_tx),
            },
            reader,
            pid: 0,
        };
        let _ = std::thread::Builder::new()
            .name("ltmlp-feed".into())
            .spawn(move || {
                while let Ok(Some(reply)) = reading.next_reply() {
                    let item = match reply {
                        Reply::SnapshotBegin { resync: true } => Feed::Reset,
                        Reply::Error { message } => Feed::Error(message),
                        other => match other.into_event() {
                            Some(e) => Feed::Event(e),
                            None => continue,
                        },
                    };
                    if feed_tx.send(item).is_err() {
                        break;
                    }
                }
            });
        let _ = std::thread::Builder::new()
            .name("ltmlp-commands".into())
            .spawn(move || {
                for command in command_rx.iter() {
                    if stream
                        .write_all(wire::encode(&Request::Command(command)).as_bytes())
                        .is_err()
                    {
                        break;
                    }
                }
            });
        (feed_rx, command_tx)
    }
}

/// Where the run in `dir` is.
pub fn status(dir: &Path) -> anyhow::Result<Status> {
    let mut conn = Connection::open(dir, Role::Control)?;
    conn.send(&Request::Status)?;
    let _ = conn.stream.set_read_timeout(Some(Duration::from_secs(10)));
    while let Some(reply) = conn.next_reply()? {
        match reply {
            Reply::Status(s) => return Ok(*s),
            Reply::Error { message } => anyhow::bail!("{}: {message}", dir.display()),
            _ => {}
        }
    }
    anyhow::bail!("{}: the run closed the connection", dir.display())
}

/// Sends `command` to the run in `dir` and waits for the trainer to carry it out (it does so
/// between two minibatches, or after an epoch's evaluation).
pub fn steer(dir: &Path, command: Command, wait: Duration) -> anyhow::Result<Steer> {
    let mut conn = Connection::open(dir, Role::Control)?;
    conn.send(&Request::Command(command.clone()))?;
    let deadline = Instant::now() + wait;
    let _ = conn.stream.set_read_timeout(Some(wait));
    let mut accepted = false;
    loop {
        if Instant::now() >= deadline {
            break;
        }
        match conn.next_reply() {
            Ok(Some(Reply::Accepted { .. })) => accepted = true,
            Ok(Some(Reply::Error { message })) => anyhow::bail!("{message}"),
            Ok(Some(reply)) => {
                if let Some(Event::Steered(s)) = reply.into_event() {
                    if accepted && s.command == command {
                        return Ok(s);
                    }
                }
            }
            Ok(None) if command == Command::Stop && accepted => {
                // The run ended before its acknowledgement reached us: that is the stop.
                return Ok(Steer {
                    iteration: 0,
                    command,
                    ok: true,
                    message: "the run stopped".into(),
                });
            }
            Ok(None) => anyhow::bail!("the run closed the connection"),
            Err(e) => anyhow::bail!("{e}"),
        }
    }
    anyhow::bail!(
        "sent, but the trainer did not acknowledge within {} s (an epoch's evaluation may be \
         running); `ltmlp ctl {} status` shows whether it took effect",
        wait.as_secs(),
        dir.display()
    )
}
