//! The hub in every run's process: it takes the trainer's events, keeps the snapshot for late
//! viewers, fans every event out to the attached clients, and hands their commands to the
//! trainer. The trainer never waits on it, and it never waits on a client: each client has a
//! bounded queue; one that falls behind is re-synchronised from the snapshot.

use std::io::{BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{bounded, unbounded, Receiver, Sender, TrySendError};

use super::endpoint::{self, Bound};
use super::snapshot::Snapshot;
use super::wire::{self, Reply, Request, Role, MAX_REQUEST_BYTES, PROTOCOL_VERSION};
use crate::train::{Command, Event};

/// Lines queued for one client before it counts as fallen behind.
const CLIENT_QUEUE: usize = 4096;
/// Clients served at once.
const MAX_CLIENTS: usize = 32;
/// How long a client may take to say hello, and a write to a client may block.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);
/// Bytes read and dropped after an oversized message, before the connection closes.
const DRAIN_BYTES: u64 = 4 << 20;
/// Malformed messages a client may send before it is disconnected.
const MAX_BAD_MESSAGES: usize = 20;

/// One attached client, as the hub sees it.
struct Client {
    id: u64,
    queue: Sender<Arc<str>>,
    /// Set when its queue overflowed: its writer discards the queue and sends a snapshot.
    behind: Arc<AtomicBool>,
    role: Role,
}

struct State {
    snapshot: Snapshot,
    clients: Vec<Client>,
    next_id: u64,
    ended: bool,
}

struct Shared {
    state: Mutex<State>,
    commands: Sender<Command>,
    dir: String,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn viewers(state: &State) -> usize {
        state
            .clients
            .iter()
            .filter(|c| c.role == Role::Viewer)
            .count()
    }
}

/// The hub of a running session.
pub struct Hub {
    thread: Option<JoinHandle<()>>,
}

impl Hub {
    /// Waits until the trainer's last event has been handed out and the socket is gone.
    pub fn join(mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Opens the control endpoint of the run folder `dir` and starts the hub between `events`
/// (the trainer's) and the returned receiver (the in-process front end's, which sees every
/// event as before). If the socket cannot be opened, the run goes on without it and the
/// front end is told why.
pub fn start(
    dir: &Path,
    events: Receiver<Event>,
    commands: Sender<Command>,
) -> (Receiver<Event>, Option<Hub>) {
    let (local_tx, local_rx) = unbounded();
    let bound = match endpoint::bind(dir) {
        Ok(b) => b,
        Err(e) => {
            let _ = local_tx.send(Event::Log(format!(
                "no control endpoint ({}: {e}); the run cannot be attached to",
                dir.join(endpoint::SOCKET_FILE).display()
            )));
            // Forward the events without a hub.
            let spawned = std::thread::Builder::new()
                .name("ltmlp-events".into())
                .spawn(move || {
                    for e in events.iter() {
                        let _ = local_tx.send(e);
                    }
                });
            return (local_rx, spawned.ok().map(|t| Hub { thread: Some(t) }));
        }
    };
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            snapshot: Snapshot::default(),
            clients: Vec::new(),
            next_id: 0,
            ended: false,
        }),
        commands,
        dir: dir.display().to_string(),
    });
    let acceptor = Arc::clone(&shared);
    let listener = bound.listener.try_clone();
    let accepting = listener.map(|listener| {
        std::thread::Builder::new()
            .name("ltmlp-accept".into())
            .spawn(move || {
                for stream in listener.incoming() {
                    if acceptor.lock().ended {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    serve(Arc::clone(&acceptor), stream);
                }
            })
    });
    let thread = std::thread::Builder::new()
        .name("ltmlp-hub".into())
        .spawn(move || {
            fan_out(&shared, events, local_tx);
            shared.lock().ended = true;
            // Wake the acceptor so that it sees the end; then the socket goes. Connecting
            // needs the socket file, which is gone when the run folder was deleted; shutting
            // the listener down wakes a blocked accept in any case.
            let _ = UnixStream::connect(dir_socket(&bound));
            wake_acceptor(&bound.listener);
            if let Ok(Ok(t)) = accepting {
                let _ = t.join();
            }
            drop(bound);
        });
    (local_rx, thread.ok().map(|t| Hub { thread: Some(t) }))
}

/// Makes a blocked `accept` on `listener` (and on its clones) return at once.
fn wake_acceptor(listener: &std::os::unix::net::UnixListener) {
    use std::os::fd::AsRawFd as _;
    // SAFETY: shutdown(2) on a file descriptor this listener owns; it changes no memory.
    unsafe {
        libc::shutdown(listener.as_raw_fd(), libc::SHUT_RDWR);
    }
}

