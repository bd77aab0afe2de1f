//! `ltmlp host DIR [-- TRAINER…]`: hosts a run that another process trains, in any language.
//! The trainer writes its events as JSON lines (to the host's stdin, or its own stdout when the
//! host starts it) and reads the commands it must carry out on the other pipe; the host keeps
//! the run folder and the control endpoint, so that `attach`, `watch`, `ctl`, `ls` and
//! `report` work on it as on a native run (docs/protocol.md, "The trainer side of `ltmlp host`").

pub mod io;
pub mod messages;
pub mod wiring;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::{Child, ExitCode, Stdio};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use clap::Args;
use crossbeam_channel::Receiver;

use self::io::{CommandPipe, Input};
use self::messages::{
    check_value, clip, command_name, Ack, Declaration, HostCommand, TrainerEvent, TrainerFinished,
};
use self::wiring::Wiring;
use crate::protocol::summary::SummaryBase;
use crate::protocol::{ForeignTrainer, TransformCause, TransformEvent};
use crate::stats::LayerStats;
use crate::train::{Command, Event, Progress, RunInfo, RunState, Steer, Summary, Tunable};

/// How long a command may wait for the trainer's answer before it is refused.
pub const ANSWER_DEADLINE: Duration = Duration::from_secs(10);
/// How long an ended trainer may take to exit before it is killed.
const EXIT_DEADLINE: Duration = Duration::from_secs(10);
/// How often the host looks at deadlines and signals while nothing comes.
const TICK: Duration = Duration::from_millis(200);
/// Problems with the trainer's lines said one by one; the rest are counted.
const PROBLEMS_SHOWN: usize = 100;

/// `ltmlp host`'s arguments.
#[derive(Debug, Clone, Args)]
pub struct HostArgs {
    /// Run folder (created; a resumed trainer's must hold its run)
    pub dir: PathBuf,
    /// Move a run already in DIR aside (to DIR.old-N) first
    #[arg(long)]
    pub force: bool,
    /// Write TensorBoard events (events.out.tfevents.*) in DIR while the run trains
    #[arg(long)]
    pub tensorboard: bool,
    /// The trainer to start, after `--`, with its stdin and stdout piped to the host; without
    /// one, the host's own stdin and stdout are the trainer's pipes
    #[arg(last = true, value_name = "TRAINER")]
    pub trainer: Vec<OsString>,
}

/// Runs the host until the trainer finishes or goes.
pub fn run(args: &HostArgs) -> anyhow::Result<ExitCode> {
    let interrupt = crate::headless::interrupt_flag();
    let (mut child, input, pipe) = connect(&args.trainer)?;
    let declaration = match first_line(&input, &interrupt) {
        Ok(d) => d,
        Err(message) => {
            drop(pipe);
            end_child(child.as_mut(), true);
            anyhow::bail!("{message}");
        }
    };
    let info = run_info(&declaration, &args.dir.display().to_string());
    let wiring = match wiring::open(&args.dir, &declaration, &info, args.force, args.tensorboard) {
        Ok(w) => w,
        Err(message) => {
            drop(pipe);
            end_child(child.as_mut(), true);
            anyhow::bail!("{message}");
        }
    };
    let mut host = Host::new(args.dir.display().to_string(), declaration, wiring, pipe);
    host.start();
    let end = host.serve(&input, &interrupt, child.as_mut());
    let (summary, code) = host.finish(end, child.as_mut());
    warn(&crate::headless::summary_text(&summary));
    Ok(code)
}

/// The trainer's event stream and command pipe: a started trainer's, or the host's own.
fn connect(trainer: &[OsString]) -> anyhow::Result<(Option<Child>, Receiver<Input>, CommandPipe)> {
    let limit = io::MAX_TRAINER_LINE;
    let Some((program, rest)) = trainer.split_first() else {
        return Ok((
            None,
            io::read_lines(std::io::stdin(), limit),
            io::write_lines(std::io::stdout()),
        ));
    };
    let mut child = std::process::Command::new(program)
        .args(rest)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot start the trainer {}: {e}",
                program.to_string_lossy()
            )
        })?;
    let (Some(stdout), Some(stdin)) = (child.stdout.take(), child.stdin.take()) else {
        let _ = child.kill();
        anyhow::bail!("the trainer's pipes could not be opened");
    };
    Ok((
        Some(child),
        io::read_lines(stdout, limit),
        io::write_lines(stdin),
    ))
}

