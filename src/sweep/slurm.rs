//! `--emit slurm`: the job-array script that runs a sweep's cells on a Slurm cluster, one
//! `ltmlp run-job` per array task, with a dependent job that writes the report.

use std::fmt::Write as _;
use std::path::Path;

use super::plan::Plan;
use crate::compare::runs::LOG_FOLDER;

pub const SBATCH_FILE: &str = "sweep.sbatch";

/// The time limit of one task: twice the training budget (evaluations are not counted in it)
/// plus five minutes for loading and the last evaluation, in whole minutes.
pub fn time_limit_minutes(budget_seconds: f64) -> u64 {
    ((2.0 * budget_seconds + 300.0) / 60.0).ceil() as u64
}

/// `H:MM:00` for sbatch.
fn hhmm(minutes: u64) -> String {
    format!("{}:{:02}:00", minutes / 60, minutes % 60)
}

/// Single quotes for the shell.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The script's text. `dir` and `exe` must be absolute; `extra` are further `#SBATCH` options.
pub fn script(plan: &Plan, dir: &Path, exe: &Path, jobs: usize, extra: &[String]) -> String {
    let n = plan.cells.len();
    let budget = plan
        .cells
        .iter()
        .map(|c| c.config.train.time_budget_seconds)
        .try_fold(0f64, |acc, b| b.map(|b| acc.max(b)));
    let user_time = extra
        .iter()
        .any(|e| e.starts_with("--time") || e.starts_with("-t"));
    let dir_s = dir.display().to_string();
    let logs = dir.join(LOG_FOLDER).display().to_string();
    let mut s = String::new();
    let _ = writeln!(s, "#!/bin/bash");
    let _ = writeln!(
        s,
        "# Written by `ltmlp sweep --emit slurm`: one array task per cell of {dir_s}/plan.json."
    );
    let _ = writeln!(
        s,
        "# Submit with: sbatch {}",
        quote(&dir.join(SBATCH_FILE).display().to_string())
    );
    let _ = writeln!(s, "#SBATCH --job-name=ltmlp-{}", plan.name);
    let _ = writeln!(
        s,
        "#SBATCH --array=0-{}%{}",
        n.saturating_sub(1),
        jobs.max(1)
    );
    let _ = writeln!(s, "#SBATCH --cpus-per-task={}", plan.threads());
    match (user_time, budget) {
        (true, _) => {}
        (false, Some(b)) => {
            let _ = writeln!(
                s,
                "# Time limit: 2 × train.time_budget_seconds ({b:.0} s) + 5 min."
            );
            let _ = writeln!(s, "#SBATCH --time={}", hhmm(time_limit_minutes(b)));
        }
        (false, None) => {
            let _ = writeln!(
                s,
                "# No --time: the cells have no train.time_budget_seconds; set one, or pass\n\
                 # --sbatch=--time=H:MM:SS to ltmlp sweep (the cluster's default limit applies)."
            );
        }
    }
    let _ = writeln!(
        s,
        "# Requeued on preemption or node failure; the task then resumes from its checkpoint."
    );
    let _ = writeln!(s, "#SBATCH --requeue");
    let _ = writeln!(s, "#SBATCH --open-mode=append");
    let _ = writeln!(s, "#SBATCH --output={logs}/%A_%a.out");
    for e in extra {
        let _ = writeln!(s, "#SBATCH {e}");
    }
    let _ = writeln!(s, "set -u");
    let _ = writeln!(s, "LTMLP=${{LTMLP:-{}}}", quote(&exe.display().to_string()));
    let _ = writeln!(s, "DIR={}", quote(&dir_s));
    let _ = writeln!(
        s,
        "# Once per array job, whichever task starts first: the report job, which runs when\n\
         # every task has ended (afterany), finished or not."
    );
    let _ = writeln!(
        s,
        "if mkdir \"$DIR/{LOG_FOLDER}/report-$SLURM_ARRAY_JOB_ID\" 2>/dev/null; then\n  \
         sbatch --parsable --job-name=ltmlp-{}-report --dependency=afterany:$SLURM_ARRAY_JOB_ID \\\n    \
         --output=\"$DIR/{LOG_FOLDER}/report-%j.out\" --wrap \"'$LTMLP' report '$DIR'\" \\\n    \
         > \"$DIR/{LOG_FOLDER}/report-$SLURM_ARRAY_JOB_ID/job\" \\\n    \
         || echo \"ltmlp: could not submit the report job; run: $LTMLP report $DIR\" >&2\n\
         fi",
        plan.name
    );
    let _ = writeln!(
        s,
        "exec \"$LTMLP\" run-job \"$DIR\" --index \"$SLURM_ARRAY_TASK_ID\""
    );
    s
}
