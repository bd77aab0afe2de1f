//! Sweep axes: `--grid [VARIANT:]KEY=V1,V2,…` and the preset's `[sweep]` table, parsed and
//! checked into the list of settings each variant runs.

use serde::{Deserialize, Serialize};

pub use crate::preset::SweepSection;
use crate::preset::VARIANTS;

/// One axis: a preset key and its values (TOML text), for every variant or for one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Axis {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    pub key: String,
    pub values: Vec<String>,
}

/// Why an axis is not accepted.
#[derive(Debug, thiserror::Error)]
#[error("--grid {text}: {message}")]
pub struct AxisError {
    pub text: String,
    pub message: String,
}

/// Keys that are not axes, with what to use instead.
const NOT_AXES: [(&str, &str); 2] = [
    ("train.seed", "use --seeds N"),
    ("variant", "use --variants"),
];

/// Splits `a,[1,2],"x,y"` at the commas outside brackets and quotes.
fn split_values(text: &str) -> Vec<String> {
    let (mut out, mut current, mut depth, mut quoted) = (Vec::new(), String::new(), 0i32, false);
    for c in text.chars() {
        match c {
            '"' => quoted = !quoted,
            '[' | '{' if !quoted => depth += 1,
            ']' | '}' if !quoted => depth -= 1,
            ',' if !quoted && depth == 0 => {
                out.push(std::mem::take(&mut current).trim().to_string());
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    out.push(current.trim().to_string());
    out
}

/// A value as canonical TOML text (`0.10` → `0.1`); text that is not TOML is a string.
fn canonical(raw: &str) -> String {
    toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()))
        .to_string()
}

/// Builds one axis from its name (`KEY` or `VARIANT:KEY`) and values.
pub fn axis(name: &str, values: Vec<String>, variants: &[String]) -> Result<Axis, AxisError> {
    let text = format!("{name}={}", values.join(","));
    let fail = |message: String| AxisError {
        text: text.clone(),
        message,
    };
    let (variant, key) = match name.split_once(':') {
        Some((v, k)) => (Some(v.trim().to_string()), k.trim().to_string()),
        None => (None, name.trim().to_string()),
    };
    if let Some(v) = &variant {
        if !VARIANTS.contains(&v.as_str()) {
            return Err(fail(format!(
                "unknown variant `{v}`; variants are {}",
                VARIANTS.join(", ")
            )));
        }
        if !variants.contains(v) {
            return Err(fail(format!(
                "variant `{v}` is not swept; add it to --variants (now {})",
                variants.join(",")
            )));
        }
    }
    if key.is_empty() || key.split('.').any(str::is_empty) {
        return Err(fail(
            "expected KEY=V1,V2,… with a preset key, e.g. train.learning_rate=0.05,0.1".into(),
        ));
    }
    if let Some((_, instead)) = NOT_AXES.iter().find(|(k, _)| *k == key) {
        return Err(fail(format!("`{key}` cannot be an axis; {instead}")));
    }
    if values.iter().any(|v| v.is_empty()) {
        return Err(fail("an empty value; write KEY=V1,V2,…".into()));
    }
    let values: Vec<String> = values.iter().map(|v| canonical(v)).collect();
    if let Some(v) = values
        .iter()
        .enumerate()
        .find_map(|(i, v)| values[..i].contains(v).then_some(v))
    {
        return Err(fail(format!("the value {v} is given twice")));
    }
    Ok(Axis {
        variant,
        key,
        values,
    })
}

/// Parses `--grid [VARIANT:]KEY=V1,V2,…`.
pub fn parse_grid(text: &str, variants: &[String]) -> Result<Axis, AxisError> {
    let (name, values) = text.split_once('=').ok_or_else(|| AxisError {
        text: text.to_string(),
        message: "expected KEY=V1,V2,…, e.g. train.learning_rate=0.05,0.1".into(),
    })?;
    axis(name, split_values(values), variants)
}

/// The axes of a `[sweep.grid]` table.
pub fn from_table(section: &SweepSection, variants: &[String]) -> Result<Vec<Axis>, AxisError> {
    section
        .grid
        .iter()
        .map(|(name, values)| {
            axis(
                name,
                values.iter().map(|v| v.to_string()).collect(),
                variants,
            )
        })
        .collect()
}

/// Merges command-line axes over the preset's: a command-line axis replaces the preset's axis
/// on the same key and variant; two command-line axes on one key and variant are an error.
pub fn merge(preset: Vec<Axis>, cli: Vec<Axis>) -> Result<Vec<Axis>, AxisError> {
    let same = |a: &Axis, b: &Axis| a.key == b.key && a.variant == b.variant;
    for (i, a) in cli.iter().enumerate() {
        if cli[..i].iter().any(|b| same(a, b)) {
            return Err(AxisError {
                text: format!("{}={}", a.key, a.values.join(",")),
                message:
                    "this key is given twice for the same variants; list all values in one --grid"
                        .into(),
            });
        }
    }
    let mut axes: Vec<Axis> = preset
        .into_iter()
        .filter(|p| !cli.iter().any(|c| same(p, c)))
        .collect();
    axes.extend(cli);
    Ok(axes)
}

/// The axes one variant runs, in order: its own axis on a key replaces the shared one.
pub fn axes_of<'a>(axes: &'a [Axis], variant: &str) -> Vec<&'a Axis> {
    axes.iter()
        .filter(|a| match &a.variant {
            Some(v) => v == variant,
            None => !axes
                .iter()
                .any(|b| b.key == a.key && b.variant.as_deref() == Some(variant)),
        })
        .collect()
}