/// Waits for the trainer's declaration: its first line.
fn first_line(
    input: &Receiver<Input>,
    interrupt: &std::sync::atomic::AtomicUsize,
) -> Result<Declaration, String> {
    loop {
        if interrupt.load(Ordering::SeqCst) != 0 {
            return Err("interrupted before the trainer declared itself".into());
        }
        match input.recv_timeout(TICK) {
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => continue,
            Err(_) | Ok(Input::End(None)) => {
                return Err(
                    "the trainer ended before its first line (a `declare` event); nothing was \
                     written"
                        .into(),
                )
            }
            Ok(Input::End(Some(e))) => return Err(format!("cannot read the trainer: {e}")),
            Ok(Input::Line { event, .. }) => {
                return match event {
                    Ok(TrainerEvent::Declare(d)) => d
                        .check()
                        .map(|()| *d)
                        .map_err(|e| format!("trainer line 1: {e}; nothing was written")),
                    Ok(_) => Err("trainer line 1: the first event must be `declare` \
                                  (docs/protocol.md, \"The trainer side of `ltmlp host`\"); \
                                  nothing was written"
                        .into()),
                    Err(e) => Err(format!("trainer line 1: {e}; nothing was written")),
                }
            }
        }
    }
}

/// A command sent to the trainer and not answered yet.
struct Pending {
    id: u64,
    command: Command,
    sent: Instant,
}

/// How the run ended, before the files are completed.
struct End {
    state: RunState,
    reason: Option<String>,
    finished: Option<TrainerFinished>,
}

/// One hosted run.
struct Host {
    dir: String,
    declaration: Declaration,
    wiring: Wiring,
    pipe: CommandPipe,
    next_id: u64,
    pending: Vec<Pending>,
    /// The latest iteration the trainer told of.
    iteration: u64,
    last_epoch: usize,
    last_progress: Option<Progress>,
    /// The latest layer statistics, recorded with the next evaluation.
    layers: Vec<LayerStats>,
    tunables: Vec<Tunable>,
    started: Instant,
    problems: usize,
    said_pipe_broken: bool,
}

impl Host {
    fn new(dir: String, declaration: Declaration, wiring: Wiring, pipe: CommandPipe) -> Host {
        let tunables = declaration
            .settings
            .iter()
            .map(|s| Tunable {
                key: s.key.clone(),
                value: s.value.clone(),
            })
            .collect();
        let (last_epoch, iteration) = wiring
            .last_evaluation()
            .map_or((0, 0), |m| (m.epoch, m.iteration));
        Host {
            dir,
            declaration,
            wiring,
            pipe,
            next_id: 1,
            pending: Vec::new(),
            iteration,
            last_epoch,
            last_progress: None,
            layers: Vec::new(),
            tunables,
            started: Instant::now(),
            problems: 0,
            said_pipe_broken: false,
        }
    }

    fn send(&self, event: Event) {
        let _ = self.wiring.events.send(event);
    }

    /// The run's header, the kept evaluations of a resume, the settings and the state.
    fn start(&mut self) {
        let d = &self.declaration;
        let info = run_info(d, &self.dir);
        self.send(Event::Started(info));
        self.send(Event::Tunables(self.tunables.clone()));
        // The kept evaluations of a resume, marked as history (docs/protocol.md).
        for m in self.wiring.take_kept() {
            self.send(Event::Replayed(Box::new(m)));
        }
        self.send(Event::State(RunState::Running));
        if let Some(n) = d.resume_from {
            self.send(Event::Log(format!(
                "{} {} continues after epoch {n}",
                d.producer, d.version
            )));
        }
    }

