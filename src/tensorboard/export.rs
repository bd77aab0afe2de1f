//! `ltmlp export-tb`: finished or stopped runs, comparisons and sweeps converted from their
//! files (`config.toml` or `run.json`, `metrics.jsonl`, `units.jsonl`, `actions.jsonl`, `summary.json`) into
//! TensorBoard event files, one sub-folder per run and the HParams experiment at the root.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::UNIX_EPOCH;

use anyhow::{bail, Context};
use clap::Args;
use prost_types::value::Kind;

use super::proto::{Experiment, HParamInfo, HParamType, MetricInfo, MetricName, SessionStatus};
use super::writer::EventWriter;
use crate::bounded::{self, FileKind};
use crate::sink::actions::{self, ACTIONS_FILE};
use crate::sink::{run_file, CONFIG_FILE, METRICS_JSONL, SUMMARY_FILE};

/// The per-unit statistics file the run host writes (one record per evaluation).
pub use crate::sink::units::UNITS_JSONL;
/// How deep below a DIR run folders are looked for (a sweep's cells are two levels down).
const MAX_DEPTH: usize = 4;
/// Where the HParams table's metrics are: `summary.json`'s final and best figures.
pub const HPARAMS_METRIC_GROUP: &str = "hparams";

/// `ltmlp export-tb`'s arguments.
#[derive(Debug, Clone, Args)]
pub struct ExportTbArgs {
    /// Run, comparison or sweep folders (every folder below with a metrics.jsonl is a run)
    #[arg(required = true, value_name = "DIR")]
    pub dirs: Vec<PathBuf>,
    /// TensorBoard log folder to write (one sub-folder per run); must not hold an export yet
    #[arg(long, value_name = "LOGDIR", default_value = "tb")]
    pub out: PathBuf,
}

/// One run folder and the name of its sub-folder of the log folder.
#[derive(Debug, Clone, PartialEq)]
pub struct FoundRun {
    pub dir: PathBuf,
    pub name: PathBuf,
}

/// What one run gave the HParams experiment.
struct Exported {
    hparams: HashMap<String, prost_types::Value>,
    metric_tags: Vec<String>,
}