/// Every combination of the axes' values (the last axis changes fastest); one empty setting
/// when there are no axes.
pub fn settings(axes: &[&Axis]) -> Vec<Vec<(String, String)>> {
    axes.iter().fold(vec![Vec::new()], |acc, axis| {
        acc.iter()
            .flat_map(|prefix| {
                axis.values.iter().map(move |v| {
                    let mut s = prefix.clone();
                    s.push((axis.key.clone(), v.clone()));
                    s
                })
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Vec<String> {
        VARIANTS.iter().map(|v| v.to_string()).collect()
    }

    #[test]
    fn values_split_outside_brackets_and_are_canonical() {
        let a = parse_grid("model.hidden=[256,256],[512]", &all()).unwrap();
        assert_eq!(a.values, ["[256, 256]", "[512]"]);
        let a = parse_grid("abg:train.learning_rate=0.10, 1e-3", &all()).unwrap();
        assert_eq!(a.variant.as_deref(), Some("abg"));
        assert_eq!(a.values, ["0.1", "0.001"]);
    }

    #[test]
    fn bad_axes_are_refused_with_the_fix() {
        let v = vec!["none".to_string()];
        let e = parse_grid("abg:train.learning_rate=0.1", &v).unwrap_err();
        assert!(e.to_string().contains("add it to --variants"), "{e}");
        let e = parse_grid("train.seed=1,2", &v).unwrap_err();
        assert!(e.to_string().contains("--seeds"), "{e}");
        let e = parse_grid("train.learning_rate=0.1,0.1", &v).unwrap_err();
        assert!(e.to_string().contains("twice"), "{e}");
        assert!(parse_grid("train.learning_rate", &v).is_err());
    }

    #[test]
    fn a_variants_own_axis_replaces_the_shared_one() {
        let axes = vec![
            parse_grid("train.learning_rate=0.1,0.2", &all()).unwrap(),
            parse_grid("abg:train.learning_rate=0.4", &all()).unwrap(),
            parse_grid("train.momentum=0.5,0.9", &all()).unwrap(),
        ];
        let keys = |v: &str| -> Vec<String> {
            axes_of(&axes, v)
                .iter()
                .map(|a| format!("{:?}:{}", a.variant, a.key))
                .collect()
        };
        assert_eq!(
            keys("ab"),
            ["None:train.learning_rate", "None:train.momentum"]
        );
        assert_eq!(
            keys("abg"),
            ["Some(\"abg\"):train.learning_rate", "None:train.momentum"]
        );
        assert_eq!(settings(&axes_of(&axes, "ab")).len(), 4);
        assert_eq!(settings(&axes_of(&axes, "abg")).len(), 2);
        assert_eq!(settings(&[]), vec![Vec::<(String, String)>::new()]);
    }
}
