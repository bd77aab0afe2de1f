//! Hostile reads (issue 29, sections 1, 5 and 7): a device, a FIFO or a decompression bomb in
//! place of any file ltmlp reads, bad data that used to be accepted, and messages that named
//! the wrong place or said their reason twice. Every command runs as a child process with a
//! deadline and a memory ceiling, so a regression fails the test instead of hanging the suite
//! or exhausting the machine.

mod cli_common;
use cli_common::SMALL;

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A refusal must come long before this; a read that blocks hits it.
const DEADLINE: Duration = Duration::from_secs(30);
/// Peak resident memory of a refused command (the binary alone is a few tens of MiB).
const MEMORY_CEILING_KIB: i64 = 400 << 10;
/// Address space a child may reserve: a safety net so an unbounded read fails instead of
/// taking the machine's memory (threads' stacks and allocator arenas fit easily).
const ADDRESS_SPACE_BYTES: u64 = 6 << 30;

/// What a bounded child did.
struct Ran {
    code: Option<i32>,
    stderr: String,
    stdout: String,
    /// Peak resident memory of the child and its descendants, KiB.
    peak_kib: i64,
    /// Killed at the deadline.
    timed_out: bool,
}

impl Ran {
    fn text(&self) -> String {
        format!(
            "exit {:?} (timed out: {}, peak {} MiB)\nstdout:\n{}\nstderr:\n{}",
            self.code,
            self.timed_out,
            self.peak_kib >> 10,
            self.stdout,
            self.stderr
        )
    }

    /// A prompt, bounded refusal (exit 2) whose one-line message holds every `needle`.
    fn assert_refused(&self, needles: &[&str]) {
        assert!(!self.timed_out, "hung:\n{}", self.text());
        assert!(
            self.peak_kib < MEMORY_CEILING_KIB,
            "unbounded memory:\n{}",
            self.text()
        );
        assert_eq!(self.code, Some(2), "{}", self.text());
        for needle in needles {
            assert!(
                self.stderr.contains(needle),
                "no `{needle}` in\n{}",
                self.text()
            );
        }
    }
}

/// Runs `ltmlp args` in `cwd` (the repository by default) under the deadline and the memory
/// ceiling; a child past the deadline is killed with its process group.
fn bounded(args: &[&str], cwd: Option<&Path>, deadline: Duration) -> Ran {
    bounded_command(
        Command::new(env!("CARGO_BIN_EXE_ltmlp")).args(args),
        cwd,
        deadline,
    )
}

fn bounded_command(cmd: &mut Command, cwd: Option<&Path>, deadline: Duration) -> Ran {
    let logs = tempfile::tempdir().unwrap();
    let (out_path, err_path) = (logs.path().join("out"), logs.path().join("err"));
    cmd.current_dir(cwd.unwrap_or(Path::new(env!("CARGO_MANIFEST_DIR"))))
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap());
    unsafe {
        cmd.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: ADDRESS_SPACE_BYTES,
                rlim_max: ADDRESS_SPACE_BYTES,
            };
            libc::setrlimit(libc::RLIMIT_AS, &limit);
            Ok(())
        });
    }
    // Reaped by `wait4` below, which also reports its peak memory.
    #[allow(clippy::zombie_processes)]
    let child = cmd.spawn().expect("the binary starts");
    let pid = child.id() as libc::pid_t;
    let started = Instant::now();
    let mut timed_out = false;
    let mut peak_kib = 0;
    let (status, usage) = loop {
        let mut status = 0;
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        let flags = if timed_out { 0 } else { libc::WNOHANG };
        let done = unsafe { libc::wait4(pid, &mut status, flags, &mut usage) };
        if done == pid {
            break (status, usage);
        }
        peak_kib = peak_kib.max(tree_peak_kib(pid));
        if started.elapsed() > deadline {
            timed_out = true;
            for p in process_tree(pid) {
                unsafe { libc::kill(p, libc::SIGKILL) };
            }
        } else {
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    Ran {
        code: libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status)),
        stdout: std::fs::read_to_string(out_path).unwrap_or_default(),
        stderr: std::fs::read_to_string(err_path).unwrap_or_default(),
        peak_kib: peak_kib.max(usage.ru_maxrss),
        timed_out,
    }
}

