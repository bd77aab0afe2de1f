//! Choosing each variant's best setting on the validation set (never on test), and slicing the
//! sweep along one axis through that best setting for the sensitivity plots.

use serde::{Deserialize, Serialize};

use super::aggregate::{GroupReport, Stat};
use super::group::compare_values;

/// The selection rule, as printed in the report.
pub fn rule(metric: &str) -> String {
    format!(
        "For each variant, the chosen setting is the one with the lowest mean over seeds of the \
         best {metric} (each finished run's best evaluation on the validation set), among its \
         settings with the fewest failed or diverged runs; a setting with no finished run \
         cannot be chosen. Test figures are never used to choose. Ties go to the setting \
         listed first."
    )
}

/// One variant's chosen setting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Choice {
    pub variant: String,
    /// Index into the groups; `None` when no setting is eligible.
    pub group: Option<usize>,
    pub label: Option<String>,
    /// The mean best validation value of the chosen setting.
    pub value: Option<f64>,
    /// Settings it was chosen among (those with the fewest failed runs).
    pub eligible: usize,
    pub settings: usize,
}

/// The mean best validation value of a setting that has a finished run.
fn candidate(g: &GroupReport) -> Option<f64> {
    if g.counted == 0 {
        return None;
    }
    g.best_validation.map(|s| s.mean).filter(|v| v.is_finite())
}

/// The best setting of every variant, in the order the variants first appear in `groups`.
pub fn choose(groups: &[GroupReport]) -> Vec<Choice> {
    let mut variants: Vec<&str> = Vec::new();
    for g in groups {
        if !variants.contains(&g.variant.as_str()) {
            variants.push(&g.variant);
        }
    }
    variants
        .into_iter()
        .map(|v| {
            let mine: Vec<(usize, &GroupReport)> = groups
                .iter()
                .enumerate()
                .filter(|(_, g)| g.variant == v)
                .collect();
            let with_runs: Vec<(usize, f64, usize)> = mine
                .iter()
                .filter_map(|(i, g)| candidate(g).map(|value| (*i, value, g.failed.len())))
                .collect();
            let fewest = with_runs.iter().map(|c| c.2).min().unwrap_or(0);
            let candidates: Vec<(usize, f64)> = with_runs
                .iter()
                .filter(|c| c.2 == fewest)
                .map(|c| (c.0, c.1))
                .collect();
            // Strictly lower wins, so that ties keep the first listed.
            let best = candidates
                .iter()
                .copied()
                .fold(None, |best: Option<(usize, f64)>, c| match best {
                    Some(b) if b.1 <= c.1 => Some(b),
                    _ => Some(c),
                });
            Choice {
                variant: v.to_string(),
                group: best.map(|b| b.0),
                label: best.map(|b| groups[b.0].label.clone()),
                value: best.map(|b| b.1),
                eligible: candidates.len(),
                settings: mine.len(),
            }
        })
        .collect()
}

/// One variant's line in a sensitivity plot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SliceLine {
    pub variant: String,
    /// (axis value, mean ± std of the best validation value over seeds).
    pub points: Vec<(String, Stat)>,
}

/// The sweep along one axis, every other key at each variant's chosen setting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Slice {
    pub key: String,
    /// Every value on the lines, in order.
    pub values: Vec<String>,
    pub numeric: bool,
    /// Log-scale x: positive numbers, and a rate or a spread of ten or more.
    pub log_x: bool,
    pub lines: Vec<SliceLine>,
}

/// The slice of `groups` along `key` through each variant's choice; `None` if no variant has
/// a point on it.
pub fn slice(groups: &[GroupReport], choices: &[Choice], key: &str) -> Option<Slice> {
    let same_but = |a: &GroupReport, b: &GroupReport| {
        a.variant == b.variant
            && a.config
                .keys()
                .chain(b.config.keys())
                .all(|k| k == key || a.config.get(k) == b.config.get(k))
    };
    let mut lines = Vec::new();
    for c in choices {
        let Some(chosen) = c.group.map(|i| &groups[i]) else {
            continue;
        };
        if !chosen.config.contains_key(key) {
            continue;
        }
        let mut points: Vec<(String, Stat)> = groups
            .iter()
            .filter(|g| same_but(g, chosen))
            .filter_map(|g| Some((g.config.get(key)?.clone(), g.best_validation?)))
            .collect();
        points.sort_by(|a, b| compare_values(&a.0, &b.0));
        if points.len() > 1 {
            lines.push(SliceLine {
                variant: c.variant.clone(),
                points,
            });
        }
    }
    if lines.is_empty() {
        return None;
    }
    let mut values: Vec<String> = lines
        .iter()
        .flat_map(|l| l.points.iter().map(|p| p.0.clone()))
        .collect();
    values.sort_by(|a, b| compare_values(a, b));
    values.dedup();
    let numbers: Vec<f64> = values.iter().filter_map(|v| v.parse().ok()).collect();
    let numeric = numbers.len() == values.len();
    let positive = numeric && numbers.iter().all(|&x| x > 0.0);
    let spread = numbers.iter().copied().fold(f64::NEG_INFINITY, f64::max)
        / numbers.iter().copied().fold(f64::INFINITY, f64::min);
    Some(Slice {
        key: key.to_string(),
        values,
        numeric,
        log_x: positive && (key.contains("rate") || spread >= 10.0),
        lines,
    })
}
