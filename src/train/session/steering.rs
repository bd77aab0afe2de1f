//! Steering: the commands a front end (or a replayed action log) sends, applied between
//! minibatches, each answered with a `Steered` event and recorded for replays.

use crossbeam_channel::{RecvTimeoutError, TryRecvError};

use super::{signal_name, Driver, Settled, StateKind, PAUSED_POLL};
use crate::protocol::{Command, Event, RunState, Steer};

impl<T: StateKind> Driver<T> {
    /// Carries out one command, tells every front end what came of it (a `Steered` event)
    /// and records it for replays; returns true when the run must end.
    pub(super) fn steer(&mut self, command: Command, step_once: &mut bool) -> bool {
        // A command applies where the run would be had it waited for the last epoch's
        // evaluation: that evaluation is taken first.
        let ended = self.settle() == Settled::Ended;
        let iteration = self.trainer.iteration;
        let (end, outcome) = if ended {
            let why = self
                .reason
                .clone()
                .unwrap_or_else(|| "the run ended".into());
            (true, Err(format!("not applied: {why}")))
        } else {
            self.apply(&command, step_once)
        };
        let (ok, message) = match outcome {
            Ok(m) => (true, m),
            Err(m) => (false, m),
        };
        let steer = Steer {
            iteration,
            command,
            ok,
            message,
        };
        self.steering_actions += 1;
        let event = Event::Steered(steer);
        if let Err(e) = self.subscribers.publish(&event) {
            // Kept: it is written with the next record that gets through.
            self.send(Event::Log(format!("action not recorded yet: {e}")));
        }
        self.send(event);
        end
    }

    /// Applies one command: (the run must end, what was done or why not).
    pub(super) fn apply(
        &mut self,
        command: &Command,
        step_once: &mut bool,
    ) -> (bool, Result<String, String>) {
        let outcome = match command {
            Command::Pause => {
                self.set_state(RunState::Paused);
                Ok("paused".into())
            }
            Command::Resume => {
                if self.flush_pending() {
                    self.set_state(RunState::Running);
                    Ok("resumed".into())
                } else {
                    Err("the pending files still cannot be written; training stays paused".into())
                }
            }
            Command::Step => {
                *step_once = true;
                Ok("one minibatch".into())
            }
            Command::Stop => {
                self.state = RunState::Stopped;
                return (true, Ok("stopping after this minibatch".into()));
            }
            Command::Checkpoint => match self.save_checkpoint() {
                Ok(Some(path)) => {
                    let m = format!("checkpoint saved: {}", path.display());
                    self.send(Event::Log(m.clone()));
                    Ok(m)
                }
                Ok(None) => {
                    let m = "no run folder: checkpoint not saved".to_string();
                    self.send(Event::Log(m.clone()));
                    Err(m)
                }
                Err(e) => {
                    self.send(Event::Log(e.clone()));
                    Err(e)
                }
            },
            Command::Curvature => {
                self.curvature_in_background();
                Ok("curvature measured in the background (the answer is a log line)".into())
            }
            Command::Toggle(which) => match self.trainer.toggle(*which) {
                Ok(event) => {
                    let m = crate::protocol::wording::transform_text(&event);
                    self.send(Event::Transform(event));
                    self.send_layers();
                    Ok(m)
                }
                Err(e) => {
                    let m = format!("{} not switched: {e}", which.symbol());
                    self.send(Event::Log(m.clone()));
                    Err(m)
                }
            },
            Command::Reestimate => match self.trainer.reestimate_now() {
                Ok(event) => {
                    let m = crate::protocol::wording::transform_text(&event);
                    self.send(Event::Transform(event));
                    self.send_layers();
                    Ok(m)
                }
                Err(e) => {
                    let m = format!("re-estimation refused: {e}");
                    self.send(Event::Log(m.clone()));
                    Err(m)
                }
            },
            Command::ScaleLearningRate(f) if f.is_finite() && *f > 0.0 => {
                self.trainer.scale_learning_rate(*f);
                Ok(self.log_position(format!(
                    "learning rate → {:.4}",
                    self.trainer.learning_rate()
                )))
            }
            Command::SetLearningRate(r) if r.is_finite() && *r > 0.0 => {
                self.trainer.set_learning_rate(*r);
                Ok(self.log_position(format!(
                    "learning rate → {:.4}",
                    self.trainer.learning_rate()
                )))
            }
            Command::ScaleLearningRate(v) | Command::SetLearningRate(v) => {
                Err(self.refuse(format!("learning rate: {v} is not a positive number")))
            }
            Command::SetMomentum(m) => match self.trainer.set_momentum(&self.exp.resolved, *m) {
                Ok(()) => {
                    Ok(self.log_position(format!("momentum → {:.3}", self.trainer.momentum())))
                }
                Err(e) => Err(self.refuse(e)),
            },
            Command::Set { key, value } => self.retune(key, value),
        };
        (false, outcome)
    }