/// `root` and every live process below it (`script` starts its child in a session of its own,
/// so a process group would miss it).
fn process_tree(root: libc::pid_t) -> Vec<libc::pid_t> {
    let parents: Vec<(libc::pid_t, libc::pid_t)> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<libc::pid_t>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // The parent is the second field after the parenthesised command name.
            let after = &stat[stat.rfind(')')? + 1..];
            Some((pid, after.split_whitespace().nth(1)?.parse().ok()?))
        })
        .collect();
    let mut tree = vec![root];
    let mut i = 0;
    while i < tree.len() {
        let parent = tree[i];
        tree.extend(
            parents
                .iter()
                .filter(|(_, p)| *p == parent)
                .map(|(c, _)| *c),
        );
        i += 1;
    }
    tree
}

/// The largest peak resident memory (VmHWM, KiB) in the tree below `root`: a child killed at
/// the deadline is reaped by init, so its usage never reaches `wait4`.
fn tree_peak_kib(root: libc::pid_t) -> i64 {
    process_tree(root)
        .into_iter()
        .filter_map(|pid| {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
            let line = status.lines().find_map(|l| l.strip_prefix("VmHWM:"))?;
            line.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<i64>()
                .ok()
        })
        .max()
        .unwrap_or(0)
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// A finished small run (3 epochs of a 784-16-10 network), made once and copied by each test.
fn finished_run() -> &'static Path {
    static RUN: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &RUN.get_or_init(|| {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("run");
        let mut args = vec!["run", "presets/default.toml", "--out", s(&dir)];
        args.extend_from_slice(SMALL);
        let ran = bounded(&args, None, Duration::from_secs(300));
        assert_eq!(ran.code, Some(0), "{}", ran.text());
        (root, dir)
    })
    .1
}

/// A copy of the finished run in `root`, with `file` replaced by a link to `target`.
fn run_with_link(root: &Path, file: &str, target: &Path) -> PathBuf {
    let dir = root.join("run");
    let status = Command::new("cp")
        .args(["-a", s(finished_run()), s(&dir)])
        .status()
        .unwrap();
    assert!(status.success());
    let _ = std::fs::remove_file(dir.join(file));
    std::os::unix::fs::symlink(target, dir.join(file)).unwrap();
    dir
}

fn fifo(path: &Path) -> PathBuf {
    let c = std::ffi::CString::new(s(path)).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    path.to_owned()
}

// ---- 1. Reads that are not bounded ----

/// The default preset run on `data` read as a CSV table, into a folder under `root`.
fn run_on_csv_data(root: &Path, data: &Path) -> Ran {
    bounded(
        &[
            "run",
            "presets/default.toml",
            "--data",
            s(data),
            "--set",
            "data.format=csv",
            "--out",
            s(&root.join("never")),
        ],
        None,
        DEADLINE,
    )
}

#[test]
fn a_device_as_csv_data_is_refused_at_once() {
    let root = tempfile::tempdir().unwrap();
    let ran = run_on_csv_data(root.path(), Path::new("/dev/zero"));
    ran.assert_refused(&["/dev/zero", "character device"]);
}

#[test]
fn a_device_as_the_preset_is_refused_at_once() {
    bounded(&["run", "/dev/zero"], None, DEADLINE).assert_refused(&[
        "/dev/zero",
        "character device",
        "preset",
    ]);
}

#[test]
fn a_device_as_the_checkpoint_is_refused_by_diagnose() {
    let root = tempfile::tempdir().unwrap();
    let dir = run_with_link(root.path(), "checkpoint.bin", Path::new("/dev/zero"));
    bounded(&["diagnose", "--checkpoint", s(&dir)], None, DEADLINE)
        .assert_refused(&["checkpoint.bin", "character device"]);
}

