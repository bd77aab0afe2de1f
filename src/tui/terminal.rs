//! The dashboard's loop on a run it is attached to: drain the run's events, read keys, redraw
//! at most ten times a second and only when something changed; restore the terminal however
//! the loop ends, and leave (the run trains on) when the terminal goes away.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ratatui::crossterm::event::{self, Event as TermEvent};
use ratatui::DefaultTerminal;

use super::app::{Action, App, LogKind};
use super::view;
use crate::remote::client::{Connection, Feed};
use crate::remote::wire::Role;
use crate::train::{Command, Summary};

/// Least time between two draws (at most ten frames a second).
const FRAME_INTERVAL: Duration = Duration::from_millis(100);
/// How long to wait for a key before looking at the trainer's events again.
const INPUT_POLL: Duration = Duration::from_millis(50);
/// How often a viewer whose run went away looks for it again (a `--resume` of it).
const RECONNECT_EVERY: Duration = Duration::from_secs(1);
/// How often the dashboard checks that its terminal is still there.
const TTY_CHECK: Duration = Duration::from_secs(1);

/// Time a signalled dashboard gets to leave by itself before the process is ended.
const HANGUP_GRACE: Duration = Duration::from_secs(3);

/// After SIGHUP (a dropped SSH connection) the terminal is gone and reading keys from it can
/// block or spin; the run lives in its own process, so the viewer just ends. On a live
/// terminal the dashboard leaves well before this fires.
fn exit_after_hangup(interrupt: Arc<AtomicUsize>) {
    let _ = std::thread::Builder::new()
        .name("ltmlp-hangup".into())
        .spawn(move || loop {
            let signal = interrupt.load(Ordering::SeqCst);
            if signal != 0 {
                std::thread::sleep(HANGUP_GRACE);
                ratatui::restore();
                std::process::exit(128 + signal as i32);
            }
            std::thread::sleep(Duration::from_millis(100));
        });
}

/// Runs `load` (reading a preset and its data, which takes seconds on a large data set) with a
/// "loading …" line on the terminal, so that the screen is never blank meanwhile; the line is
/// cleared once loading ends.
pub fn loading<R>(what: &str, load: impl FnOnce() -> R) -> R {
    use std::io::Write;
    let mut out = std::io::stdout();
    let _ = write!(out, "ltmlp: loading {what} …");
    let _ = out.flush();
    let result = load();
    let _ = write!(out, "\r\x1b[2K");
    let _ = out.flush();
    result
}

/// How a dashboard is attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Every key: pause, switches, settings, stop (`ltmlp attach`, the dashboard).
    Steer,
    /// Watch only (`ltmlp watch`).
    ReadOnly,
}

/// How a dashboard ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The viewer left a run that trains on (detach, a read-only viewer closed, a signal, a
    /// vanished terminal).
    Detached { signal: Option<usize> },
    /// The run is over (finished, stopped by the user, diverged); its summary.
    Ended(Box<Summary>),
}

/// Attaches the dashboard to the run in `dir`, which trains in another process. A finished
/// run with no live trainer is shown from its files.
pub fn attach(dir: &Path, mode: Mode) -> anyhow::Result<Outcome> {
    let (feed, commands) = match Connection::open(dir, Role::Viewer) {
        Ok(conn) => conn.into_feed(),
        Err(_) if mode == Mode::ReadOnly && crate::compare::runs::is_run_folder(dir) => {
            // No live trainer: show what the files hold (and follow them if someone writes).
            let events = crate::sink::follow::follow(dir)?;
            let (tx, rx) = crossbeam_channel::unbounded();
            std::thread::spawn(move || {
                for e in events.iter() {
                    if tx.send(Feed::Event(e)).is_err() {
                        break;
                    }
                }
            });
            (rx, crossbeam_channel::unbounded().0)
        }
        Err(e) => return Err(e),
    };
    let mut app = App::new(crate::net::Flags::NONE);
    app.read_only = mode == Mode::ReadOnly;
    app.out_dir = Some(dir.display().to_string());
    let interrupt = crate::headless::interrupt_flag();
    exit_after_hangup(Arc::clone(&interrupt));
    // `init` enters the alternate screen and raw mode and installs a panic hook that
    // restores the terminal before the panic message is printed.
    let mut terminal = ratatui::try_init()?;
    let result = event_loop(&mut terminal, &mut app, dir, feed, commands, &interrupt);
    ratatui::restore();
    let left = result?;
    if let Some(summary) = app.summary.take() {
        return Ok(Outcome::Ended(Box::new(summary)));
    }
    let signal = interrupt.load(Ordering::SeqCst);
    Ok(Outcome::Detached {
        signal: (signal != 0).then_some(signal).or(left),
    })
}

