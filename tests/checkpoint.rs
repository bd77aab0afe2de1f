//! Never losing a run: checkpoint round trips, exact resume equivalence (in-process and across a
//! real SIGINT or SIGKILL), and damaged checkpoints rejected with a clear message.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ltmlp::data::{self, DataSource};
use ltmlp::net::Network;
use ltmlp::preset::PresetFile;
use ltmlp::train::checkpoint::{self, AnyState, Checkpoint};
use ltmlp::train::{AnyData, Experiment, SessionOptions, Trainer};
use serde_json::Value;

const SMALL: [&str; 6] = [
    "--set",
    "model.hidden=[24]",
    "--set",
    "data.train_limit=2500",
    "--set",
    "data.validation_size=500",
];

fn ltmlp(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ltmlp"));
    cmd.args(args).current_dir(env!("CARGO_MANIFEST_DIR"));
    // A run keeps a signal it was started ignoring, and a background job of a non-interactive
    // shell (`bash .ci/run &`) starts with SIGINT ignored: give the child the default, so that
    // the SIGINT test does not depend on how the suite was launched.
    // SAFETY: signal() is async-signal-safe, as pre_exec requires.
    unsafe {
        cmd.pre_exec(|| {
            libc::signal(libc::SIGINT, libc::SIG_DFL);
            Ok(())
        });
    }
    cmd
}

fn run_args<'a>(out: &'a str, epochs: &'a str) -> Vec<&'a str> {
    let mut args = vec![
        "run",
        "presets/default.toml",
        "--variant",
        "abg",
        "--out",
        out,
        "--set",
        epochs,
    ];
    args.extend(SMALL);
    args
}

fn metrics(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| {
            let mut v: Value = serde_json::from_str(l).unwrap();
            v.as_object_mut().unwrap().remove("elapsed_seconds");
            v.as_object_mut().unwrap().remove("wall");
            v.as_object_mut().unwrap().remove("examples_per_second");
            v
        })
        .collect()
}

fn uninterrupted(epochs: &str) -> (tempfile::TempDir, Vec<Value>) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap().to_string();
    let status = ltmlp(&run_args(&out, epochs))
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let m = metrics(dir.path());
    (dir, m)
}