/// A sweep folder whose `plan.json` is a link to `target`, with one finished cell.
fn sweep_with_plan(root: &Path, target: &Path) -> PathBuf {
    let sweep = root.join("sweep");
    std::fs::create_dir(&sweep).unwrap();
    let status = Command::new("cp")
        .args(["-a", s(finished_run()), s(&sweep.join("cell-0"))])
        .status()
        .unwrap();
    assert!(status.success());
    std::os::unix::fs::symlink(target, sweep.join("plan.json")).unwrap();
    sweep
}

#[test]
fn a_device_as_the_plan_is_refused_by_run_job() {
    let root = tempfile::tempdir().unwrap();
    let sweep = sweep_with_plan(root.path(), Path::new("/dev/zero"));
    bounded(&["run-job", "--index", "0", s(&sweep)], None, DEADLINE)
        .assert_refused(&["plan.json", "character device"]);
}

#[test]
fn a_device_as_the_plan_is_refused_by_report() {
    let root = tempfile::tempdir().unwrap();
    let sweep = sweep_with_plan(root.path(), Path::new("/dev/zero"));
    bounded(&["report", s(&sweep)], None, DEADLINE)
        .assert_refused(&["plan.json", "character device"]);
}

#[test]
fn a_device_as_the_metrics_is_named_by_report() {
    let root = tempfile::tempdir().unwrap();
    let sweep = root.path().join("sweep");
    std::fs::create_dir(&sweep).unwrap();
    let dir = run_with_link(&sweep, "metrics.jsonl", Path::new("/dev/zero"));
    let ran = bounded(&["report", s(&sweep)], None, DEADLINE);
    assert!(!ran.timed_out, "{}", ran.text());
    assert!(ran.peak_kib < MEMORY_CEILING_KIB, "{}", ran.text());
    // The run is listed as unreadable, with the reason, in the report.
    let report = std::fs::read_to_string(sweep.join("report.md")).unwrap_or_default();
    let all = format!("{}{report}", ran.text());
    assert!(all.contains("character device"), "{all}");
    assert!(dir.exists());
}

#[test]
fn a_device_as_the_metrics_keeps_watch_bounded() {
    let root = tempfile::tempdir().unwrap();
    let dir = run_with_link(root.path(), "metrics.jsonl", Path::new("/dev/zero"));
    // watch needs a terminal: `script` gives it one. It never ends by itself, so the deadline
    // ends it; what matters is that its memory stayed bounded until then.
    let command = format!("{} watch {}", env!("CARGO_BIN_EXE_ltmlp"), s(&dir));
    let ran = bounded_command(
        Command::new("script").args(["-qec", &command, "/dev/null"]),
        None,
        Duration::from_secs(5),
    );
    assert!(ran.peak_kib < MEMORY_CEILING_KIB, "{}", ran.text());
}

#[test]
fn a_device_as_the_config_is_refused_by_eval() {
    let root = tempfile::tempdir().unwrap();
    let dir = run_with_link(root.path(), "config.toml", Path::new("/dev/zero"));
    bounded(&["eval", s(&dir)], None, DEADLINE)
        .assert_refused(&["config.toml", "character device"]);
}

#[test]
fn a_device_linked_as_the_action_log_is_refused_by_resume() {
    // A resume refuses any link in the run folder before it reads a file (a link would let
    // it read or write outside the folder), so the device is never opened.
    let root = tempfile::tempdir().unwrap();
    let dir = run_with_link(root.path(), "actions.jsonl", Path::new("/dev/zero"));
    bounded(&["run", "--resume", s(&dir)], None, DEADLINE)
        .assert_refused(&["actions.jsonl", "symbolic link"]);
}

#[test]
fn a_fifo_as_the_preset_is_refused_without_waiting() {
    let root = tempfile::tempdir().unwrap();
    let preset = fifo(&root.path().join("preset.toml"));
    bounded(&["run", s(&preset)], None, DEADLINE).assert_refused(&["preset.toml", "named pipe"]);
}