fn dir_socket(bound: &Bound) -> PathBuf {
    bound
        .listener
        .local_addr()
        .ok()
        .and_then(|a| a.as_pathname().map(Path::to_path_buf))
        .unwrap_or_default()
}

/// The hub's loop: every event into the snapshot, to each client, and to the front end.
fn fan_out(shared: &Shared, events: Receiver<Event>, local: Sender<Event>) {
    for event in events.iter() {
        {
            let mut state = shared.lock();
            state.snapshot.apply(&event);
            if !state.clients.is_empty() {
                let line: Arc<str> = wire::encode(&Reply::event(&event)).into();
                state.clients.retain(|c| {
                    if c.behind.load(Ordering::SeqCst) {
                        return true;
                    }
                    match c.queue.try_send(Arc::clone(&line)) {
                        Ok(()) => true,
                        Err(TrySendError::Full(_)) => {
                            c.behind.store(true, Ordering::SeqCst);
                            true
                        }
                        Err(TrySendError::Disconnected(_)) => false,
                    }
                });
            }
        }
        let _ = local.send(event);
    }
    // Dropping the queues lets each writer send what it holds and close.
    shared.lock().clients.clear();
}

/// Serves one new connection on threads of its own.
fn serve(shared: Arc<Shared>, stream: UnixStream) {
    let _ = std::thread::Builder::new()
        .name("ltmlp-client".into())
        // A refused client has had its error reply; nothing else is to be done about it.
        .spawn(move || drop(admit(&shared, stream)));
}

fn send_now(stream: &mut UnixStream, reply: &Reply) -> std::io::Result<()> {
    stream.write_all(wire::encode(reply).as_bytes())
}

/// The handshake, then the client's reader loop (its writer runs on another thread).
fn admit(shared: &Arc<Shared>, mut stream: UnixStream) -> Result<(), String> {
    let _ = stream.set_write_timeout(Some(CLIENT_TIMEOUT));
    let _ = stream.set_read_timeout(Some(CLIENT_TIMEOUT));
    let refuse = |stream: &mut UnixStream, message: String| {
        let _ = send_now(
            stream,
            &Reply::Error {
                message: message.clone(),
            },
        );
        Err(message)
    };
    let ours = endpoint::current_uid();
    match endpoint::peer_uid(&stream) {
        Ok(uid) if uid == ours => {}
        Ok(uid) => {
            return refuse(
                &mut stream,
                format!("refused: this run belongs to uid {ours}, and you are uid {uid}"),
            )
        }
        Err(e) => return refuse(&mut stream, format!("refused: no peer credentials ({e})")),
    }
    let mut reader = BufReader::new(stream.try_clone().map_err(|e| e.to_string())?);
    let mut line = Vec::new();
    let role = match wire::read_line(&mut reader, MAX_REQUEST_BYTES, &mut line) {
        Ok(true) => match wire::decode_request(&line) {
            Ok(Request::Hello { version, role }) if version == PROTOCOL_VERSION => role,
            Ok(Request::Hello { version, .. }) => {
                return refuse(
                    &mut stream,
                    format!(
                        "protocol version {version} is not this run's {PROTOCOL_VERSION}: \
                         use the ltmlp that started the run"
                    ),
                )
            }
            Ok(_) => return refuse(&mut stream, "say hello first (docs/protocol.md)".into()),
            Err(e) => return refuse(&mut stream, e),
        },
        Ok(false) => return Ok(()),
        Err(e) => return refuse(&mut stream, e.to_string()),
    };
    let (queue, lines) = bounded::<Arc<str>>(CLIENT_QUEUE);
    let behind = Arc::new(AtomicBool::new(false));
    let (id, first) = {
        let mut state = shared.lock();
        if state.clients.len() >= MAX_CLIENTS {
            drop(state);
            return refuse(
                &mut stream,
                format!("refused: {MAX_CLIENTS} clients are attached already"),
            );
        }
        let id = state.next_id;
        state.next_id += 1;
        let mut first = vec![wire::encode(&Reply::Welcome {
            version: PROTOCOL_VERSION,
            pid: std::process::id(),
            dir: shared.dir.clone(),
        })];
        if role == Role::Viewer {
            first.extend(snapshot_lines(&state.snapshot, false));
        }
        if !state.ended {
            state.clients.push(Client {
                id,
                queue: queue.clone(),
                behind: Arc::clone(&behind),
                role,
            });
        }
        (id, first)
    };
    drop(queue);
    let writer_stream = stream.try_clone().map_err(|e| e.to_string())?;
    let writer_shared = Arc::clone(shared);
    let replies = {
        // Replies to this client's requests go through its own small queue, never blocked by
        // the event queue's bound.
        let (tx, rx) = bounded::<Arc<str>>(64);
        let writer_behind = Arc::clone(&behind);
        let _ = std::thread::Builder::new()
            .name("ltmlp-client-writer".into())
            .spawn(move || {
                write_loop(
                    &writer_shared,
                    writer_stream,
                    first,
                    lines,
                    rx,
                    &writer_behind,
                    role,
                )
            });
        tx
    };
    let _ = stream.set_read_timeout(None);
    let mut bad = 0;
    loop {
        match wire::read_line(&mut reader, MAX_REQUEST_BYTES, &mut line) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                let _ = replies.send(
                    wire::encode(&Reply::Error {
                        message: format!("{e}; closing the connection"),
                    })
                    .into(),
                );
                // Read what the client is still sending (bounded), so that closing does not
                // reset the connection before it has read the error.
                let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
                let _ = std::io::copy(
                    &mut std::io::Read::take(&mut reader, DRAIN_BYTES),
                    &mut std::io::sink(),
                );
                break;
            }
        }
        let reply = match wire::decode_request(&line) {
            Ok(Request::Command(command)) => match accept(shared, command, &replies) {
                Accepted::Queued => continue,
                Accepted::RunEnded => Reply::Error {
                    message: "the run has ended".into(),
                },
                Accepted::ClientGone => break,
            },
            Ok(Request::Status) => {
                let state = shared.lock();
                let status =
                    state
                        .snapshot
                        .status(&shared.dir, std::process::id(), Shared::viewers(&state));
                Reply::Status(Box::new(status))
            }
            Ok(Request::Hello { .. }) => Reply::Error {
                message: "already said hello".into(),
            },
            Err(message) => {
                bad += 1;
                Reply::Error { message }
            }
        };
        if replies.send(wire::encode(&reply).into()).is_err() || bad >= MAX_BAD_MESSAGES {
            break;
        }
    }
    shared.lock().clients.retain(|c| c.id != id);
    let _ = stream.shutdown(std::net::Shutdown::Both);
    Ok(())
}