pub fn export_tb_command(args: &ExportTbArgs) -> anyhow::Result<ExitCode> {
    let runs = find_all(&args.dirs)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("{}: cannot create the log folder", args.out.display()))?;
    let mut exported = Vec::new();
    for run in &runs {
        let out = args.out.join(&run.name);
        let (done, notes) = export_run(&run.dir, &out)?;
        crate::say!("{} -> {}", run.dir.display(), out.display());
        for note in notes {
            crate::say!("  note: {note}");
        }
        exported.push(done);
    }
    write_experiment(&args.out, &args.dirs, &exported)?;
    crate::say!(
        "{} run(s) written; view them with: tensorboard --logdir {}",
        runs.len(),
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// The runs in or below every DIR, each named by the DIR's name and its path below it.
pub fn find_all(dirs: &[PathBuf]) -> anyhow::Result<Vec<FoundRun>> {
    let mut runs: Vec<FoundRun> = Vec::new();
    for dir in dirs {
        let meta = std::fs::metadata(dir).with_context(|| {
            format!(
                "{}: cannot open (give a run, comparison or sweep folder)",
                dir.display()
            )
        })?;
        if !meta.is_dir() {
            bail!(
                "{}: not a folder; give a run, comparison or sweep folder",
                dir.display()
            );
        }
        let base = std::fs::canonicalize(dir)
            .ok()
            .and_then(|d| d.file_name().map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("run"));
        let before = runs.len();
        find_below(dir, &base, 0, &mut runs);
        if runs.len() == before {
            bail!(
                "{}: no run folder (one holding {METRICS_JSONL}) in it or up to {MAX_DEPTH} levels below",
                dir.display()
            );
        }
    }
    for (i, run) in runs.iter().enumerate() {
        if let Some(other) = runs[..i].iter().find(|r| r.name == run.name) {
            bail!(
                "{} and {} would both be exported as {}; export them to separate --out folders",
                other.dir.display(),
                run.dir.display(),
                run.name.display()
            );
        }
    }
    Ok(runs)
}

fn find_below(dir: &Path, name: &Path, depth: usize, runs: &mut Vec<FoundRun>) {
    if dir.join(METRICS_JSONL).is_file() {
        runs.push(FoundRun {
            dir: dir.to_path_buf(),
            name: name.to_path_buf(),
        });
        return;
    }
    if depth >= MAX_DEPTH {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut children: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        // Links are not followed: a folder linked into itself would never end.
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect();
    children.sort();
    for child in children {
        if let Some(leaf) = child.file_name() {
            find_below(&child, &name.join(leaf), depth + 1, runs);
        }
    }
}

/// Writes the event file of the run in `dir` into `out` (created; it must not hold events).
fn export_run(dir: &Path, out: &Path) -> anyhow::Result<(Exported, Vec<String>)> {
    let mut notes = Vec::new();
    let (hparams, header_path) = run_settings(dir)?;
    let start = std::fs::metadata(&header_path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0.0, |d| d.as_secs_f64());
    let records = read_jsonl(&dir.join(METRICS_JSONL), FileKind::Metrics)?;
    let summary_path = dir.join(SUMMARY_FILE);
    let summary = match bounded::read_text(&summary_path, FileKind::Summary) {
        Ok(text) => Some(
            serde_json::from_str::<serde_json::Value>(&text).map_err(|e| {
                anyhow::anyhow!(
                    "{}: not a run summary ({e}); restore it, or move it away to export without \
                 the final and best figures",
                    summary_path.display()
                )
            })?,
        ),
        Err(e) if e.is_not_found() => {
            notes.push(format!(
                "no {SUMMARY_FILE} (a run still training, or killed): no final or best figures"
            ));
            None
        }
        Err(e) => return Err(e.into()),
    };

    if out.exists() && has_event_file(out) {
        bail!(
            "{}: holds an export already; choose another --out or remove it",
            out.display()
        );
    }
    std::fs::create_dir_all(out).with_context(|| format!("{}: cannot create", out.display()))?;
    let mut writer = EventWriter::create(out, start)
        .with_context(|| format!("{}: cannot write", out.display()))?;
    let written = |e: std::io::Error| anyhow::anyhow!("{}: cannot write ({e})", out.display());

    let mut wall_of_epoch = BTreeMap::new();
    for record in &records {
        let epoch = record.epoch;
        let wall = start + record.value["elapsed_seconds"].as_f64().unwrap_or(0.0);
        wall_of_epoch.insert(epoch, wall);
        write_scalars(&mut writer, &record.value, epoch, wall).map_err(written)?;
    }

    let units_path = dir.join(UNITS_JSONL);
    if units_path.is_file() {
        for record in read_jsonl(&units_path, FileKind::Metrics)? {
            let wall = wall_of_epoch.get(&record.epoch).copied().unwrap_or(start);
            write_histograms(&mut writer, &record.value, record.epoch, wall).map_err(written)?;
        }
    } else {
        notes.push(format!(
            "no {UNITS_JSONL} (written by newer runs): no unit histograms"
        ));
    }

    let steering = actions::read(dir).map_err(|e| anyhow::anyhow!("{e}"))?;
    for steer in &steering {
        write_action(&mut writer, steer, start).map_err(written)?;
    }
    if steering.is_empty() && !dir.join(ACTIONS_FILE).is_file() {
        notes.push(format!("no {ACTIONS_FILE}: no steering actions"));
    }

    let mut metric_tags = Vec::new();
    if let Some(summary) = &summary {
        let last = records.last().map_or(0, |r| r.epoch);
        metric_tags = write_end(&mut writer, start, &hparams, summary, last).map_err(written)?;
    } else {
        writer
            .session_start(start, hparams.clone(), "")
            .map_err(written)?;
    }
    Ok((
        Exported {
            hparams,
            metric_tags,
        },
        notes,
    ))
}

/// The text tag of the steering actions.
pub const ACTIONS_TAG: &str = "steering/actions";

/// One evaluation's scalars ([`scalars`] of its `metrics.jsonl` record) at step `epoch`.
pub fn write_scalars(
    writer: &mut EventWriter,
    record: &serde_json::Value,
    epoch: i64,
    wall: f64,
) -> std::io::Result<()> {
    for (tag, x) in scalars(record) {
        writer.scalar(&tag, epoch, wall, x)?;
    }
    Ok(())
}

/// One evaluation's per-unit histograms ([`unit_series`] of its `units.jsonl` record).
pub fn write_histograms(
    writer: &mut EventWriter,
    units: &serde_json::Value,
    epoch: i64,
    wall: f64,
) -> std::io::Result<()> {
    for (tag, values) in unit_series(units) {
        writer.histogram(&tag, epoch, wall, &values)?;
    }
    Ok(())
}

/// One steering action as text, at its iteration.
pub fn write_action(
    writer: &mut EventWriter,
    steer: &crate::protocol::Steer,
    wall: f64,
) -> std::io::Result<()> {
    let step = i64::try_from(steer.iteration).unwrap_or(i64::MAX);
    writer.text(ACTIONS_TAG, step, wall, &action_text(steer))
}

/// The run's end: the HParams session start (its settings), the summary's final and best
/// figures at the last epoch, and the session end; the figures' tags.
pub fn write_end(
    writer: &mut EventWriter,
    start: f64,
    hparams: &HashMap<String, prost_types::Value>,
    summary: &serde_json::Value,
    last_epoch: i64,
) -> std::io::Result<Vec<String>> {
    writer.session_start(start, hparams.clone(), "")?;
    let end = start + summary["wall_seconds"].as_f64().unwrap_or(0.0);
    let mut metric_tags = Vec::new();
    for (key, x) in summary_figures(summary) {
        let tag = format!("{HPARAMS_METRIC_GROUP}/{key}");
        writer.scalar(&tag, last_epoch, end, x)?;
        metric_tags.push(tag);
    }
    let status = match summary["state"].as_str() {
        Some("finished") => SessionStatus::Success,
        Some("diverged") => SessionStatus::Failure,
        _ => SessionStatus::Unknown,
    };
    writer.session_end(end, status)?;
    Ok(metric_tags)
}

fn action_text(steer: &crate::protocol::Steer) -> String {
    let command = serde_json::to_string(&steer.command).unwrap_or_default();
    let outcome = if steer.ok { "done" } else { "refused" };
    format!(
        "iteration {}: `{command}` {outcome}: {}",
        steer.iteration, steer.message
    )
}

fn has_event_file(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries
            .filter_map(Result::ok)
            .any(|e| e.file_name().to_string_lossy().contains("tfevents"))
    })
}

