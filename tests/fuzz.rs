//! Property-based fuzzing of every reader of outside bytes: the IDX reader (raw and gzip), the
//! NumPy `.npy` / `.npz`, CSV and CIFAR-10 loaders, the preset parser, the checkpoint loader,
//! the metrics log (a resume's and a report's), the sweep plan, the action log and the control
//! protocol's decoder must answer any input with a value or an error, never a panic, and
//! compressed data is never inflated past its header's promise.
//! The long campaign (docs/reliability.md): `PROPTEST_CASES=100000 cargo test --release --test
//! fuzz`, and `PROPTEST_CASES=400000` for the four data loaders, which run a quarter of the cases.

use std::path::Path;

use ltmlp::data::idx;
use ltmlp::preset::PresetFile;
use ltmlp::train::checkpoint;
use proptest::prelude::*;

/// Cases per property in the default test run (CI); the environment can raise it.
const CASES: u32 = 2_000;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(CASES),
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// A valid IDX image file, then damaged in a few random places.
fn damaged_idx() -> impl Strategy<Value = Vec<u8>> {
    (
        1usize..4,
        1usize..5,
        1usize..5,
        prop::collection::vec((any::<usize>(), any::<u8>()), 0..6),
        any::<usize>(),
    )
        .prop_map(|(count, rows, cols, flips, cut)| {
            let images = idx::IdxImages {
                count,
                rows,
                cols,
                pixels: vec![7; count * rows * cols],
            };
            let mut bytes = idx::encode_images(&images);
            for (at, value) in flips {
                let i = at % bytes.len();
                bytes[i] = value;
            }
            let keep = cut % (bytes.len() + 1);
            bytes.truncate(keep.max(bytes.len() / 2));
            bytes
        })
}

/// A preset-like TOML text assembled from known keys and arbitrary values.
fn preset_text() -> impl Strategy<Value = String> {
    let key = prop::sample::select(vec![
        "train.epochs",
        "train.batch_size",
        "train.learning_rate",
        "train.momentum",
        "model.hidden",
        "model.shortcuts",
        "model.task",
        "model.bottleneck",
        "model.linear",
        "data.downsample",
        "data.validation_size",
        "transforms.policy",
        "transforms.gamma_epsilon",
        "variant",
        "name",
        "stats.every",
        "compare.target_error",
        "bogus.key",
    ]);
    let value = prop::sample::select(vec![
        "0",
        "1",
        "-1",
        "1e308",
        "nan",
        "inf",
        "\"all\"",
        "\"abg\"",
        "[]",
        "[0]",
        "[16, 0]",
        "[100000000]",
        "true",
        "\"x\"",
        "0.5",
        "{}",
        "[[1]]",
        "18446744073709551615",
    ]);
    prop::collection::vec((key, value), 0..8).prop_map(|pairs| {
        let mut text = String::from("name = \"fuzz\"\n[model]\ntask = \"classify\"\nhidden = [4]\n[train]\nepochs = 1\nbatch_size = 2\nlearning_rate = 0.1\n");
        for (k, v) in pairs {
            let (section, key) = k.split_once('.').unwrap_or(("", k));
            if section.is_empty() {
                text = format!("{key} = {v}\n{text}");
            } else {
                text.push_str(&format!("[variants.abg]\n{section}.{key} = {v}\n"));
            }
        }
        text
    })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn idx_reader_never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let _ = idx::parse_images(Path::new("fuzz"), bytes.clone());
        let _ = idx::parse_labels(Path::new("fuzz"), bytes);
    }

    #[test]
    fn idx_reader_never_panics_on_damaged_files(bytes in damaged_idx()) {
        let _ = idx::parse_images(Path::new("fuzz"), bytes.clone());
        let _ = idx::parse_images(Path::new("fuzz.gz"), idx::gzip(&bytes));
    }

    #[test]
    fn idx_reader_never_panics_on_damaged_gzip(bytes in damaged_idx(), cut in any::<usize>(), flip in any::<usize>()) {
        let mut gz = idx::gzip(&bytes);
        let i = flip % gz.len();
        gz[i] ^= 0x5a;
        gz.truncate(cut % (gz.len() + 1));
        let _ = idx::parse_images(Path::new("fuzz.gz"), gz);
    }

    #[test]
    fn preset_parser_never_panics(text in preset_text()) {
        if let Ok(file) = PresetFile::parse(Path::new("fuzz.toml"), text) {
            for variant in [None, Some("none"), Some("ab"), Some("abg")] {
                let _ = file.resolve(variant, &["train.epochs=2".into()]);
            }
        }
    }

    #[test]
    fn preset_parser_never_panics_on_arbitrary_text(text in "\\PC{0,200}") {
        let _ = PresetFile::parse(Path::new("fuzz.toml"), text);
    }

    #[test]
    fn checkpoint_loader_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = checkpoint::decode(Path::new("fuzz"), &bytes);
    }

    #[test]
    fn checkpoint_loader_never_panics_behind_a_valid_header(payload in prop::collection::vec(any::<u8>(), 0..512)) {
        // A correct header and checksum, so the payload decoder itself is exercised.
        let mut bytes = b"LTMLPCKP".to_vec();
        bytes.extend_from_slice(&checkpoint::FORMAT_VERSION.to_le_bytes());
        bytes.extend_from_slice(&(payload.len() as u64).to_le_bytes());
        bytes.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
        bytes.extend_from_slice(&payload);
        let _ = checkpoint::decode(Path::new("fuzz"), &bytes);
    }

    #[test]
    fn metrics_resume_never_panics(text in "(\\{\"epoch\":[0-9]{1,2}[^\n]{0,40}\\}\n|[^\n]{0,30}\n?){0,5}", lines in 0usize..5) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(ltmlp::sink::CONFIG_FILE), "").unwrap();
        std::fs::write(dir.path().join(ltmlp::sink::METRICS_JSONL), &text).unwrap();
        let lock = ltmlp::sink::claim_existing(dir.path()).unwrap();
        let kept = ltmlp::sink::Recorder::resume(lock, lines, None);
        // Whatever it answers, the records already written are never shortened.
        let after = std::fs::read_to_string(dir.path().join(ltmlp::sink::METRICS_JSONL)).unwrap();
        let aside = std::fs::read_to_string(dir.path().join("metrics.jsonl.after-checkpoint")).unwrap_or_default();
        prop_assert_eq!(format!("{after}{aside}"), text.clone());
        if kept.is_ok() {
            prop_assert_eq!(after.lines().count(), lines);
        }
    }
}