/// What became of a client's command in [`accept`].
enum Accepted {
    /// Handed to the trainer, its acknowledgement queued.
    Queued,
    /// The trainer has gone.
    RunEnded,
    /// The client's writer has gone.
    ClientGone,
}

/// Hands `command` to the trainer and queues its acknowledgement, both under the lock the
/// fan-out takes: the trainer's answer (an event) can then only be queued after the
/// acknowledgement, and the writer sends queued replies before any event, so a client always
/// reads `accepted` before the answer it waits for.
fn accept(shared: &Shared, command: Command, replies: &Sender<Arc<str>>) -> Accepted {
    let state = shared.lock();
    if shared.commands.send(command.clone()).is_err() {
        return Accepted::RunEnded;
    }
    let line: Arc<str> = wire::encode(&Reply::Accepted { command }).into();
    match replies.try_send(line) {
        Ok(()) => Accepted::Queued,
        // A client that lets 64 replies pile up is not waiting for this one in order: wait for
        // room without holding up every other client.
        Err(TrySendError::Full(line)) => {
            drop(state);
            match replies.send(line) {
                Ok(()) => Accepted::Queued,
                Err(_) => Accepted::ClientGone,
            }
        }
        Err(TrySendError::Disconnected(_)) => Accepted::ClientGone,
    }
}

fn snapshot_lines(snapshot: &Snapshot, resync: bool) -> Vec<String> {
    let mut lines = vec![wire::encode(&Reply::SnapshotBegin { resync })];
    lines.extend(
        snapshot
            .events()
            .iter()
            .map(|e| wire::encode(&Reply::event(e))),
    );
    lines.push(wire::encode(&Reply::SnapshotEnd));
    lines
}