/// Waits until the run has written `lines` evaluations.
fn wait_for_lines(child: &mut Child, dir: &Path, lines: usize) {
    let started = Instant::now();
    loop {
        let n = std::fs::read_to_string(dir.join("metrics.jsonl")).map_or(0, |t| t.lines().count());
        if n >= lines {
            return;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before it could be interrupted"
        );
        assert!(started.elapsed() < Duration::from_secs(120), "no progress");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn kill(child: &Child, signal: &str) {
    let status = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

fn resume(dir: &Path) {
    let out = ltmlp(&["run", "--resume", dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn sigint_saves_exits_130_and_the_resumed_run_matches_an_uninterrupted_one() {
    let epochs = "train.epochs=12";
    let (_keep, expected) = uninterrupted(epochs);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap().to_string();
    let mut child = ltmlp(&run_args(&out, epochs))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_lines(&mut child, dir.path(), 2);
    kill(&child, "-INT");
    let output = child.wait_with_output().unwrap();
    assert_eq!(
        output.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("summary.json")).unwrap())
            .unwrap();
    assert_eq!(summary["state"], "stopped");
    assert!(summary["reason"].as_str().unwrap().contains("SIGINT"));
    assert!(metrics(dir.path()).len() < expected.len());
    resume(dir.path());
    assert_eq!(metrics(dir.path()), expected);
}

#[test]
fn after_sigkill_the_run_resumes_from_its_last_checkpoint_to_the_same_end() {
    let epochs = "train.epochs=12";
    let (_keep, expected) = uninterrupted(epochs);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap().to_string();
    let mut child = ltmlp(&run_args(&out, epochs))
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_lines(&mut child, dir.path(), 3);
    kill(&child, "-KILL");
    let _ = child.wait();
    // Whatever was on disk at the kill is whole lines (a torn last one is skipped on resume).
    resume(dir.path());
    assert_eq!(metrics(dir.path()), expected);
}

fn small_trainer() -> Trainer<f64> {
    trainer_of("abg", &[])
}

fn trainer_of(variant: &str, extra: &[&str]) -> Trainer<f64> {
    let file = PresetFile::builtin_default().unwrap();
    let mut overrides: Vec<String> = vec![
        "model.hidden=[12]".into(),
        "train.precision=\"f64\"".into(),
        "data.shuffle=true".into(),
        "train.input_noise=0.3".into(),
    ];
    overrides.extend(extra.iter().map(|s| s.to_string()));
    let resolved = file.resolve(Some(variant), &overrides).unwrap();
    let raw = data::load(&DataSource::Embedded).unwrap();
    let exp = Experiment::from_raw(resolved.clone(), &raw, String::new()).unwrap();
    let AnyData::F64(data) = exp.data else {
        panic!("f64 expected")
    };
    let net = Network::<f64>::init(exp.topology.clone(), 3);
    Trainer::new(&resolved, Arc::clone(&data), net)
}

/// A checkpoint of the other precision is refused, naming both, instead of being dropped
/// (the run then started afresh from its initial weights, and its metrics continued the old).
#[test]
fn a_checkpoint_of_another_precision_is_refused_not_dropped() {
    let state = small_trainer().snapshot();
    let cp = Checkpoint {
        config_toml: String::new(),
        metrics_lines: 0,
        clock_seconds: 0.0,
        state: AnyState::F64(state),
        metrics_mark: None,
        data_fingerprint: None,
    };
    let file = PresetFile::builtin_default().unwrap();
    let overrides = [
        "model.hidden=[12]".to_string(),
        "train.precision=\"f32\"".to_string(),
    ];
    let resolved = file.resolve(Some("abg"), &overrides).unwrap();
    let raw = data::load(&DataSource::Embedded).unwrap();
    let exp = Experiment::from_raw(resolved, &raw, String::new()).unwrap();
    let options = SessionOptions {
        resume: Some(cp),
        ..SessionOptions::default()
    };
    let Err(e) = ltmlp::host::spawn(exp, options) else {
        panic!("an f64 checkpoint continued an f32 run");
    };
    let message = e.to_string();
    assert!(
        message.contains("holds an f64 network") && message.contains("train.precision = \"f32\""),
        "{message}"
    );
}

/// The papers' SGD with α β γ, batch normalisation (running averages, gains, shifts),
/// layer normalisation under Adam (both moments and the step count), and Muon and K-FAC with
/// α β γ on two hidden layers (re-estimated while they train) all continue exactly.
#[test]
fn a_restored_trainer_continues_exactly() {
    let adam = ["train.optimizer=\"adam\"", "train.learning_rate=0.003"];
    let muon = ["train.optimizer=\"muon\"", "model.hidden=[12, 8]"];
    // K-FAC with its factors refreshed and inverted within both stretches.
    let kfac = [
        "train.optimizer=\"kfac\"",
        "model.hidden=[12, 8]",
        "train.kfac_stats_every=3",
        "train.kfac_update_every=7",
    ];
    for (variant, extra) in [
        ("abg", &[][..]),
        ("bn", &[][..]),
        ("ln", &adam[..]),
        ("abg", &muon[..]),
        ("abg", &kfac[..]),
    ] {
        restored_trainer_continues_exactly(|| trainer_of(variant, extra));
    }
}

fn restored_trainer_continues_exactly(make: impl Fn() -> Trainer<f64>) {
    let mut a = make();
    for _ in 0..30 {
        a.step().unwrap();
    }
    let bytes = checkpoint::encode(&Checkpoint {
        config_toml: "x".into(),
        metrics_lines: 0,
        clock_seconds: 1.0,
        state: AnyState::F64(a.snapshot()),
        metrics_mark: None,
        data_fingerprint: Some(7),
    })
    .unwrap();
    let decoded = checkpoint::decode(Path::new("cp"), &bytes).unwrap();
    assert_eq!(decoded.data_fingerprint, Some(7));
    let AnyState::F64(state) = decoded.state else {
        panic!()
    };
    let mut b = make();
    b.restore(state);
    for _ in 0..40 {
        let (la, lb) = (a.step().unwrap(), b.step().unwrap());
        assert_eq!(la, lb);
    }
    assert_eq!(a.net, b.net);
    let (mut sa, mut sb) = (a.snapshot(), b.snapshot());
    // Wall-clock time is the one thing two runs never share.
    (sa.train_seconds, sb.train_seconds) = (0.0, 0.0);
    (sa.reestimate_seconds, sb.reestimate_seconds) = (0.0, 0.0);
    // A rollback's event carries no output change (NaN, never equal to itself): the events
    // are compared by their text.
    assert_eq!(
        format!("{:?}", sa.pending_events),
        format!("{:?}", sb.pending_events)
    );
    (sa.pending_events, sb.pending_events) = (Vec::new(), Vec::new());
    assert_eq!(sa, sb);
}

#[test]
fn damaged_checkpoints_are_refused_with_a_clear_message() {
    let mut t = small_trainer();
    t.step().unwrap();
    let good = checkpoint::encode(&Checkpoint {
        config_toml: "x".into(),
        metrics_lines: 0,
        clock_seconds: 0.0,
        state: AnyState::F64(t.snapshot()),
        metrics_mark: None,
        data_fingerprint: None,
    })
    .unwrap();
    let path = Path::new("run/checkpoint.bin");
    let error = |bytes: &[u8]| checkpoint::decode(path, bytes).unwrap_err().to_string();

    let mut flipped = good.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x01;
    let msg = error(&flipped);
    assert!(
        msg.contains("run/checkpoint.bin") && msg.contains("checksum mismatch"),
        "{msg}"
    );

    let msg = error(&good[..good.len() - 7]);
    assert!(msg.contains("truncated checkpoint"), "{msg}");

    // An unknown newer version (7: the next one) and an old one are named, with what is read.
    for found in [99u32, 7, 3] {
        let mut version = good.clone();
        version[8..12].copy_from_slice(&found.to_le_bytes());
        let msg = error(&version);
        assert!(
            msg.contains(&format!("format version {found}")) && msg.contains("versions 4 to 6"),
            "{msg}"
        );
    }
    assert_eq!(
        &good[8..12],
        &6u32.to_le_bytes(),
        "checkpoints are written as version 6"
    );

    let mut longer = good.clone();
    longer.extend_from_slice(b"tail");
    let msg = error(&longer);
    assert!(msg.contains("something was appended"), "{msg}");

    let msg = error(b"hello, world, this is not a checkpoint");
    assert!(msg.contains("not an ltmlp checkpoint"), "{msg}");
}

/// Runs checkpointed by earlier ltmlp still resume, keep their records and run to their end:
/// tests/fixtures/checkpoint-v4 (an α β γ run on the embedded subset stopped after 2 of 4
/// epochs, written by ltmlp at 9f6d687) and tests/fixtures/checkpoint-v5 (the same run
/// replayed by ltmlp at 526935a, its SGD momentum and the rollback's kept states in format 5).
#[test]
fn version_4_and_5_checkpoints_still_resume() {
    for version in [4u32, 5] {
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(format!("tests/fixtures/checkpoint-v{version}"));
        let bytes = std::fs::read(fixture.join("checkpoint.bin")).unwrap();
        assert_eq!(
            &bytes[8..12],
            &version.to_le_bytes(),
            "the fixture is version {version}"
        );
        let dir = tempfile::tempdir().unwrap();
        for entry in std::fs::read_dir(&fixture).unwrap() {
            let path = entry.unwrap().path();
            std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
        }
        let before = metrics(dir.path());
        assert_eq!(before.len(), 2);
        resume(dir.path());
        let after = metrics(dir.path());
        assert_eq!(
            after.len(),
            4,
            "v{version}: the resumed run trained to its end"
        );
        assert_eq!(
            after[..2],
            before[..],
            "v{version}: the records before the checkpoint are kept"
        );
        let summary: Value = serde_json::from_str(
            &std::fs::read_to_string(dir.path().join("summary.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(summary["state"], "finished", "v{version}");
    }
}