    /// Serves the trainer and the viewers until the run ends.
    fn serve(
        &mut self,
        input: &Receiver<Input>,
        interrupt: &std::sync::atomic::AtomicUsize,
        mut child: Option<&mut Child>,
    ) -> End {
        let commands = self.wiring.commands.clone();
        let local = self.wiring.local.clone();
        loop {
            let signal = interrupt.load(Ordering::SeqCst);
            if signal != 0 {
                return End {
                    state: RunState::Stopped,
                    reason: Some(format!("the host was interrupted (signal {signal})")),
                    finished: None,
                };
            }
            self.refuse_overdue();
            self.refuse_unread();
            crossbeam_channel::select! {
                recv(input) -> message => match message {
                    Ok(Input::Line { number, event: Ok(event) }) => {
                        if let Some(end) = self.take(number, event) {
                            return end;
                        }
                    }
                    Ok(Input::Line { number, event: Err(problem) }) => self.complain(number, &problem),
                    Ok(Input::End(error)) => {
                        let how = child.as_deref_mut().map_or(String::new(), exit_text);
                        let why = error.map_or(String::new(), |e| format!(" ({e})"));
                        return End {
                            state: RunState::Stopped,
                            reason: Some(format!(
                                "the trainer ended without a `finished` event{why}{how}"
                            )),
                            finished: None,
                        };
                    }
                    Err(_) => return End {
                        state: RunState::Stopped,
                        reason: Some("the trainer's output could not be read".into()),
                        finished: None,
                    },
                },
                recv(commands) -> command => {
                    if let Ok(command) = command {
                        self.forward(command);
                    }
                },
                // The hub's copy for an in-process front end: there is none.
                recv(local) -> _ => {},
                default(TICK) => {},
            }
        }
    }

    /// Takes in one event of the trainer; `Some` when the run ends.
    fn take(&mut self, number: usize, event: TrainerEvent) -> Option<End> {
        match event {
            TrainerEvent::Declare(_) => self.complain(
                number,
                "a second `declare`; the first one holds, this is dropped",
            ),
            TrainerEvent::Progress(p) => match p.to_progress() {
                Ok(_) if p.iteration < self.iteration => {
                    self.out_of_order(number, "progress", p.iteration)
                }
                Ok(progress) => {
                    self.iteration = progress.iteration;
                    self.last_progress = Some(progress);
                    self.send(Event::Progress(progress));
                }
                Err(e) => self.complain(number, &format!("progress: {e}; dropped")),
            },
            TrainerEvent::Epoch(e) => self.epoch(number, &e),
            TrainerEvent::Layers(l) => match l.to_stats(&self.declaration) {
                Ok(_) if l.iteration < self.iteration => {
                    self.out_of_order(number, "layers", l.iteration)
                }
                Ok(layers) => {
                    self.iteration = l.iteration;
                    self.layers = layers.clone();
                    self.send(Event::Layers {
                        iteration: l.iteration,
                        layers,
                    });
                }
                Err(e) => self.complain(number, &format!("{e}; dropped")),
            },
            TrainerEvent::Log(text) => self.send(Event::Log(clip(text))),
            TrainerEvent::State(state @ (RunState::Running | RunState::Paused)) => {
                self.send(Event::State(state))
            }
            TrainerEvent::State(state) => self.complain(
                number,
                &format!(
                    "state `{}`: a trainer is `running` or `paused`; its end comes as a \
                     `finished` event; dropped",
                    state.label()
                ),
            ),
            TrainerEvent::Ack(ack) => self.answer(number, ack),
            TrainerEvent::Finished(f) if !f.state.is_over() => self.complain(
                number,
                &format!(
                    "finished with state `{}`: give finished, stopped or diverged; dropped",
                    f.state.label()
                ),
            ),
            TrainerEvent::Finished(f) => {
                return Some(End {
                    state: f.state,
                    reason: f.reason.clone().map(clip),
                    finished: Some(f),
                })
            }
        }
        None
    }

