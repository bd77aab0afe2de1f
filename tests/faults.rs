//! The fault suite: a failed write at every write of a run, a crash at every write, a folder
//! that stays unwritable, a closed stdout, SIGHUP under nohup, a second writer, resumes on
//! damaged files or other data, and crafted inputs. Each must end in a paused or finished run
//! with complete files (no lost, duplicated or torn metric line) and the right exit code.

mod cli_common;
use cli_common::{text, SMALL};

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// More writes than a small run makes, so that a loop over them must end by itself.
const MAX_WRITES: usize = 60;

fn ltmlp(args: &[&str], fault: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ltmlp"));
    cmd.args(args).current_dir(env!("CARGO_MANIFEST_DIR"));
    if let Some(f) = fault {
        cmd.env("LTMLP_FAULT", f);
    }
    cmd.output().expect("the binary runs")
}

fn small_run(dir: &Path, fault: Option<&str>) -> Output {
    let mut args = vec![
        "run",
        "presets/default.toml",
        "--out",
        dir.to_str().unwrap(),
    ];
    args.extend_from_slice(SMALL);
    ltmlp(&args, fault)
}

/// A fresh small run into `dir`, moving whatever is there aside.
fn forced_run(dir: &Path) -> Output {
    let mut args = vec![
        "run",
        "presets/default.toml",
        "--force",
        "--out",
        dir.to_str().unwrap(),
    ];
    args.extend_from_slice(SMALL);
    ltmlp(&args, None)
}

fn resume(dir: &Path, fault: Option<&str>) -> Output {
    ltmlp(&["run", "--resume", dir.to_str().unwrap()], fault)
}

fn injected(out: &Output) -> bool {
    String::from_utf8_lossy(&out.stderr).contains("ltmlp: injected")
}

/// The metric records of a run without the wall-clock fields; panics on a torn or
/// unparsable line, which must never happen.
fn records(dir: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(dir.join("metrics.jsonl")).unwrap_or_default();
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "torn last line in {}",
        dir.display()
    );
    text.lines()
        .map(|line| {
            let mut v: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{}: bad line {line}: {e}", dir.display()));
            let obj = v.as_object_mut().unwrap();
            obj.remove("elapsed_seconds");
            obj.remove("wall");
            obj.remove("examples_per_second");
            v
        })
        .collect()
}

/// The CSV must hold its header and exactly one row per JSONL record.
fn assert_csv_matches(dir: &Path) {
    let csv = std::fs::read_to_string(dir.join("metrics.csv")).unwrap();
    let rows = csv.lines().count();
    assert_eq!(rows, records(dir).len() + 1, "{}:\n{csv}", dir.display());
    assert!(csv.starts_with("epoch,iteration,"));
}

fn assert_no_temporaries(dir: &Path) {
    for e in std::fs::read_dir(dir).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!name.ends_with(".tmp"), "{} left {name}", dir.display());
    }
}

fn summary(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap()
}

/// The uninterrupted run every faulty one must reproduce.
fn reference(root: &Path) -> Vec<Value> {
    let dir = root.join("reference");
    let out = small_run(&dir, None);
    assert!(out.status.success(), "{}", text(&out));
    let r = records(&dir);
    assert_eq!(r.len(), 3);
    r
}

#[test]
fn a_failed_write_anywhere_is_retried_without_losing_or_repeating_a_line() {
    let root = tempfile::tempdir().unwrap();
    let expected = reference(root.path());
    let mut faults = 0;
    for n in 1..=MAX_WRITES {
        let dir = root.path().join(format!("fail-{n}"));
        let out = small_run(&dir, Some(&format!("fail:{n}")));
        if !injected(&out) {
            assert!(out.status.success(), "{}", text(&out));
            break;
        }
        faults += 1;
        if out.status.code() == Some(2) {
            // Failed while creating the run, before any training: reported, folder left
            // empty, and the same --out works once the fault is gone.
            assert!(String::from_utf8_lossy(&out.stderr).contains("cannot write"));
            let again = small_run(&dir, None);
            assert!(again.status.success(), "write {n}: {}", text(&again));
        } else {
            assert!(out.status.success(), "write {n}: {}", text(&out));
        }
        assert_eq!(records(&dir), expected, "write {n}");
        assert_csv_matches(&dir);
        assert_no_temporaries(&dir);
        assert_eq!(summary(&dir)["state"], "finished", "write {n}");
    }
    assert!(faults >= 10, "only {faults} writes were exercised");
    assert!(faults < MAX_WRITES, "the loop never passed the last write");
}