#[test]
fn a_fifo_as_the_data_is_refused_without_waiting() {
    let root = tempfile::tempdir().unwrap();
    let data = fifo(&root.path().join("data.csv"));
    bounded(
        &[
            "run",
            "presets/default.toml",
            "--data",
            s(&data),
            "--out",
            s(&root.path().join("never")),
        ],
        None,
        DEADLINE,
    )
    .assert_refused(&["data.csv", "named pipe"]);
}

#[test]
fn a_fifo_as_the_checkpoint_is_refused_by_eval_and_export() {
    let root = tempfile::tempdir().unwrap();
    let pipe = fifo(&root.path().join("pipe"));
    let dir = run_with_link(root.path(), "checkpoint.bin", &pipe);
    bounded(&["eval", s(&dir)], None, DEADLINE).assert_refused(&["checkpoint.bin", "named pipe"]);
    bounded(&["export", s(&dir)], None, DEADLINE).assert_refused(&["checkpoint.bin", "named pipe"]);
}

/// A `.npz` of the four arrays whose `x_train` header says (200, 8) float64 (12,800 bytes) but
/// whose member inflates to 512 MiB.
#[test]
fn an_npz_member_is_inflated_only_as_far_as_its_header_promises() {
    use ltmlp::data::npy;
    let root = tempfile::tempdir().unwrap();
    let path = root.path().join("bomb.npz");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
    let deflated = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .large_file(true);
    let header = npy::encode_f64(&[200, 8], &[]);
    zip.start_file("x_train.npy", deflated).unwrap();
    zip.write_all(&header).unwrap();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..512 {
        zip.write_all(&zeros).unwrap();
    }
    let labels = npy::encode_i64(&[200], &[1; 200]);
    for (name, bytes) in [
        ("y_train", labels.clone()),
        ("x_test", npy::encode_f64(&[200, 8], &[0.5; 1600])),
        ("y_test", labels),
    ] {
        zip.start_file(format!("{name}.npy"), deflated).unwrap();
        zip.write_all(&bytes).unwrap();
    }
    zip.finish().unwrap();
    assert!(std::fs::metadata(&path).unwrap().len() < 8 << 20);
    bounded(
        &[
            "run",
            "presets/default.toml",
            "--data",
            s(&path),
            "--out",
            s(&root.path().join("never")),
        ],
        None,
        DEADLINE,
    )
    .assert_refused(&["bomb.npz", "x_train", "12800"]);
}

// ---- 5. Bad data accepted silently ----

/// The four MNIST-format files of `n` training and `n` test images, gzipped, with `train_labels`.
fn write_idx(dir: &Path, n: u32, train_labels: &[u8], gzip_trailer: &[u8]) {
    let gz = |name: &str, bytes: Vec<u8>, trailer: &[u8]| {
        let mut out = ltmlp::data::idx::gzip(&bytes);
        out.extend_from_slice(trailer);
        std::fs::write(dir.join(format!("{name}.gz")), out).unwrap();
    };
    let images = |n: u32| {
        let mut b = vec![0, 0, 8, 3];
        for d in [n, 28, 28] {
            b.extend_from_slice(&d.to_be_bytes());
        }
        b.extend((0..n as usize * 784).map(|i| (i * 7 % 251) as u8));
        b
    };
    let labels = |values: &[u8]| {
        let mut b = vec![0, 0, 8, 1];
        b.extend_from_slice(&(values.len() as u32).to_be_bytes());
        b.extend_from_slice(values);
        b
    };
    let test_labels: Vec<u8> = (0..n).map(|i| (i % 10) as u8).collect();
    gz("train-images-idx3-ubyte", images(n), gzip_trailer);
    gz("train-labels-idx1-ubyte", labels(train_labels), &[]);
    gz("t10k-images-idx3-ubyte", images(n), &[]);
    gz("t10k-labels-idx1-ubyte", labels(&test_labels), &[]);
}

fn run_on(data: &Path, extra: &[&str]) -> Ran {
    let out = data.with_extension("run");
    let mut args = vec![
        "run",
        "presets/default.toml",
        "--data",
        s(data),
        "--out",
        s(&out),
        "--set",
        "model.hidden=[8]",
        "--set",
        "train.epochs=1",
        "--set",
        "data.validation_size=100",
    ];
    args.extend_from_slice(extra);
    bounded(&args, None, Duration::from_secs(120))
}