/// One whole line of a JSON-lines file, with the epoch it belongs to.
struct JsonRecord {
    epoch: i64,
    value: serde_json::Value,
}

/// The whole records of `path` (a torn last line, a write cut short, is left out); a line
/// that is not a JSON object with an `epoch` is an error naming the file and the line.
fn read_jsonl(path: &Path, kind: FileKind) -> anyhow::Result<Vec<JsonRecord>> {
    let text = bounded::read_text(path, kind)?;
    let mut records = Vec::new();
    for (n, line) in text.split_inclusive('\n').enumerate() {
        if !line.ends_with('\n') {
            break;
        }
        let damaged = |reason: String| {
            anyhow::anyhow!(
                "{}:{}: not a record ({reason}); the file was edited or damaged: restore it, \
                 or move the run away to export the others",
                path.display(),
                n + 1
            )
        };
        let value: serde_json::Value =
            serde_json::from_str(line).map_err(|e| damaged(e.to_string()))?;
        let epoch = value["epoch"]
            .as_i64()
            .ok_or_else(|| damaged("no whole-number `epoch`".into()))?;
        records.push(JsonRecord { epoch, value });
    }
    Ok(records)
}

/// The scalars of one `metrics.jsonl` record, every number it holds except the epoch (the
/// step): top-level numbers as `metrics/KEY`, numbers in objects as `KEY/LEAF` (`wall/steps`),
/// each layer's as `layerN/KEY` (`layer1/alpha_min`). Lists other than `layers` (transform
/// events, confusion matrices), text, flags and nulls (NaN) are left out.
pub fn scalars(record: &serde_json::Value) -> Vec<(String, f64)> {
    let mut out = Vec::new();
    let Some(fields) = record.as_object() else {
        return out;
    };
    for (key, value) in fields {
        match (key.as_str(), value) {
            ("epoch", _) => {}
            ("layers", serde_json::Value::Array(layers)) => {
                for layer in layers {
                    let n = layer["layer"].as_u64().unwrap_or(0);
                    if let Some(stats) = layer.as_object() {
                        for (k, v) in stats.iter().filter(|(k, _)| k.as_str() != "layer") {
                            numbers(&format!("layer{n}/{k}"), v, &mut out);
                        }
                    }
                }
            }
            (_, serde_json::Value::Number(_)) => {
                numbers(&format!("metrics/{key}"), value, &mut out)
            }
            (_, serde_json::Value::Object(inner)) => {
                for (k, v) in inner {
                    numbers(&format!("{key}/{k}"), v, &mut out);
                }
            }
            _ => {}
        }
    }
    out
}