    /// Logs a refused command and gives its message back.
    pub(super) fn refuse(&self, message: String) -> String {
        self.send(Event::Log(format!("refused: {message}")));
        message
    }

    /// Logs a change that moved the status line's figures, and sends the new position.
    pub(super) fn log_position(&self, message: String) -> String {
        self.send(Event::Log(message.clone()));
        self.send_position();
        message
    }

    /// `set KEY=VALUE`: validated as the preset would be, then in force from the next
    /// minibatch; `config.toml` stays the run's start, the checkpoint carries the change.
    pub(super) fn retune(&mut self, key: &str, value: &str) -> Result<String, String> {
        let next = match crate::train::tunables::retune(&self.exp.resolved, key, value) {
            Ok(n) => n,
            Err(e) => return Err(self.refuse(e)),
        };
        self.trainer.retune(&next.preset);
        self.early_stop.patience = next.preset.train.patience.or(next.preset.compare.patience);
        self.exp.resolved = next;
        self.send(Event::Tunables(crate::train::tunables::current(
            &self.exp.resolved.preset,
        )));
        let message = format!("{} = {}", key.trim(), value.trim());
        self.send(Event::Log(message.clone()));
        self.send_position();
        Ok(message)
    }

    /// Applies the recorded actions due at this iteration (`--replay`); true when one of them
    /// ends the run.
    pub(super) fn apply_replay(&mut self) -> bool {
        while self
            .replay
            .front()
            .is_some_and(|s| s.iteration <= self.trainer.iteration)
        {
            let Some(action) = self.replay.pop_front() else {
                break;
            };
            if action.ok
                && action.command.changes_training()
                && self.steer(action.command, &mut false)
            {
                return true;
            }
        }
        false
    }

    /// Applies every waiting command (blocking only while paused); returns (end, step_once).
    pub(super) fn handle_commands(&mut self) -> (bool, bool) {
        let mut step_once = false;
        loop {
            if let Some(signal) = self.interrupted() {
                self.state = RunState::Stopped;
                self.reason = Some(format!("interrupted by {}", signal_name(signal)));
                return (true, false);
            }
            let command = if self.state == RunState::Paused && !step_once {
                match self.commands.recv_timeout(PAUSED_POLL) {
                    Ok(c) => c,
                    Err(RecvTimeoutError::Timeout) => continue,
                    // The front end is gone while paused: stop and save.
                    Err(RecvTimeoutError::Disconnected) => {
                        self.state = RunState::Stopped;
                        return (true, false);
                    }
                }
            } else {
                match self.commands.try_recv() {
                    Ok(c) => c,
                    Err(TryRecvError::Empty) | Err(TryRecvError::Disconnected) => {
                        return (false, step_once)
                    }
                }
            };
            if self.steer(command, &mut step_once) {
                return (true, false);
            }
            if step_once && self.state == RunState::Paused {
                return (false, true);
            }
        }
    }
}