fn digits(n: u32) -> Vec<u8> {
    (0..n).map(|i| (i % 10) as u8).collect()
}

#[test]
fn bytes_after_a_gzip_stream_are_refused() {
    let root = tempfile::tempdir().unwrap();
    write_idx(root.path(), 600, &digits(600), b"trailing garbage");
    run_on(root.path(), &[]).assert_refused(&["train-images-idx3-ubyte.gz", "after the gzip"]);
}

#[test]
fn a_second_gzip_member_is_refused() {
    let root = tempfile::tempdir().unwrap();
    write_idx(
        root.path(),
        600,
        &digits(600),
        &ltmlp::data::idx::gzip(b"more"),
    );
    run_on(root.path(), &[]).assert_refused(&["train-images-idx3-ubyte.gz", "after the gzip"]);
}

/// Writes the `.npy` folder of 600 + 600 examples of 4 features with these training labels
/// and features.
fn write_npy(dir: &Path, labels: &[i64], features: &[f64]) {
    use ltmlp::data::npy;
    let test: Vec<i64> = (0..600).map(|i| i % 10).collect();
    for (name, bytes) in [
        ("x_train", npy::encode_f64(&[600, 4], features)),
        ("y_train", npy::encode_i64(&[600], labels)),
        ("x_test", npy::encode_f64(&[600, 4], &[0.25; 2400])),
        ("y_test", npy::encode_i64(&[600], &test)),
    ] {
        std::fs::write(dir.join(format!("{name}.npy")), bytes).unwrap();
    }
}

fn features() -> Vec<f64> {
    (0..2400).map(|i| (i % 17) as f64 / 17.0).collect()
}

#[test]
fn a_training_label_outside_the_classes_is_refused_with_its_index() {
    for odd in [200, i64::MIN] {
        let root = tempfile::tempdir().unwrap();
        let mut labels: Vec<i64> = (0..600).map(|i| i % 10).collect();
        labels[123] = odd;
        write_npy(root.path(), &labels, &features());
        run_on(root.path(), &[]).assert_refused(&[
            "y_train.npy",
            "example 123",
            &odd.to_string(),
            "data.classes",
        ]);
    }
}

#[test]
fn declared_classes_admit_labels_up_to_their_number_and_no_further() {
    let root = tempfile::tempdir().unwrap();
    let mut labels: Vec<i64> = (0..600).map(|i| i % 10).collect();
    labels[123] = 200;
    write_npy(root.path(), &labels, &features());
    let ran = run_on(root.path(), &["--set", "data.classes=201"]);
    assert_eq!(ran.code, Some(0), "{}", ran.text());
    let ran = run_on(root.path(), &["--set", "data.classes=200"]);
    ran.assert_refused(&["y_train.npy", "example 123", "200", "data.classes"]);
}

#[test]
fn nan_in_csv_inputs_is_refused_with_file_line_and_column() {
    let root = tempfile::tempdir().unwrap();
    let path = root.path().join("table.csv");
    let mut text = String::from("a,b,label\n");
    for i in 0..600 {
        let a = if i == 41 {
            "nan".to_string()
        } else {
            format!("{}", i % 7)
        };
        text.push_str(&format!("{a},{},{}\n", i % 5, i % 3));
    }
    std::fs::write(&path, text).unwrap();
    run_on(&path, &[]).assert_refused(&["table.csv", "line 43", "column 0 (a)", "not finite"]);
}

#[test]
fn infinity_in_npy_inputs_is_refused_with_file_and_index() {
    let root = tempfile::tempdir().unwrap();
    let labels: Vec<i64> = (0..600).map(|i| i % 10).collect();
    let mut x = features();
    x[4 * 77 + 2] = f64::INFINITY;
    write_npy(root.path(), &labels, &x);
    run_on(root.path(), &[]).assert_refused(&[
        "x_train.npy",
        "example 77",
        "feature 2",
        "not finite",
    ]);
}

// ---- 7. Messages ----