#[test]
fn a_crash_at_any_write_resumes_to_the_same_metrics() {
    let root = tempfile::tempdir().unwrap();
    let expected = reference(root.path());
    let mut crashes = 0;
    for n in 1..=MAX_WRITES {
        let dir = root.path().join(format!("crash-{n}"));
        let out = small_run(&dir, Some(&format!("crash:{n}")));
        if !injected(&out) {
            assert!(out.status.success(), "{}", text(&out));
            break;
        }
        crashes += 1;
        assert!(!out.status.success(), "an abort is not a success");
        let resumed = resume(&dir, None);
        if !resumed.status.success() {
            // Killed before the first checkpoint: nothing to resume, and it says why.
            let err = String::from_utf8_lossy(&resumed.stderr);
            assert!(
                err.contains("checkpoint.bin") || err.contains("no run to resume here"),
                "crash {n}: {}",
                text(&resumed)
            );
            let fresh = forced_run(&dir);
            assert!(fresh.status.success(), "crash {n}: {}", text(&fresh));
        }
        assert_eq!(records(&dir), expected, "crash {n}");
        assert_csv_matches(&dir);
        assert_no_temporaries(&dir);
    }
    assert!(crashes >= 10, "only {crashes} writes were exercised");
}

#[test]
fn an_unwritable_folder_pauses_the_run_and_a_signal_still_ends_it_promptly() {
    let root = tempfile::tempdir().unwrap();
    let expected = reference(root.path());
    let dir = root.path().join("stuck");
    // Write 8 is the first epoch's first record (after config.toml, run.json, the logs' creation
    // and the CSV header): from there on, every write fails.
    let mut args = vec![
        "run",
        "presets/default.toml",
        "--out",
        dir.to_str().unwrap(),
    ];
    args.extend_from_slice(SMALL);
    let mut child = Command::new(env!("CARGO_BIN_EXE_ltmlp"))
        .args(&args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("LTMLP_FAULT", "fail-from:8")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(4));
    assert!(
        child.try_wait().unwrap().is_none(),
        "a failing write pauses the run, it does not end it"
    );
    let signalled = Instant::now();
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let out = child.wait_with_output().unwrap();
    assert!(
        signalled.elapsed() < Duration::from_secs(10),
        "SIGTERM took {:?}",
        signalled.elapsed()
    );
    assert_eq!(out.status.code(), Some(143), "{}", text(&out));
    assert!(records(&dir).len() <= 1);
    assert_no_temporaries(&dir);
    assert!(
        !dir.join("summary.json").exists() || summary(&dir)["state"].is_string(),
        "summary.json is whole or absent"
    );
    // Once the folder is writable again the run continues to the same metrics.
    if dir.join("checkpoint.bin").exists() {
        let resumed = resume(&dir, None);
        assert!(resumed.status.success(), "{}", text(&resumed));
    } else {
        let out = forced_run(&dir);
        assert!(out.status.success(), "{}", text(&out));
    }
    assert_eq!(records(&dir), expected);
}

#[test]
fn a_closed_stdout_does_not_stop_the_run() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("piped");
    let mut args = vec![
        "run",
        "presets/default.toml",
        "--out",
        dir.to_str().unwrap(),
    ];
    args.extend_from_slice(SMALL);
    let mut child = Command::new(env!("CARGO_BIN_EXE_ltmlp"))
        .args(&args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // `| head -1`: read one line, then close the pipe.
    drop(child.stdout.take());
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert_eq!(records(&dir).len(), 3);
    assert_eq!(summary(&dir)["state"], "finished");
}