    /// Records and shows one evaluation, if it is the next one.
    fn epoch(&mut self, number: usize, e: &messages::TrainerEpoch) {
        let expected = self.last_epoch + 1;
        if e.epoch != expected {
            return self.complain(
                number,
                &format!(
                    "epoch {} where epoch {expected} comes next: evaluations come once each, \
                     in order; dropped",
                    e.epoch
                ),
            );
        }
        let before = self.wiring.last_evaluation().map_or(0, |m| m.iteration);
        if e.iteration < before {
            return self.complain(
                number,
                &format!(
                    "epoch {} at iteration {} is before the last evaluation's {before}; dropped",
                    e.epoch, e.iteration
                ),
            );
        }
        let elapsed = self.started.elapsed().as_secs_f64();
        let metrics = match e.to_metrics(self.layers.clone(), elapsed) {
            Ok(m) => m,
            Err(problem) => {
                return self.complain(number, &format!("epoch {}: {problem}; dropped", e.epoch))
            }
        };
        if let Err(problem) = self.wiring.record_epoch(&metrics) {
            let message = format!("epoch {} not recorded: {problem}", e.epoch);
            warn(&format!("ltmlp host: {message}"));
            self.send(Event::Failed(message));
        }
        self.last_epoch = e.epoch;
        self.iteration = self.iteration.max(e.iteration);
        self.send(Event::Epoch(Box::new(metrics)));
    }

