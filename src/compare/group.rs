//! Grouping runs by setting: two runs belong together when their resolved configs are equal in
//! everything but the seed. The axes are the keys whose values differ between the groups of
//! one variant; a group's setting is its values on those keys.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use super::runs::SavedRun;
use crate::preset::VARIANTS;

/// The only key that tells runs of one setting apart.
pub const SEED_KEY: &str = "train.seed";

/// Runs of one setting.
#[derive(Debug, Clone)]
pub struct Group {
    pub variant: String,
    /// The config without the seed.
    pub config: BTreeMap<String, String>,
    /// Indices into the runs.
    pub runs: Vec<usize>,
}

/// Groups and the axes along which they differ.
#[derive(Debug, Clone)]
pub struct Grouping {
    pub groups: Vec<Group>,
    pub axes: Vec<String>,
}

fn variant_rank(v: &str) -> usize {
    VARIANTS
        .iter()
        .position(|x| *x == v)
        .unwrap_or(VARIANTS.len())
}

/// Orders two values numerically when both are numbers, else as text.
pub fn compare_values(a: &str, b: &str) -> Ordering {
    match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) => x.partial_cmp(&y).unwrap_or(Ordering::Equal),
        _ => a.cmp(b),
    }
}

impl Group {
    /// Values of the axes this group has (a key missing from its config is left out).
    pub fn setting(&self, axes: &[String]) -> Vec<(String, String)> {
        axes.iter()
            .filter_map(|k| self.config.get(k).map(|v| (k.clone(), v.clone())))
            .collect()
    }
}

/// Short names of keys in labels: the last part, unless two axes share it.
pub fn short_key<'a>(key: &'a str, axes: &[String]) -> &'a str {
    fn last(k: &str) -> &str {
        k.rsplit('.').next().unwrap_or(k)
    }
    if axes.iter().any(|o| o != key && last(o) == last(key)) {
        key
    } else {
        last(key)
    }
}

/// `learning_rate=0.1 momentum=0.9`, or `–` for no axes.
pub fn setting_text(setting: &[(String, String)], axes: &[String]) -> String {
    if setting.is_empty() {
        return "–".into();
    }
    setting
        .iter()
        .map(|(k, v)| format!("{}={v}", short_key(k, axes)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Groups the given runs by setting; groups are ordered by variant (none, ab, abg first) and
/// then by their values on the axes.
pub fn group(runs: &[SavedRun]) -> Grouping {
    let mut groups: Vec<Group> = Vec::new();
    for (i, run) in runs.iter().enumerate() {
        let mut config = run.config.clone();
        config.remove(SEED_KEY);
        match groups.iter_mut().find(|g| g.config == config) {
            Some(g) => g.runs.push(i),
            None => groups.push(Group {
                variant: run.variant.clone(),
                config,
                runs: vec![i],
            }),
        }
    }
    let mut axes: Vec<String> = Vec::new();
    for (i, a) in groups.iter().enumerate() {
        for b in groups[..i].iter().filter(|b| b.variant == a.variant) {
            let keys = a.config.keys().chain(b.config.keys());
            for k in keys {
                if a.config.get(k) != b.config.get(k) && !axes.contains(k) {
                    axes.push(k.clone());
                }
            }
        }
    }
    axes.sort();
    groups.sort_by(|a, b| {
        variant_rank(&a.variant)
            .cmp(&variant_rank(&b.variant))
            .then_with(|| a.variant.cmp(&b.variant))
            .then_with(|| {
                axes.iter()
                    .map(|k| match (a.config.get(k), b.config.get(k)) {
                        (Some(x), Some(y)) => compare_values(x, y),
                        (x, y) => x.cmp(&y),
                    })
                    .find(|o| *o != Ordering::Equal)
                    .unwrap_or(Ordering::Equal)
            })
    });
    Grouping { groups, axes }
}
