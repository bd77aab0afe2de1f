//! `actions.jsonl`: every command that steered a run, with the iteration it took effect at,
//! append-only, so that `ltmlp run --replay` can repeat the run exactly.
//!
//! A resume continues from a checkpoint that may be older than the last recorded actions; it
//! appends a `{"resumed_at": N}` line instead of cutting the file, and readers drop the actions
//! after iteration N that came before that line (the resumed run never saw them).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::durable::AppendLog;
use crate::protocol::Steer;

/// The file's name in a run folder.
pub const ACTIONS_FILE: &str = "actions.jsonl";

/// One line of the file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionLine {
    Steer(Steer),
    /// The run was resumed from a checkpoint taken at this iteration.
    ResumedAt(u64),
}

/// The open log of a run that is training.
#[derive(Debug)]
pub struct ActionLog {
    log: AppendLog,
    /// Actions recorded so far, over every segment of the run.
    pub count: usize,
}

impl ActionLog {
    /// A new run's (empty) log.
    pub fn create(dir: &Path) -> std::io::Result<Self> {
        Ok(ActionLog {
            log: AppendLog::create_new(&dir.join(ACTIONS_FILE))?,
            count: 0,
        })
    }

    /// A resumed run's log: what is there is kept, and a resume line marks the iteration the
    /// checkpoint was taken at. A run folder from before this file existed gets a new one.
    pub fn resume(dir: &Path, iteration: u64) -> Result<Self, String> {
        let path = dir.join(ACTIONS_FILE);
        let mut log = if path.exists() {
            let text = read_bounded(&path)?;
            // A torn last line (a crash mid-write) is cut off; whole lines stay.
            let keep = text.rfind('\n').map_or(0, |i| i + 1);
            AppendLog::continue_after(&path, &text.as_bytes()[..keep])
                .map_err(|e| format!("{}: {e}", path.display()))?
        } else {
            AppendLog::create_new(&path).map_err(|e| format!("{}: {e}", path.display()))?
        };
        let line = line_of(&ActionLine::ResumedAt(iteration));
        log.append(line.as_bytes())
            .map_err(|e| format!("{}: {e}", path.display()))?;
        let count = read(dir)?.len();
        Ok(ActionLog { log, count })
    }

    /// Records one carried-out command.
    pub fn record(&mut self, steer: &Steer) -> std::io::Result<()> {
        self.log
            .append(line_of(&ActionLine::Steer(steer.clone())).as_bytes())?;
        self.count += 1;
        Ok(())
    }
}

fn line_of(line: &ActionLine) -> String {
    let mut text = serde_json::to_string(line).unwrap_or_default();
    text.push('\n');
    text
}

fn read_bounded(path: &Path) -> Result<String, String> {
    crate::bounded::read_text(path, crate::bounded::FileKind::ActionLog).map_err(|e| e.to_string())
}

/// The actions that shaped the run in `dir`, in order: those undone by a resume are left out.
/// A missing file means a run nobody steered.
pub fn read(dir: &Path) -> Result<Vec<Steer>, String> {
    let path = dir.join(ACTIONS_FILE);
    if !path.exists() {
        return Ok(Vec::new());
    }
    parse(&read_bounded(&path)?).map_err(|e| format!("{}: {e}", path.display()))
}

/// Checks the log of the run in `dir` before a resume changes anything: every whole line
/// must be an action or a resume mark. The error names the file and the line, and the way out.
pub fn check(dir: &Path) -> Result<(), String> {
    let path = dir.join(ACTIONS_FILE);
    if !path.exists() {
        return Ok(());
    }
    parse_lines(&read_bounded(&path)?)
        .map(|_| ())
        .map_err(|(line, reason)| {
            format!(
                "{}:{line}: not an action record ({reason}); the file was edited or damaged: \
                 restore it, or move it away to resume without the record of earlier steering \
                 (a --replay of this run then misses those actions)",
                path.display()
            )
        })
}

/// Parses the file's text (see [`read`]); a torn last line is ignored.
pub fn parse(text: &str) -> Result<Vec<Steer>, String> {
    parse_lines(text).map_err(|(line, reason)| format!("line {line}: {reason}"))
}

/// [`parse`], its error as (1-based line, reason).
fn parse_lines(text: &str) -> Result<Vec<Steer>, (usize, String)> {
    let mut actions: Vec<Steer> = Vec::new();
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    for (n, raw) in lines.iter().enumerate() {
        if !raw.ends_with('\n') {
            break;
        }
        let line: ActionLine =
            serde_json::from_str(raw.trim_end()).map_err(|e| (n + 1, e.to_string()))?;
        match line {
            ActionLine::Steer(s) => actions.push(s),
            ActionLine::ResumedAt(iteration) => actions.retain(|s| s.iteration <= iteration),
        }
    }
    Ok(actions)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::Command;

    fn steer(iteration: u64) -> Steer {
        Steer {
            iteration,
            command: Command::Reestimate,
            ok: true,
            message: "re-estimated".into(),
        }
    }

    #[test]
    fn a_resume_drops_the_actions_after_its_checkpoint_only() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = ActionLog::create(dir.path()).unwrap();
        for it in [5, 10, 20] {
            log.record(&steer(it)).unwrap();
        }
        drop(log);
        let mut log = ActionLog::resume(dir.path(), 10).unwrap();
        assert_eq!(log.count, 2);
        log.record(&steer(12)).unwrap();
        let kept: Vec<u64> = read(dir.path())
            .unwrap()
            .iter()
            .map(|s| s.iteration)
            .collect();
        assert_eq!(kept, vec![5, 10, 12]);
    }

    #[test]
    fn a_torn_last_line_is_ignored_and_a_bad_line_is_named() {
        let whole = line_of(&ActionLine::Steer(steer(3)));
        let torn = format!("{whole}{}", &whole[..whole.len() / 2]);
        assert_eq!(parse(&torn).unwrap(), vec![steer(3)]);
        let bad = format!("{whole}{{\"steer\": 7}}\n");
        assert!(parse(&bad).unwrap_err().starts_with("line 2:"));
    }
}