    /// Hands a viewer's command to the trainer, or refuses it here.
    fn forward(&mut self, command: Command) {
        let name = command_name(&command);
        let d = &self.declaration;
        if !d.commands.iter().any(|c| c == name) {
            let declared = if d.commands.is_empty() {
                "none".to_string()
            } else {
                d.commands.join(", ")
            };
            let why = format!(
                "{} does not carry out `{name}`; its commands: {declared}",
                d.producer
            );
            return self.conclude(command, false, why, None);
        }
        if let Command::Set { key, value } = &command {
            let check = match d.settings.iter().find(|s| s.key == key.trim()) {
                Some(spec) => check_value(spec, value),
                None => Err(format!(
                    "`{}` is not a live setting of {}; its settings: {}",
                    key.trim(),
                    d.producer,
                    d.settings
                        .iter()
                        .map(|s| s.key.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            };
            if let Err(why) = check {
                return self.conclude(command, false, why, None);
            }
        }
        let command = match command {
            Command::Set { key, value } => Command::Set {
                key: key.trim().to_string(),
                value: value.trim().to_string(),
            },
            other => other,
        };
        let id = self.next_id;
        self.next_id += 1;
        let line = crate::remote::wire::encode(&HostCommand {
            id,
            command: command.clone(),
        });
        match self.pipe.send(line) {
            Ok(()) => self.pending.push(Pending {
                id,
                command,
                sent: Instant::now(),
            }),
            Err(why) => {
                let why = self.unread(&why);
                self.conclude(command, false, why, None);
            }
        }
    }

    /// The trainer's answer to one of its commands.
    fn answer(&mut self, number: usize, ack: Ack) {
        let Some(at) = self.pending.iter().position(|p| p.id == ack.id) else {
            return self.complain(
                number,
                &format!(
                    "an answer to command {}, which waits for none (answered already, refused \
                     after {} s, or never sent); dropped",
                    ack.id,
                    ANSWER_DEADLINE.as_secs()
                ),
            );
        };
        let pending = self.pending.remove(at);
        if let Some(iteration) = ack.iteration {
            self.iteration = self.iteration.max(iteration);
        }
        let message = match (ack.ok, ack.message.trim().is_empty()) {
            (_, false) => clip(ack.message),
            (true, true) => "done".into(),
            (false, true) => "refused by the trainer".into(),
        };
        // A toggle's or re-estimation's switches, for viewers and `ctl status` at once.
        let cause = match pending.command {
            Command::Toggle(param) => ack.flags.map(|f| TransformCause::Switch {
                param,
                on: f.get(param),
            }),
            Command::Reestimate => Some(TransformCause::Manual),
            _ => None,
        };
        if let (true, Some(cause), Some(flags)) = (ack.ok, cause, ack.flags) {
            self.send(Event::Transform(TransformEvent {
                iteration: ack.iteration.unwrap_or(self.iteration),
                cause,
                flags,
                max_output_change: ack
                    .max_output_change
                    .filter(|x| x.is_finite())
                    .unwrap_or(f64::NAN),
            }));
        }
        if ack.ok {
            if let Command::Set { key, value } = &pending.command {
                if let Some(t) = self.tunables.iter_mut().find(|t| &t.key == key) {
                    t.value = value.clone();
                }
                self.send(Event::Tunables(self.tunables.clone()));
            }
        }
        self.conclude(pending.command, ack.ok, message, ack.iteration);
    }

    /// Refuses the commands the trainer left unanswered too long.
    fn refuse_overdue(&mut self) {
        let overdue: Vec<Pending> = {
            let (late, waiting) = std::mem::take(&mut self.pending)
                .into_iter()
                .partition(|p| p.sent.elapsed() >= ANSWER_DEADLINE);
            self.pending = waiting;
            late
        };
        for p in overdue {
            let why = format!(
                "the trainer did not answer within {} s",
                ANSWER_DEADLINE.as_secs()
            );
            self.conclude(p.command, false, why, None);
        }
    }

    /// Refuses the commands waiting for an answer once the trainer's command pipe broke: it
    /// cannot have read the one being written, and will read no other.
    fn refuse_unread(&mut self) {
        let Some(why) = self.pipe.broken() else {
            return;
        };
        let why = self.unread(&why);
        for p in std::mem::take(&mut self.pending) {
            self.conclude(p.command, false, why.clone(), None);
        }
    }

    /// The refusal of a command the trainer cannot read; said on stderr the first time.
    fn unread(&mut self, why: &str) -> String {
        let message = format!("the trainer does not read its commands ({why})");
        if !self.said_pipe_broken {
            self.said_pipe_broken = true;
            warn(&format!("ltmlp host: {message}; every command is refused"));
        }
        message
    }

    /// A command's outcome as a native run gives it: its log line, its record in
    /// `actions.jsonl`, and its `steered` event.
    fn conclude(&mut self, command: Command, ok: bool, message: String, iteration: Option<u64>) {
        self.send(Event::Log(if ok {
            message.clone()
        } else {
            format!("refused: {message}")
        }));
        let steer = Steer {
            iteration: iteration.unwrap_or(self.iteration),
            command,
            ok,
            message,
        };
        if let Err(e) = self.wiring.record_steer(&steer) {
            self.send(Event::Log(format!(
                "action not recorded (a replay will miss it): {e}"
            )));
        }
        self.send(Event::Steered(steer));
    }

    /// Drops an event dated before the run's current iteration, and says so.
    fn out_of_order(&mut self, number: usize, what: &str, iteration: u64) {
        let at = self.iteration;
        self.complain(
            number,
            &format!(
                "{what} at iteration {iteration} after iteration {at}: events come in order; dropped"
            ),
        );
    }

    /// Says what was wrong with a trainer's line, on stderr and to the viewers.
    fn complain(&mut self, number: usize, problem: &str) {
        self.problems += 1;
        if self.problems > PROBLEMS_SHOWN {
            return;
        }
        let text = format!("trainer line {number}: {problem}");
        warn(&format!("ltmlp host: {text}"));
        if self.problems == PROBLEMS_SHOWN {
            warn(&format!(
                "ltmlp host: {PROBLEMS_SHOWN} problems said; further ones are only counted"
            ));
        }
        self.send(Event::Log(text));
    }

    /// Completes the files, tells the viewers, and lets the trainer and the endpoint go.
    fn finish(mut self, end: End, child: Option<&mut Child>) -> (Summary, ExitCode) {
        for p in std::mem::take(&mut self.pending) {
            self.conclude(
                p.command,
                false,
                "not applied: the run ended before the trainer answered".into(),
                None,
            );
        }
        if let Some(reason) = &end.reason {
            self.send(Event::Log(reason.clone()));
        }
        if self.problems > PROBLEMS_SHOWN {
            warn(&format!(
                "ltmlp host: {} problems with the trainer's lines in all",
                self.problems
            ));
        }
        let progress = self.last_progress;
        let finished = end.finished.as_ref();
        let base = SummaryBase {
            preset: self.declaration.producer.clone(),
            variant: if self.declaration.variant.is_empty() {
                "foreign".into()
            } else {
                self.declaration.variant.clone()
            },
            monitor: self.declaration.monitor,
            state: end.state,
            reason: end.reason.clone(),
            iterations: finished
                .and_then(|f| f.iterations)
                .unwrap_or(self.iteration),
            wall_seconds: self.started.elapsed().as_secs_f64(),
            train_seconds: finished
                .and_then(|f| f.train_seconds)
                .or(progress.map(|p| p.elapsed_seconds))
                .unwrap_or(f64::NAN),
            reestimate_seconds: 0.0,
            examples_per_second: progress.map_or(f64::NAN, |p| p.examples_per_second),
            steering_actions: self.wiring.steering_actions(),
            wall: None,
        };
        let (summary, written) = self.wiring.write_summary(base);
        if let Err(problem) = written {
            warn(&format!("ltmlp host: {problem}"));
            self.send(Event::Failed(problem));
        }
        self.send(Event::State(end.state));
        self.send(Event::Finished(Box::new(summary.clone())));
        // Closing the command pipe tells a trainer that reads it that the run is over.
        drop(self.pipe);
        end_child(child, end.finished.is_none());
        self.wiring.close();
        let code = match (end.state, &end.finished) {
            (RunState::Diverged, _) => ExitCode::from(3),
            (_, Some(_)) => ExitCode::SUCCESS,
            (_, None) => ExitCode::from(1),
        };
        (summary, code)
    }
}

/// The run as the declaration describes it, in folder `dir`.
fn run_info(d: &Declaration, dir: &str) -> RunInfo {
    RunInfo {
        preset: d.producer.clone(),
        variant: if d.variant.is_empty() {
            "foreign".into()
        } else {
            d.variant.clone()
        },
        data: d.data.clone(),
        topology: d.topology(),
        weights: d.weights,
        epochs: d.epochs,
        iterations_per_epoch: d.iterations_per_epoch,
        batch_size: d.batch_size,
        classify: d.task == crate::preset::Task::Classify,
        precision: d.precision.clone(),
        out_dir: Some(dir.to_string()),
        monitor: d.monitor,
        optimizer: d.optimizer,
        task: Some(d.task),
        trainer: Some(Box::new(ForeignTrainer {
            producer: d.producer.clone(),
            version: d.version.clone(),
            layers: d.layers.clone(),
            commands: d.commands.clone(),
            settings: d.settings.clone(),
            config: d.config.clone(),
        })),
    }
}

/// Lets a started trainer exit (asked to with SIGTERM when `terminate`: the run ended
/// without it), or kills it after [`EXIT_DEADLINE`].
fn end_child(child: Option<&mut Child>, terminate: bool) {
    let Some(child) = child else { return };
    if terminate && matches!(child.try_wait(), Ok(None)) {
        if let Ok(pid) = libc::pid_t::try_from(child.id()) {
            // SAFETY: kill(2) on the trainer this host started and has not reaped yet.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
    }
    let deadline = Instant::now() + EXIT_DEADLINE;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    warn(&format!(
        "ltmlp host: the trainer (pid {}) did not exit within {} s; killed",
        child.id(),
        EXIT_DEADLINE.as_secs()
    ));
    let _ = child.kill();
    let _ = child.wait();
}

/// How a started trainer ended, for the run's reason (waits a little for it to be told).
fn exit_text(child: &mut Child) -> String {
    use std::os::unix::process::ExitStatusExt as _;
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        match child.try_wait() {
            Ok(Some(status)) => {
                return match (status.code(), status.signal()) {
                    (Some(code), _) => format!("; it exited with status {code}"),
                    (None, Some(signal)) => format!("; it was killed by signal {signal}"),
                    _ => String::new(),
                }
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(_) => break,
        }
    }
    String::new()
}

fn warn(text: &str) {
    crate::headless::warn(text);
}