/// Damages valid bytes in a few random places and cuts them at a random length.
fn damaged(valid: Vec<u8>) -> impl Strategy<Value = Vec<u8>> {
    (
        prop::collection::vec((any::<usize>(), any::<u8>()), 0..6),
        any::<usize>(),
    )
        .prop_map(move |(flips, cut)| {
            let mut bytes = valid.clone();
            for (at, v) in flips {
                let n = bytes.len();
                bytes[at % n] = v;
            }
            bytes.truncate(cut % (bytes.len() + 1));
            bytes
        })
}

/// Fewer cases for the slower loaders (a zip archive or a CSV parse per case).
fn light() -> ProptestConfig {
    ProptestConfig {
        cases: config().cases / 4,
        ..config()
    }
}

proptest! {
    #![proptest_config(light())]

    #[test]
    fn npy_never_panics(bytes in damaged(ltmlp::data::npy::encode_f32(&[2, 3], &[1.5; 6]))) {
        let _ = ltmlp::data::npy::parse(Path::new("fuzz.npy"), "x", &bytes);
    }

    #[test]
    fn npz_never_panics(bytes in damaged({
        let a = ltmlp::data::npy::encode_i64(&[3], &[1, 2, 3]);
        let cursor = ltmlp::data::npy::write_npz(std::io::Cursor::new(Vec::new()), &[("y_train".into(), a)]).unwrap();
        cursor.into_inner()
    })) {
        if let Ok(mut npz) = ltmlp::data::npy::Npz::new(Path::new("fuzz.npz"), std::io::Cursor::new(bytes)) {
            let _ = npz.array("y_train", "y_train");
        }
    }

    #[test]
    fn csv_never_panics(bytes in damaged(b"a,b,label\n1,2,3\n4.5,-6,7\n8,9,1\n".to_vec())) {
        let _ = ltmlp::data::csvfile::parse(Path::new("fuzz.csv"), &bytes, &Default::default());
    }

    #[test]
    fn cifar_never_panics(bytes in damaged(vec![3; 3 * 3073])) {
        let mut split = ltmlp::data::cifar::CifarSplit::default();
        let _ = ltmlp::data::cifar::parse_into(Path::new("fuzz.bin"), &bytes, &mut split);
    }
}

