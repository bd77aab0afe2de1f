//! docs/protocol.md against the code it specifies: the live-settings table is the list in
//! `src/train/tunables.rs`, key for key and in order.

use ltmlp::train::tunables::LIVE_KEYS;

const SPEC: &str = include_str!("../docs/protocol.md");

/// The rows of the table between the `live-settings` markers, as (key, what it does).
fn documented_live_settings() -> Vec<(String, String)> {
    let begin = SPEC
        .find("<!-- live-settings: begin -->")
        .expect("docs/protocol.md marks its live-settings table");
    let end = SPEC[begin..]
        .find("<!-- live-settings: end -->")
        .expect("the live-settings table has an end marker")
        + begin;
    SPEC[begin..end]
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.trim().trim_matches('|').split(" | ").collect();
            let key = cells.first()?.trim().strip_prefix('`')?.strip_suffix('`')?;
            Some((key.to_string(), cells.get(1)?.trim().to_string()))
        })
        .collect()
}

#[test]
fn the_live_settings_table_is_the_code_s_list() {
    let expected: Vec<(String, String)> = LIVE_KEYS
        .iter()
        .map(|k| (k.key.to_string(), k.about.to_string()))
        .collect();
    let table: String = expected
        .iter()
        .map(|(k, about)| format!("| `{k}` | {about} |\n"))
        .collect();
    assert_eq!(
        documented_live_settings(),
        expected,
        "docs/protocol.md's live settings differ from LIVE_KEYS; the table should read:\n{table}"
    );
}