/// The UI loop; returns when the user leaves, the run's stop has completed, a signal came,
/// or the terminal went away (then with SIGHUP's number).
fn event_loop(
    terminal: &mut DefaultTerminal,
    app: &mut App,
    dir: &Path,
    mut feed: crossbeam_channel::Receiver<Feed>,
    mut commands: crossbeam_channel::Sender<Command>,
    interrupt: &AtomicUsize,
) -> anyhow::Result<Option<usize>> {
    let mut last_draw: Option<Instant> = None;
    let mut last_tty_check = Instant::now();
    // Set when the run's process went away: from then on, look for a resumed run.
    let mut lost: Option<Instant> = None;
    loop {
        if lost.is_some_and(|t| t.elapsed() >= RECONNECT_EVERY) {
            lost = Some(Instant::now());
            if let Ok(conn) = Connection::open(dir, Role::Viewer) {
                (feed, commands) = conn.into_feed();
                app.reset();
                app.push_log(None, LogKind::Info, "the run is back: attached again");
                lost = None;
            }
        }
        if interrupt.load(Ordering::SeqCst) != 0 {
            return Ok(None);
        }
        if last_tty_check.elapsed() >= TTY_CHECK {
            if terminal_gone() {
                return Ok(Some(signal_hook::consts::SIGHUP as usize));
            }
            last_tty_check = Instant::now();
        }
        loop {
            match feed.try_recv() {
                Ok(Feed::Event(e)) => app.on_event(e),
                Ok(Feed::Reset) => app.reset(),
                Ok(Feed::Error(message)) => {
                    let it = Some(app.iteration());
                    app.push_log(it, LogKind::Error, message);
                }
                Err(crossbeam_channel::TryRecvError::Empty) => break,
                Err(crossbeam_channel::TryRecvError::Disconnected) => {
                    // The trainer is gone: after a stop we are done; otherwise keep what we
                    // saw on screen until the user leaves.
                    if app.stopping {
                        return Ok(None);
                    }
                    if lost.is_none() {
                        if app.training() {
                            let it = Some(app.iteration());
                            app.push_log(
                                it,
                                LogKind::Error,
                                "the run's process has gone away; waiting for it to be resumed",
                            );
                            app.state = crate::train::RunState::Stopped;
                        }
                        lost = Some(Instant::now());
                    }
                    break;
                }
            }
        }
        if app.stopping && app.summary.is_some() {
            return Ok(None);
        }
        if app.dirty && last_draw.is_none_or(|t| t.elapsed() >= FRAME_INTERVAL) {
            if terminal.draw(|frame| view::draw(frame, app)).is_err() {
                return Ok(Some(signal_hook::consts::SIGHUP as usize));
            }
            app.dirty = false;
            last_draw = Some(Instant::now());
        }
        // A terminal that went away makes polling and reading fail: leave, the run goes on.
        let Ok(ready) = event::poll(INPUT_POLL) else {
            return Ok(Some(signal_hook::consts::SIGHUP as usize));
        };
        if !ready {
            continue;
        }
        let Ok(input) = event::read() else {
            return Ok(Some(signal_hook::consts::SIGHUP as usize));
        };
        match input {
            TermEvent::Key(key) => match app.on_key(key) {
                Some(Action::Quit) => return Ok(None),
                Some(Action::Stop) => {
                    app.push_log(
                        None,
                        LogKind::Info,
                        "stopping: waiting for the run's files…",
                    );
                    if commands.send(Command::Stop).is_err() {
                        return Ok(None);
                    }
                }
                Some(Action::Send(c)) => {
                    // A closed channel means the trainer has ended; its summary is on the way.
                    let _ = commands.send(c);
                }
                None => {}
            },
            TermEvent::Resize(..) => {
                app.dirty = true;
                last_draw = None;
            }
            _ => {}
        }
    }
}

/// Whether this process has lost its terminal (an SSH link or tmux session that went away):
/// its controlling terminal can no longer be opened.
fn terminal_gone() -> bool {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")
        .is_err()
}