#[test]
fn sighup_under_nohup_does_not_stop_the_run() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("nohup");
    let mut args = vec![
        "run",
        "presets/default.toml",
        "--out",
        dir.to_str().unwrap(),
    ];
    args.extend_from_slice(SMALL);
    args.extend_from_slice(&["--set", "train.epochs=30"]);
    let script = format!(
        "trap '' HUP; exec {} {}",
        env!("CARGO_BIN_EXE_ltmlp"),
        args.iter()
            .map(|a| format!("'{a}'"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let mut child = Command::new("sh")
        .args(["-c", &script])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    unsafe { libc::kill(child.id() as i32, libc::SIGHUP) };
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert_eq!(summary(&dir)["state"], "finished");
}

#[test]
fn one_writer_per_folder_and_no_silent_replacement() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("taken");
    let first = small_run(&dir, None);
    assert!(first.status.success(), "{}", text(&first));
    let before = std::fs::read(dir.join("metrics.jsonl")).unwrap();
    let second = small_run(&dir, None);
    assert_eq!(second.status.code(), Some(2));
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(
        err.contains("already holds a run") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(std::fs::read(dir.join("metrics.jsonl")).unwrap(), before);

    // A writer that is still running keeps its folder.
    let busy = root.path().join("busy");
    let mut args = vec![
        "run",
        "presets/default.toml",
        "--out",
        busy.to_str().unwrap(),
    ];
    args.extend_from_slice(SMALL);
    args.extend_from_slice(&["--set", "train.epochs=200"]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_ltmlp"))
        .args(&args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !busy.join("checkpoint.bin").exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    for out in [small_run(&busy, None), resume(&busy, None)] {
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("another ltmlp is writing")
                && err.contains(&format!("pid {}", child.id())),
            "{err}"
        );
    }
    child.kill().unwrap();
    child.wait().unwrap();

    // --force moves the old run aside, it never deletes it.
    let forced = forced_run(&dir);
    assert!(forced.status.success(), "{}", text(&forced));
    let aside: PathBuf = root.path().join("taken.old-1");
    assert_eq!(std::fs::read(aside.join("metrics.jsonl")).unwrap(), before);
}

#[test]
fn a_resume_refuses_damaged_metrics_and_other_data() {
    let root = tempfile::tempdir().unwrap();
    let make = |name: &str| {
        let dir = root.path().join(name);
        let out = small_run(&dir, None);
        assert!(out.status.success(), "{}", text(&out));
        dir
    };
    // A damaged record: refused, nothing rewritten.
    let dir = make("damaged");
    let jsonl = dir.join("metrics.jsonl");
    let good = std::fs::read_to_string(&jsonl).unwrap();
    let damaged = good.replacen("{\"epoch\":2", "{\"epoch\":\"two\"", 1);
    std::fs::write(&jsonl, &damaged).unwrap();
    let out = resume(&dir, None);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("metrics.jsonl:2: not a metrics record"),
        "{}",
        text(&out)
    );
    assert_eq!(std::fs::read_to_string(&jsonl).unwrap(), damaged);

    // A truncated log: refused, named as such.
    std::fs::write(&jsonl, good.lines().next().unwrap().to_string() + "\n").unwrap();
    let out = resume(&dir, None);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("holds 1 whole records"),
        "{}",
        text(&out)
    );

    // An edited record of the right shape: the checksum catches it.
    std::fs::write(&jsonl, good.replacen("\"epoch\":1,", "\"epoch\":1 ,", 1)).unwrap();
    let out = resume(&dir, None);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out).contains("not the ones the checkpoint saw"),
        "{}",
        text(&out)
    );

    // A damaged CSV is rebuilt from the JSONL (it is derived from it), the old one kept.
    std::fs::write(&jsonl, &good).unwrap();
    let csv = dir.join("metrics.csv");
    std::fs::write(&csv, "garbage\n").unwrap();
    let out = resume(&dir, None);
    assert!(out.status.success(), "{}", text(&out));
    assert_csv_matches(&dir);
    assert!(dir.join("metrics.csv.after-checkpoint").exists());

    // Other data of the same shape: refused by the fingerprint.
    let other = root.path().join("other-data");
    std::fs::create_dir_all(&other).unwrap();
    write_mnist_like(&other);
    let out = ltmlp(
        &[
            "run",
            "--resume",
            dir.to_str().unwrap(),
            "--data",
            other.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("was trained on other data"),
        "{}",
        text(&out)
    );
}

/// Four gzipped IDX files of 28×28 images, shaped like the embedded subset but other pixels.
fn write_mnist_like(dir: &Path) {
    use std::io::Write;
    let gz = |name: &str, bytes: Vec<u8>| {
        let file = std::fs::File::create(dir.join(format!("{name}.gz"))).unwrap();
        let mut enc = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
        enc.write_all(&bytes).unwrap();
        enc.finish().unwrap();
    };
    let images = |n: u32| {
        let mut b = vec![0, 0, 8, 3];
        for d in [n, 28, 28] {
            b.extend_from_slice(&d.to_be_bytes());
        }
        b.extend((0..n as usize * 784).map(|i| (i * 7 % 251) as u8));
        b
    };
    let labels = |n: u32| {
        let mut b = vec![0, 0, 8, 1];
        b.extend_from_slice(&n.to_be_bytes());
        b.extend((0..n).map(|i| (i % 10) as u8));
        b
    };
    gz("train-images-idx3-ubyte", images(6000));
    gz("train-labels-idx1-ubyte", labels(6000));
    gz("t10k-images-idx3-ubyte", images(1000));
    gz("t10k-labels-idx1-ubyte", labels(1000));
}