/// Writes to one client: its first lines, then events and replies as they come; a client
/// that fell behind gets a fresh snapshot instead of the events it missed.
fn write_loop(
    shared: &Shared,
    mut stream: UnixStream,
    first: Vec<String>,
    events: Receiver<Arc<str>>,
    replies: Receiver<Arc<str>>,
    behind: &AtomicBool,
    role: Role,
) {
    for line in &first {
        if stream.write_all(line.as_bytes()).is_err() {
            return;
        }
    }
    loop {
        if behind.load(Ordering::SeqCst) {
            let lines = {
                let state = shared.lock();
                while events.try_recv().is_ok() {}
                behind.store(false, Ordering::SeqCst);
                if role == Role::Viewer {
                    snapshot_lines(&state.snapshot, true)
                } else {
                    Vec::new()
                }
            };
            for line in &lines {
                if stream.write_all(line.as_bytes()).is_err() {
                    return;
                }
            }
        }
        crossbeam_channel::select! {
            recv(events) -> line => match line {
                Ok(line) => {
                    // Replies queued before this event go first (see `accept`).
                    while let Ok(reply) = replies.try_recv() {
                        if stream.write_all(reply.as_bytes()).is_err() {
                            return;
                        }
                    }
                    if stream.write_all(line.as_bytes()).is_err() {
                        return;
                    }
                }
                // The run ended: what is left of the replies, then close.
                Err(_) => {
                    while let Ok(line) = replies.try_recv() {
                        let _ = stream.write_all(line.as_bytes());
                    }
                    let _ = stream.shutdown(std::net::Shutdown::Write);
                    return;
                }
            },
            recv(replies) -> line => match line {
                Ok(line) => {
                    if stream.write_all(line.as_bytes()).is_err() {
                        return;
                    }
                }
                Err(_) => return,
            },
            default(Duration::from_millis(500)) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufRead;
    use std::time::Instant;

    #[test]
    fn a_viewer_that_does_not_read_never_holds_the_run_back_and_is_resynchronised() {
        let dir = tempfile::tempdir().unwrap();
        let (events_tx, events_rx) = unbounded();
        let (commands_tx, _commands_rx) = unbounded();
        let (local, hub) = start(dir.path(), events_rx, commands_tx);
        let hub = hub.unwrap();
        let mut stream = endpoint::connect(dir.path()).unwrap();
        stream
            .write_all(
                wire::encode(&Request::Hello {
                    version: PROTOCOL_VERSION,
                    role: Role::Viewer,
                })
                .as_bytes(),
            )
            .unwrap();
        // Wait until the hub counts the viewer, then flood it without reading.
        let counted = Instant::now();
        loop {
            events_tx.send(Event::Log("hello".into())).unwrap();
            if local.try_iter().count() > 0 && counted.elapsed() > Duration::from_millis(200) {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let line = "x".repeat(1000);
        let total = 4 * CLIENT_QUEUE;
        let started = Instant::now();
        for _ in 0..total {
            events_tx.send(Event::Log(line.clone())).unwrap();
        }
        let mut seen = 0;
        while seen < total {
            local
                .recv_timeout(Duration::from_secs(10))
                .expect("the front end gets every event while the viewer sleeps");
            seen += 1;
        }
        assert!(started.elapsed() < Duration::from_secs(10));
        // Now read: somewhere comes a fresh snapshot.
        drop(events_tx);
        let mut reader = std::io::BufReader::new(stream);
        let mut resynced = false;
        let mut text = String::new();
        while reader.read_line(&mut text).unwrap_or(0) > 0 {
            if text.contains("\"snapshot_begin\":{\"resync\":true}") {
                resynced = true;
            }
            text.clear();
        }
        assert!(resynced, "the viewer that fell behind got a new snapshot");
        hub.join();
        assert!(!dir.path().join(endpoint::SOCKET_FILE).exists());
    }

    /// A trainer that answers at once cannot overtake the hub's acknowledgement: a client
    /// reads `accepted` before the `steered` event of its command, every time (`ctl` waits
    /// for the answer only after the acknowledgement). The race is rare: without the fix this
    /// failed within 62 to 1,910 rounds.
    #[test]
    fn the_acknowledgement_always_comes_before_the_trainers_answer() {
        let dir = tempfile::tempdir().unwrap();
        let (events_tx, events_rx) = unbounded();
        let (commands_tx, commands_rx) = unbounded::<Command>();
        let (_local, hub) = start(dir.path(), events_rx, commands_tx);
        let hub = hub.unwrap();
        const ROUNDS: usize = 20_000;
        // Answers as many commands as the client sends, then ends: the hub's fan-out ends
        // when the trainer's events do.
        let trainer = std::thread::spawn(move || {
            for command in commands_rx.iter().take(ROUNDS) {
                let steer = crate::train::Steer {
                    iteration: 0,
                    command,
                    ok: true,
                    message: "done".into(),
                };
                if events_tx.send(Event::Steered(steer)).is_err() {
                    break;
                }
            }
        });
        let mut stream = endpoint::connect(dir.path()).unwrap();
        let hello = Request::Hello {
            version: PROTOCOL_VERSION,
            role: Role::Control,
        };
        stream.write_all(wire::encode(&hello).as_bytes()).unwrap();
        let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
        let mut text = String::new();
        for round in 0..ROUNDS {
            let command = wire::encode(&Request::Command(Command::Pause));
            stream.write_all(command.as_bytes()).unwrap();
            let mut accepted = false;
            loop {
                text.clear();
                assert!(reader.read_line(&mut text).unwrap() > 0, "round {round}");
                if text.contains("\"accepted\"") {
                    accepted = true;
                } else if text.contains("\"steered\"") {
                    assert!(accepted, "round {round}: the answer came first");
                    break;
                }
            }
        }
        drop((reader, stream));
        hub.join();
        trainer.join().unwrap();
    }
}
