//! Edits of a preset as a TOML table: `--set key=value` overrides, a variant's settings merged
//! over the rest, and the table read back as a [`Preset`].

use super::Preset;

pub(super) fn deserialize(table: &toml::Table) -> Result<Preset, String> {
    toml::Value::Table(table.clone())
        .try_into()
        .map_err(|e: toml::de::Error| e.message().to_string())
}

/// Recursively merges `extra` into `base`; tables merge, other values replace.
pub(super) fn merge(base: &mut toml::Table, extra: &toml::Table) {
    for (key, value) in extra {
        match (base.get_mut(key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(e)) => merge(b, e),
            _ => {
                base.insert(key.clone(), value.clone());
            }
        }
    }
}

/// Applies `a.b.c=value`; the value is read as TOML, or as a string if it is not valid TOML.
pub fn apply_override(table: &mut toml::Table, item: &str) -> Result<(), String> {
    let (key, raw) = item
        .split_once('=')
        .ok_or_else(|| "expected KEY=VALUE, e.g. train.learning_rate=0.1".to_string())?;
    let key = key.trim();
    let raw = raw.trim();
    let value = toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()));
    let parts: Vec<&str> = key.split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(format!(
            "`{key}` is not a key; write section.key, e.g. train.epochs"
        ));
    }
    let mut node = table;
    for part in &parts[..parts.len() - 1] {
        let entry = node
            .entry(part.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        node = match entry {
            toml::Value::Table(t) => t,
            _ => return Err(format!("`{part}` is a value, not a section")),
        };
    }
    node.insert(parts[parts.len() - 1].to_string(), value);
    Ok(())
}

/// Whether a variant's table sets the dotted `key` (`model.hidden`).
pub(super) fn sets_key(table: &toml::Table, key: &str) -> bool {
    match key.split_once('.') {
        _ if table.contains_key(key) => true,
        Some((section, rest)) => match table.get(section) {
            Some(toml::Value::Table(inner)) => sets_key(inner, rest),
            _ => false,
        },
        None => false,
    }
}