/// The numbers in `value`, nested names joined with `_`.
fn numbers(name: &str, value: &serde_json::Value, out: &mut Vec<(String, f64)>) {
    match value {
        serde_json::Value::Number(x) => {
            if let Some(x) = x.as_f64() {
                out.push((name.to_string(), x));
            }
        }
        serde_json::Value::Object(inner) => {
            for (k, v) in inner {
                numbers(&format!("{name}_{k}"), v, out);
            }
        }
        _ => {}
    }
}

/// The per-unit series of one `units.jsonl` record: `layerN/units/FIELD` for every list of
/// numbers (output std, slope, α, β, γ, …); the lists of marks (saturated, collapsed) are
/// left out, the layer scalars hold their shares.
pub fn unit_series(record: &serde_json::Value) -> Vec<(String, Vec<f64>)> {
    let mut out = Vec::new();
    for layer in record["layers"].as_array().into_iter().flatten() {
        let n = layer["layer"].as_u64().unwrap_or(0);
        for (field, list) in layer["units"].as_object().into_iter().flatten() {
            let Some(list) = list.as_array() else {
                continue;
            };
            if !list.iter().any(serde_json::Value::is_number) {
                continue;
            }
            // A null is a unit with nothing measured (NaN); the histogram skips it.
            let values = list
                .iter()
                .map(|v| v.as_f64().unwrap_or(f64::NAN))
                .collect();
            out.push((format!("layer{n}/units/{field}"), values));
        }
    }
    out
}

/// The run's settings as HParams, and the file they come from: `config.toml` (a run ltmlp
/// trained), else `run.json`'s flat map (a run another trainer trained has no `config.toml`).
pub fn run_settings(dir: &Path) -> anyhow::Result<(HashMap<String, prost_types::Value>, PathBuf)> {
    let config_path = dir.join(CONFIG_FILE);
    if !config_path.exists() {
        if let Some(header) = run_file::read(dir).map_err(|e| anyhow::anyhow!("{e}"))? {
            return Ok((
                hparams_of_settings(&header.settings),
                dir.join(run_file::RUN_FILE),
            ));
        }
    }
    let config_text = bounded::read_text(&config_path, FileKind::Config)?;
    let config: toml::Table = toml::from_str(&config_text).map_err(|e| {
        anyhow::anyhow!(
            "{}: not a run configuration ({}); restore the run's config.toml",
            config_path.display(),
            e.message()
        )
    })?;
    Ok((hparams_of(&config), config_path))
}