#[test]
fn crafted_inputs_are_refused_quickly_with_short_messages() {
    let root = tempfile::tempdir().unwrap();
    let preset = |name: &str, hidden: String| {
        let path = root.path().join(name);
        std::fs::write(
            &path,
            format!(
                "name = \"x\"\n[model]\ntask = \"classify\"\nhidden = {hidden}\n[train]\n\
                 epochs = 1\nbatch_size = 10\nlearning_rate = 0.1\n"
            ),
        )
        .unwrap();
        path
    };
    let deep = preset("deep.toml", format!("[{}]", vec!["1"; 10_000].join(",")));
    let huge = preset("huge.toml", format!("[{}]", vec!["1"; 2_000_000].join(",")));
    for path in [deep, huge] {
        let started = Instant::now();
        let out = ltmlp(&["run", path.to_str().unwrap()], None);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.len() < 500, "message of {} bytes", err.len());
        assert!(
            err.contains("model.hidden") || err.contains("a preset is at most 1 MiB"),
            "{err}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
    }

    // A gzip IDX whose header promises a few bytes but that inflates to many: refused
    // without inflating the rest.
    let data = root.path().join("bomb");
    std::fs::create_dir_all(&data).unwrap();
    write_mnist_like(&data);
    {
        use std::io::Write;
        let file = std::fs::File::create(data.join("train-labels-idx1-ubyte.gz")).unwrap();
        let mut enc = flate2::write::GzEncoder::new(file, flate2::Compression::best());
        let mut header = vec![0, 0, 8, 1];
        header.extend_from_slice(&6000u32.to_be_bytes());
        enc.write_all(&header).unwrap();
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..256 {
            enc.write_all(&zeros).unwrap();
        }
        enc.finish().unwrap();
    }
    let out = ltmlp(
        &[
            "run",
            "presets/default.toml",
            "--data",
            data.to_str().unwrap(),
            "--out",
            root.path().join("never").to_str().unwrap(),
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("beyond the 6000 bytes the header promises"),
        "{}",
        text(&out)
    );
}

/// A real full disk: a small tmpfs, filled up to a few pages by another file. The run pauses
/// when its checkpoint does not fit, keeps its records whole, and finishes the same run once
/// space is freed. Needs root to mount; skips with the reason otherwise.
#[test]
fn a_real_full_disk_pauses_the_run_and_freeing_space_finishes_it() {
    let root = tempfile::tempdir().unwrap();
    let mnt = root.path().join("small-disk");
    std::fs::create_dir(&mnt).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=4m", "tmpfs"])
        .arg(&mnt)
        .output();
    if !mounted.as_ref().is_ok_and(|o| o.status.success()) {
        println!("SKIPPED: cannot mount a tmpfs here (needs root): {mounted:?}");
        return;
    }
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg("-l").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(mnt.clone());
    let expected = reference(root.path());

    // Leave 64 KiB: the config and the first metrics fit, a checkpoint does not.
    let filler = mnt.join("filler");
    let stat = free_bytes(&mnt);
    std::fs::write(&filler, vec![0u8; (stat - 64 * 1024) as usize]).unwrap();
    let dir = mnt.join("run");
    let mut args = vec![
        "run".to_string(),
        "presets/default.toml".into(),
        "--out".into(),
        dir.display().to_string(),
    ];
    args.extend(SMALL.iter().map(|s| s.to_string()));
    let mut child = Command::new(env!("CARGO_BIN_EXE_ltmlp"))
        .args(&args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut said = Vec::new();
    loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| panic!("the run never paused on the full disk: {said:?}"));
        let paused = line.contains("training stays paused") || line.contains("waits to write");
        said.push(line);
        if paused {
            break;
        }
    }
    assert!(
        said.iter().any(|l| l.contains("No space left")),
        "the message names the cause: {said:?}"
    );
    assert!(child.try_wait().unwrap().is_none(), "paused, not ended");
    std::fs::remove_file(&filler).unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}: {said:?}");
    assert_eq!(records(&dir), expected);
    assert_no_temporaries(&dir);
    assert_eq!(summary(&dir)["state"], "finished");
}

/// Free bytes of the file system holding `path`.
fn free_bytes(path: &Path) -> u64 {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: statvfs fills the struct we own from a valid NUL-terminated path.
    unsafe {
        let mut s: libc::statvfs = std::mem::zeroed();
        assert_eq!(libc::statvfs(c.as_ptr(), &mut s), 0);
        s.f_bavail as u64 * s.f_frsize as u64
    }
}