#[test]
fn a_resume_before_the_first_checkpoint_says_what_to_do() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("run");
    std::fs::create_dir(&dir).unwrap();
    std::fs::copy(finished_run().join("config.toml"), dir.join("config.toml")).unwrap();
    bounded(&["run", "--resume", s(&dir)], None, DEADLINE)
        .assert_refused(&["no checkpoint", "--force"]);
}

#[test]
fn a_missing_plan_is_named_once() {
    let root = tempfile::tempdir().unwrap();
    let ran = bounded(&["run-job", "--index", "0", s(root.path())], None, DEADLINE);
    ran.assert_refused(&["plan.json"]);
    assert_said_once(&ran);
}

/// The first line of the message says each of its parts once: no reason repeated after a colon.
fn assert_said_once(ran: &Ran) {
    let line = ran.stderr.lines().next().unwrap_or_default();
    let parts: Vec<&str> = line.split(": ").map(str::trim).collect();
    for (i, part) in parts.iter().enumerate() {
        assert!(
            !parts[i + 1..].contains(part),
            "`{part}` said twice in: {line}"
        );
    }
}

#[test]
fn an_unreadable_data_file_is_named_once() {
    // A regular file whose first read fails (EIO), whoever runs the test (root reads a 000 file).
    let root = tempfile::tempdir().unwrap();
    let ran = run_on_csv_data(root.path(), Path::new("/proc/self/mem"));
    ran.assert_refused(&["/proc/self/mem"]);
    assert_said_once(&ran);
}

#[test]
fn eval_after_an_edited_config_blames_the_config() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("run");
    let status = Command::new("cp")
        .args(["-a", s(finished_run()), s(&dir)])
        .status()
        .unwrap();
    assert!(status.success());
    let config = std::fs::read_to_string(dir.join("config.toml")).unwrap();
    let edited = config.replace("hidden = [16]", "hidden = [32]");
    assert_ne!(config, edited);
    std::fs::write(dir.join("config.toml"), edited).unwrap();
    let ran = bounded(&["eval", s(&dir)], None, DEADLINE);
    ran.assert_refused(&["config.toml", "model.hidden", "checkpoint"]);
    assert!(
        !ran.stderr.contains("data of the same shape"),
        "{}",
        ran.text()
    );
}

#[test]
fn a_preset_of_ten_thousand_layers_is_blamed_on_its_model_section() {
    let root = tempfile::tempdir().unwrap();
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("presets/default.toml"))
            .unwrap();
    let layers = format!("hidden = [{}]", vec!["4"; 10_000].join(","));
    let preset = root.path().join("deep.toml");
    std::fs::write(&preset, text.replacen("hidden = [400, 400]", &layers, 1)).unwrap();
    let ran = bounded(&["run", s(&preset)], None, DEADLINE);
    ran.assert_refused(&["model.hidden", "at most 100"]);
    assert!(!ran.stderr.contains("variants"), "{}", ran.text());
    let line = text.lines().position(|l| l.starts_with("hidden")).unwrap() + 1;
    assert!(
        ran.stderr.contains(&format!("deep.toml:{line}:")),
        "{}",
        ran.text()
    );
}

#[test]
fn two_sweeps_on_one_folder_both_finish_every_cell() {
    let root = tempfile::tempdir().unwrap();
    let out = root.path().join("sweep");
    let sweep = |delay: &str| {
        let command = format!(
            "sleep {delay}; exec {} sweep presets/tiny.toml --variants none --seeds 2 \
             --grid train.epochs=150 --out {}",
            env!("CARGO_BIN_EXE_ltmlp"),
            s(&out)
        );
        std::thread::spawn(move || {
            bounded_command(
                Command::new("sh").args(["-c", &command]),
                None,
                Duration::from_secs(300),
            )
        })
    };
    let (first, second) = (sweep("0"), sweep("0.5"));
    for ran in [first.join().unwrap(), second.join().unwrap()] {
        assert_eq!(ran.code, Some(0), "{}", ran.text());
        assert!(!ran.stderr.contains("did not finish"), "{}", ran.text());
    }
}
