//! `ltmlp ctl DIR COMMAND`: steer a running run from a script. Prints the trainer's
//! acknowledgement (or `status` as JSON); a refusal is printed on stderr with exit status 1.

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use clap::Subcommand;

use super::client;
use crate::net::Param;
use crate::train::Command;

/// How long `ctl` waits for the trainer to carry a command out (an epoch's evaluation of a
/// large data set can take this long).
const ACK_TIMEOUT: Duration = Duration::from_secs(120);

/// What `ltmlp ctl` can ask.
#[derive(Debug, Clone, Subcommand)]
pub enum CtlCommand {
    /// Pause training after the current minibatch
    Pause,
    /// Resume a paused run (and retry files that could not be written)
    Resume,
    /// Run one minibatch of a paused run
    Step,
    /// Switch α, β or γ on or off (function-preserving)
    Toggle {
        #[arg(value_parser = ["a", "b", "g"])]
        which: String,
    },
    /// Re-estimate the active transformations now
    Reestimate,
    /// Change a live setting, e.g. `set train.momentum=0.95` (`status` lists them)
    Set {
        #[arg(value_name = "KEY=VALUE")]
        item: String,
    },
    /// Save a checkpoint now
    Checkpoint,
    /// Stop after the current minibatch and write the final files
    Stop,
    /// Where the run is, as JSON
    Status,
}

impl CtlCommand {
    /// The trainer command, or the reason the arguments do not make one.
    fn command(&self) -> Result<Option<Command>, String> {
        Ok(Some(match self {
            CtlCommand::Pause => Command::Pause,
            CtlCommand::Resume => Command::Resume,
            CtlCommand::Step => Command::Step,
            CtlCommand::Toggle { which } => Command::Toggle(match which.as_str() {
                "a" => Param::Alpha,
                "b" => Param::Beta,
                _ => Param::Gamma,
            }),
            CtlCommand::Reestimate => Command::Reestimate,
            CtlCommand::Set { item } => {
                let (key, value) = item
                    .split_once('=')
                    .ok_or("set takes KEY=VALUE, e.g. train.momentum=0.95")?;
                Command::Set {
                    key: key.trim().to_string(),
                    value: value.trim().to_string(),
                }
            }
            CtlCommand::Checkpoint => Command::Checkpoint,
            CtlCommand::Stop => Command::Stop,
            CtlCommand::Status => return Ok(None),
        }))
    }
}

pub fn run(dir: &Path, what: CtlCommand) -> anyhow::Result<ExitCode> {
    let command = what.command().map_err(|e| anyhow::anyhow!("{e}"))?;
    let Some(command) = command else {
        let status = client::status(dir)?;
        crate::say!("{}", serde_json::to_string_pretty(&status)?);
        return Ok(ExitCode::SUCCESS);
    };
    let steer = client::steer(dir, command, ACK_TIMEOUT)?;
    if steer.ok {
        crate::say!("{}", steer.message);
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("refused: {}", steer.message);
        Ok(ExitCode::from(1))
    }
}