/// `run.json`'s settings as HParams: numbers, flags and text as themselves, `null` left out,
/// lists as their JSON text.
pub fn hparams_of_settings(
    settings: &BTreeMap<String, serde_json::Value>,
) -> HashMap<String, prost_types::Value> {
    settings
        .iter()
        .filter_map(|(key, value)| {
            let kind = match value {
                serde_json::Value::Null => return None,
                serde_json::Value::Bool(b) => Kind::BoolValue(*b),
                serde_json::Value::Number(n) => Kind::NumberValue(n.as_f64()?),
                serde_json::Value::String(s) => Kind::StringValue(s.clone()),
                other => Kind::StringValue(other.to_string()),
            };
            Some((key.clone(), prost_types::Value { kind: Some(kind) }))
        })
        .collect()
}

/// Every setting of `config.toml`, flattened to `section.key`: numbers, flags and text as
/// they are, lists and tables as their TOML text.
pub fn hparams_of(config: &toml::Table) -> HashMap<String, prost_types::Value> {
    let mut out = HashMap::new();
    flatten_toml("", config, &mut out);
    out
}

fn flatten_toml(prefix: &str, table: &toml::Table, out: &mut HashMap<String, prost_types::Value>) {
    for (key, value) in table {
        let name = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        let kind = match value {
            toml::Value::Table(inner) => {
                flatten_toml(&name, inner, out);
                continue;
            }
            toml::Value::Integer(i) => Kind::NumberValue(*i as f64),
            toml::Value::Float(x) => Kind::NumberValue(*x),
            toml::Value::Boolean(b) => Kind::BoolValue(*b),
            toml::Value::String(s) => Kind::StringValue(s.clone()),
            other => Kind::StringValue(other.to_string()),
        };
        out.insert(name, prost_types::Value { kind: Some(kind) });
    }
}

/// `summary.json`'s final and best figures (`final_*`, `best_*`, `*_at_best`), by key.
pub fn summary_figures(summary: &serde_json::Value) -> Vec<(String, f64)> {
    summary
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, _)| {
            k.starts_with("final_") || k.starts_with("best_") || k.ends_with("_at_best")
        })
        .filter_map(|(k, v)| Some((k.clone(), v.as_f64()?)))
        .collect()
}

/// The HParams experiment at the log folder's root: every setting (marked when it differs
/// between the runs) and every figure as the table's columns.
fn write_experiment(logdir: &Path, dirs: &[PathBuf], runs: &[Exported]) -> anyhow::Result<()> {
    if has_event_file(logdir) {
        bail!(
            "{}: holds an export already; choose another --out or remove it",
            logdir.display()
        );
    }
    let mut names: BTreeMap<&str, Vec<&prost_types::Value>> = BTreeMap::new();
    for run in runs {
        for (name, value) in &run.hparams {
            names.entry(name).or_default().push(value);
        }
    }
    let hparam_infos = names
        .iter()
        .map(|(name, values)| HParamInfo {
            name: name.to_string(),
            r#type: match values[0].kind {
                Some(Kind::NumberValue(_)) => HParamType::Float64,
                Some(Kind::BoolValue(_)) => HParamType::Bool,
                _ => HParamType::String,
            } as i32,
            differs: values.len() < runs.len() || values.iter().any(|v| *v != values[0]),
        })
        .collect();
    let mut tags: Vec<&String> = runs.iter().flat_map(|r| &r.metric_tags).collect();
    tags.sort();
    tags.dedup();
    let metric_infos = tags
        .into_iter()
        .map(|tag| MetricInfo {
            name: Some(MetricName {
                group: String::new(),
                tag: tag.clone(),
            }),
        })
        .collect();
    let now = std::time::SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let description = format!(
        "ltmlp export-tb of {}",
        dirs.iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let written = |e: std::io::Error| anyhow::anyhow!("{}: cannot write ({e})", logdir.display());
    let mut writer = EventWriter::create(logdir, now).map_err(written)?;
    writer
        .experiment(
            now,
            Experiment {
                description,
                time_created_secs: now,
                hparam_infos,
                metric_infos,
            },
        )
        .map_err(written)
}
