//! Where a key is written in preset text: the lines that messages point at.

/// The 1-based line of a byte offset (where the TOML parser stopped).
pub(super) fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// The first line that starts with `needle` (a section header).
pub(super) fn find_line(text: &str, needle: &str) -> Option<usize> {
    text.lines()
        .position(|l| l.trim_start().starts_with(needle))
        .map(|i| i + 1)
}

/// The line of `section.key = …` in preset text, if it is written there.
pub(super) fn locate_key(text: &str, dotted: &str) -> Option<usize> {
    let (section, key) = dotted.rsplit_once('.').unwrap_or(("", dotted));
    if key.is_empty() {
        return None;
    }
    let mut current = String::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if let Some(header) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = header.trim().to_string();
            continue;
        }
        if current == section {
            if let Some((k, _)) = line.split_once('=') {
                if k.trim() == key {
                    return Some(i + 1);
                }
            }
        }
    }
    None
}

/// Whether a preset or run configuration's text sets `transforms.gamma_control` itself.
pub(super) fn sets_gamma_control(text: &str) -> bool {
    toml::from_str::<toml::Table>(text).is_ok_and(|table| {
        table
            .get("transforms")
            .and_then(toml::Value::as_table)
            .is_some_and(|t| t.contains_key("gamma_control"))
    })
}