proptest! {
    #![proptest_config(config())]

    /// The control endpoint's decoder (docs/protocol.md) on damaged valid messages and on
    /// arbitrary bytes: an error or a request, never a panic; what it accepts re-encodes to a
    /// request that decodes the same.
    #[test]
    fn protocol_decoder_never_panics(bytes in prop_oneof![
        damaged(br#"{"command":{"set":{"key":"train.momentum","value":"0.95"}}}"#.to_vec()),
        damaged(br#"{"hello":{"version":1,"role":"viewer"}}"#.to_vec()),
        damaged(br#"{"command":{"toggle":"alpha"}}"#.to_vec()),
        prop::collection::vec(any::<u8>(), 0..80),
    ]) {
        use ltmlp::remote::wire;
        if let Ok(request) = wire::decode_request(&bytes) {
            let line = wire::encode(&request);
            prop_assert_eq!(wire::decode_request(line.trim_end().as_bytes()).unwrap(), request);
        }
        let mut reader = std::io::BufReader::new(&bytes[..]);
        let mut line = Vec::new();
        while let Ok(true) = wire::read_line(&mut reader, 16, &mut line) {
            prop_assert!(line.len() <= 16);
        }
    }
}

/// A real `plan.json` (two cells of `presets/tiny.toml`), written by `ltmlp sweep`.
const PLAN: &str = include_str!("fixtures/plan.json");

/// An action log of two steering actions, a resume and a torn last line.
const ACTIONS: &str = concat!(
    r#"{"steer":{"iteration":120,"command":{"set_learning_rate":0.05},"ok":true,"message":"learning rate → 0.05"}}"#,
    "\n",
    r#"{"steer":{"iteration":300,"command":{"toggle":"alpha"},"ok":false,"message":"refused"}}"#,
    "\n",
    r#"{"resumed_at":200}"#,
    "\n",
    r#"{"steer":{"iteration":2"#,
);

proptest! {
    #![proptest_config(config())]

    /// The sweep plan a `run-job` or `report` reads: damaged real plans and arbitrary text.
    #[test]
    fn plan_parser_never_panics(bytes in prop_oneof![
        damaged(PLAN.as_bytes().to_vec()),
        prop::collection::vec(any::<u8>(), 0..200),
    ]) {
        let text = String::from_utf8_lossy(&bytes);
        if let Ok(plan) = ltmlp::sweep::plan::Plan::parse("fuzz/plan.json".into(), &text) {
            for cell in &plan.cells {
                let _ = cell.resolve(Path::new("fuzz"));
            }
        }
    }

    /// The action log a resume and a replay read: whatever it answers, the actions it keeps
    /// are in the file's order of iterations up to every resume point.
    #[test]
    fn action_log_parser_never_panics(bytes in prop_oneof![
        damaged(ACTIONS.as_bytes().to_vec()),
        prop::collection::vec(any::<u8>(), 0..120),
    ]) {
        let text = String::from_utf8_lossy(&bytes);
        if let Ok(actions) = ltmlp::sink::actions::parse(&text) {
            prop_assert!(actions.len() <= text.lines().count());
        }
    }

    /// The metrics log a report and `watch` read (any text: an error or records).
    #[test]
    fn report_metrics_parser_never_panics(text in "(\\{\"epoch\":[0-9]{1,2}[^\n]{0,40}\\}\n|[^\n]{0,30}\n?){0,5}") {
        let _ = ltmlp::compare::runs::parse_metrics(&text);
    }

    /// A gzip IDX file with bytes after its stream (appended garbage or a second member) is
    /// refused, whatever the bytes.
    #[test]
    fn idx_gzip_with_anything_after_its_stream_is_refused(
        labels in prop::collection::vec(0u8..10, 1..40),
        after in prop::collection::vec(any::<u8>(), 1..40),
        second_member in any::<bool>(),
    ) {
        let mut gz = idx::gzip(&idx::encode_labels(&labels));
        gz.extend(if second_member { idx::gzip(&after) } else { after });
        prop_assert!(idx::parse_labels(Path::new("fuzz.gz"), gz).is_err());
    }
}

/// A `.npz` whose `x` member's header promises `promised` float64 values but whose data runs
/// `extra` bytes longer (0: exactly as promised), deflated.
fn npz_with_member(promised: usize, extra: usize) -> Vec<u8> {
    use std::io::Write;
    let mut member = ltmlp::data::npy::encode_f64(&[promised], &vec![0.5; promised]);
    member.extend(std::iter::repeat_n(0u8, extra));
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    zip.start_file("x.npy", options).unwrap();
    zip.write_all(&member).unwrap();
    zip.finish().unwrap().into_inner()
}

proptest! {
    #![proptest_config(light())]

    /// An `.npz` member is read as far as its header promises and no further: one that
    /// inflates past it is refused, one that holds exactly that is read whole.
    #[test]
    fn npz_members_are_inflated_only_as_far_as_promised(promised in 0usize..64, extra in 0usize..4096) {
        let bytes = npz_with_member(promised, extra);
        let mut npz = ltmlp::data::npy::Npz::new(Path::new("fuzz.npz"), std::io::Cursor::new(bytes)).unwrap();
        let read = npz.array("x", "x_train");
        if extra == 0 {
            prop_assert_eq!(read.unwrap().len(), promised);
        } else {
            let message = read.unwrap_err().to_string();
            prop_assert!(message.contains("inflates past"), "{}", message);
        }
    }
}

/// The seeds the properties damage are valid to begin with, so that damage starts from inputs
/// the parsers accept.
#[test]
fn the_fuzz_seeds_are_valid() {
    let plan = ltmlp::sweep::plan::Plan::parse("fixtures/plan.json".into(), PLAN).unwrap();
    assert_eq!(plan.cells.len(), 2);
    // The resume at 200 drops the action at 300; the torn last line is ignored.
    let actions = ltmlp::sink::actions::parse(ACTIONS).unwrap();
    assert_eq!(actions.len(), 1);
    assert_eq!(actions[0].iteration, 120);
}
