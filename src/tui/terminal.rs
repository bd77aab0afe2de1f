//! The UI thread's loop: drain trainer events, read keys, redraw at most ten times a second
//! and only when something changed; restore the terminal however the loop ends.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ratatui::crossterm::event::{self, Event as TermEvent};
use ratatui::DefaultTerminal;

use super::app::{Action, App};
use super::view;
use crate::train::checkpoint::Checkpoint;
use crate::train::{spawn, Command, Event, Experiment, SessionOptions, Summary};

/// Least time between two draws (at most ten frames a second).
const FRAME_INTERVAL: Duration = Duration::from_millis(100);
/// How long to wait for a key before looking at the trainer's events again.
const INPUT_POLL: Duration = Duration::from_millis(50);
/// How long to wait for the trainer to save its files after a stop.
const STOP_TIMEOUT: Duration = Duration::from_secs(60);

/// Time a signalled dashboard gets to leave by itself before the process is ended: enough for
/// the trainer to finish its minibatch and save its files.
const HANGUP_GRACE: Duration = Duration::from_secs(10);

/// After SIGHUP (a dropped SSH connection) the terminal is gone and reading keys from it can
/// spin forever; the trainer stops and saves on the same signal, so end the process once it
/// has had time to do so. On a live terminal the dashboard leaves well before this fires.
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

/// Trains `exp` under the dashboard, writing the run files to `out_dir`; returns the run's
/// summary once the user quits (after the terminal is restored).
pub fn run(
    exp: Experiment,
    out_dir: PathBuf,
    resume: Option<Checkpoint>,
    force: bool,
) -> anyhow::Result<Summary> {
    let mut app = App::new(exp.resolved.flags);
    app.out_dir = Some(out_dir.display().to_string());
    // A dropped SSH connection (SIGHUP) or a kill (SIGTERM) stops, saves and restores.
    let interrupt = crate::headless::interrupt_flag();
    let checkpoint_every = exp.resolved.preset.train.checkpoint_every;
    let session = spawn(
        exp,
        SessionOptions {
            out_dir: Some(out_dir),
            checkpoint_every,
            resume,
            interrupt: Some(Arc::clone(&interrupt)),
            start_paused: false,
            force,
        },
    )?;
    exit_after_hangup(Arc::clone(&interrupt));
    // `init` enters the alternate screen and raw mode and installs a panic hook that
    // restores the terminal before the panic message is printed.
    let mut terminal = ratatui::try_init()?;
    let result = event_loop(
        &mut terminal,
        &mut app,
        &session.events,
        &session.commands,
        &interrupt,
    );
    ratatui::restore();
    result?;
    let summary = match app.summary.take() {
        Some(s) => s,
        None => {
            // Quit while training: stop after the current minibatch and wait for the files.
            let _ = session.commands.send(Command::Stop);
            wait_for_summary(&session.events)?
        }
    };
    session.join();
    Ok(summary)
}

/// Shows the run that another process is writing into `dir`, read-only, until the user
/// quits; returns its summary if it has ended.
pub fn watch(dir: &std::path::Path) -> anyhow::Result<Option<Summary>> {
    let events = crate::sink::follow::follow(dir)?;
    let mut app = App::new(crate::net::Flags::NONE);
    app.out_dir = Some(dir.display().to_string());
    // Nobody listens: keys that steer training change nothing.
    let (commands, _) = crossbeam_channel::unbounded();
    let interrupt = crate::headless::interrupt_flag();
    let mut terminal = ratatui::try_init()?;
    let result = event_loop(&mut terminal, &mut app, &events, &commands, &interrupt);
    ratatui::restore();
    result?;
    Ok(app.summary.take())
}

fn event_loop(
    terminal: &mut DefaultTerminal,
    app: &mut App,
    events: &crossbeam_channel::Receiver<Event>,
    commands: &crossbeam_channel::Sender<Command>,
    interrupt: &AtomicUsize,
) -> anyhow::Result<()> {
    let mut last_draw: Option<Instant> = None;
    loop {
        if interrupt.load(Ordering::SeqCst) != 0 {
            return Ok(());
        }
        for e in events.try_iter() {
            app.on_event(e);
        }
        if app.dirty && last_draw.is_none_or(|t| t.elapsed() >= FRAME_INTERVAL) {
            terminal.draw(|frame| view::draw(frame, app))?;
            app.dirty = false;
            last_draw = Some(Instant::now());
        }
        if !event::poll(INPUT_POLL)? {
            continue;
        }
        match event::read()? {
            TermEvent::Key(key) => match app.on_key(key) {
                Some(Action::Quit) => return Ok(()),
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

fn wait_for_summary(events: &crossbeam_channel::Receiver<Event>) -> anyhow::Result<Summary> {
    let deadline = Instant::now() + STOP_TIMEOUT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match events.recv_timeout(left) {
            Ok(Event::Finished(s)) => return Ok(*s),
            Ok(_) => {}
            Err(_) => anyhow::bail!("the training thread did not save its files in time"),
        }
    }
}
