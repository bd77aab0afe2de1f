//! Property-based fuzzing of every reader of outside bytes: the IDX reader, the preset parser,
//! the checkpoint loader and the metrics log a resume continues must answer any input with a
//! value or an error, never a panic.
//! `PROPTEST_CASES=100000 cargo test --release --test fuzz` runs a longer campaign.

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
        let kept = ltmlp::sink::Recorder::resume(lock, true, lines, None);
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
