//! The export round trip on a run trained here: every tensor of the safetensors and npz files
//! equals the checkpoint's parameters, `eval` agrees with the run's own test figures, and (when
//! numpy is installed) scripts/check_export.py rebuilds the network and matches ltmlp's outputs,
//! as scripts/check_export_torch.py does in PyTorch when torch is installed.

use std::path::Path;
use std::process::Command;

use ltmlp::data::npy;
use ltmlp::eval::load_run;

fn ltmlp(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_ltmlp"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ltmlp {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The size and RGB pixels of a PNG file.
fn decode_png(path: &Path) -> ((u32, u32), Vec<u8>) {
    let file = std::fs::File::open(path).unwrap();
    let mut decoder = png::Decoder::new(file);
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let frame = reader.next_frame(&mut buf).unwrap();
    assert_eq!(frame.color_type, png::ColorType::Rgb, "{}", path.display());
    buf.truncate(frame.buffer_size());
    ((frame.width, frame.height), buf)
}

/// A small classifier of `variant` trained on a generated CSV with labels -3 and 7.
fn trained_run(dir: &Path, variant: &str) -> std::path::PathBuf {
    let mut text = String::from("u,v,w,label\n");
    for i in 0..300 {
        let (u, v) = (
            (i * 37 % 101) as f64 / 50.0 - 1.0,
            (i * 59 % 97) as f64 / 48.0 - 1.0,
        );
        text += &format!("{u},{v},{},{}\n", u - v, if u * v > 0.0 { 7 } else { -3 });
    }
    std::fs::write(dir.join("d.csv"), text).unwrap();
    let preset = format!(
        "name = \"x\"\nvariant = \"{variant}\"\n[data]\nsource = \"{}\"\nstandardize = true\n\
         [model]\ntask = \"classify\"\nhidden = [8, 6]\n[train]\nepochs = 2\nbatch_size = 20\n\
         learning_rate = 0.05\n",
        dir.join("d.csv").display()
    );
    std::fs::write(dir.join("p.toml"), preset).unwrap();
    let run = dir.join("run");
    ltmlp(&[
        "run",
        dir.join("p.toml").to_str().unwrap(),
        "--out",
        run.to_str().unwrap(),
    ]);
    run
}

#[test]
fn export_holds_every_parameter_and_eval_matches_the_run() {
    let tmp = tempfile::tempdir().unwrap();
    let run = trained_run(tmp.path(), "abg");
    let r = run.to_str().unwrap();
    ltmlp(&["export", r]);
    ltmlp(&["export", r, "--format", "npz"]);
    let saved = load_run(&run, None).unwrap();
    let bytes = std::fs::read(run.join("model.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let get = |name: &str| -> Vec<f64> {
        st.tensor(name)
            .unwrap()
            .data()
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
            .collect()
    };
    let net = &saved.net;
    let mut blocks = 0;
    for (l, k, w) in net.params.blocks() {
        assert_eq!(
            get(&format!("layer{l}.from{k}.weight")),
            w.iter().copied().collect::<Vec<_>>()
        );
        blocks += 1;
    }
    assert_eq!(
        blocks, 6,
        "3 layers fed by every earlier one: 1 + 2 + 3 blocks"
    );
    for l in 1..=2 {
        let tr = net.transforms[l].as_ref().unwrap();
        assert_eq!(get(&format!("layer{l}.gamma")), tr.gamma.to_vec());
        assert_eq!(
            get(&format!("layer{l}.bias")),
            net.params.biases[l].to_vec()
        );
    }
    assert_eq!(get("classes"), vec![-3.0, 7.0]);
    assert_eq!(get("input.std"), saved.data.normalisation.std);
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let meta = meta.metadata().clone().unwrap();
    assert_eq!(meta["sizes"], "[3,8,6,2]");
    assert_eq!(meta["kinds"], "[\"input\",\"tanh\",\"tanh\",\"softmax\"]");
    // The npz export holds the same weights.
    let mut npz = npy::Npz::open(&run.join("model.npz")).unwrap();
    let w = npz.array("layer3.from1.weight", "weight").unwrap();
    assert_eq!(w.shape, vec![2, 8]);
    assert_eq!(w.to_f64(), get("layer3.from1.weight"));

    // eval agrees with the run's last test figures (f32 training vs f64 evaluation).
    let text = ltmlp(&[
        "eval",
        r,
        "--dump-outputs",
        run.join("outputs.npz").to_str().unwrap(),
    ]);
    assert!(text.contains("confusion"), "{text}");
    let png = run.join(ltmlp::eval::CONFUSION_PNG);
    assert!(text.contains(&format!("wrote {}", png.display())), "{text}");
    let (size, pixels) = decode_png(&png);
    assert_eq!(size, ltmlp::confusion::png::size(2));
    let distinct: std::collections::HashSet<&[u8]> = pixels.chunks_exact(3).collect();
    assert!(distinct.len() > 10, "{} colours", distinct.len());
    let report: ltmlp::eval::EvalReport =
        serde_json::from_str(&std::fs::read_to_string(run.join("eval.json")).unwrap()).unwrap();
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).unwrap()).unwrap();
    let test_error = summary["final_test_error"].as_f64().unwrap();
    assert!(
        (report.error.unwrap() - test_error).abs() < 1e-9,
        "{report:?} vs {test_error}"
    );
    // summary.json's per-class test errors are eval's, and weighted by the classes' test
    // examples they give the run's test error.
    let per_class: ltmlp::confusion::PerClassError =
        serde_json::from_value(summary["per_class_error"].clone()).unwrap();
    assert_eq!(per_class.labels, vec![-3, 7]);
    assert_eq!(per_class.final_test, report.per_class_error);
    assert_eq!(per_class.final_validation.len(), 2);
    let weighted: f64 = per_class
        .final_test
        .iter()
        .zip(&per_class.test_examples)
        .map(|(e, &n)| e.unwrap_or(0.0) * n as f64)
        .sum::<f64>()
        / per_class.test_examples.iter().sum::<usize>() as f64;
    assert!((weighted - test_error).abs() < 1e-9, "{per_class:?}");
    let wrong: usize = (0..2)
        .map(|c| report.confusion.counts[c].iter().sum::<usize>() - report.confusion.counts[c][c])
        .sum();
    assert_eq!(
        wrong as f64 * 100.0 / report.examples as f64,
        report.error.unwrap()
    );

    check_with_torch(&run);
    let numpy = Command::new("python3")
        .args(["-c", "import numpy"])
        .status();
    if !matches!(numpy, Ok(s) if s.success()) {
        println!("skipped the numpy check: python3 with numpy is not installed");
        return;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/check_export.py");
    for model in ["model.safetensors", "model.npz"] {
        let out = Command::new("python3")
            .arg(&script)
            .arg(run.join(model))
            .arg(run.join("outputs.npz"))
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("OK"),
            "{model}: {stdout} {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// scripts/check_export_torch.py on both exports, when a Python with torch is at hand:
/// `$LTMLP_TORCH_PYTHON` if set, else `python3`; the suite never needs torch.
fn check_with_torch(run: &Path) {
    let python = std::env::var("LTMLP_TORCH_PYTHON").unwrap_or_else(|_| "python3".into());
    let torch = Command::new(&python).args(["-c", "import torch"]).status();
    if !matches!(torch, Ok(s) if s.success()) {
        println!("skipped the PyTorch check: {python} cannot import torch");
        return;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/check_export_torch.py");
    for model in ["model.safetensors", "model.npz"] {
        let out = Command::new(&python)
            .arg(&script)
            .arg(run.join(model))
            .arg(run.join("outputs.npz"))
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains("OK"),
            "{model}: {stdout} {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// A normalised network has gains, shifts and running averages the export layout cannot
/// hold: export refuses it (writing nothing) and points at `eval`, which evaluates it with
/// the running averages and agrees with the run's own figures.
#[test]
fn a_normalised_run_is_refused_by_export_and_evaluated_by_eval() {
    let tmp = tempfile::tempdir().unwrap();
    let run = trained_run(tmp.path(), "bn");
    let r = run.to_str().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ltmlp"))
        .args(["export", r])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("batch-normalised") && stderr.contains("ltmlp eval"),
        "{stderr}"
    );
    assert!(!run.join("model.safetensors").exists());

    ltmlp(&["eval", r]);
    let report: ltmlp::eval::EvalReport =
        serde_json::from_str(&std::fs::read_to_string(run.join("eval.json")).unwrap()).unwrap();
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).unwrap()).unwrap();
    let test_error = summary["final_test_error"].as_f64().unwrap();
    assert!(
        (report.error.unwrap() - test_error).abs() < 1e-9,
        "{report:?} vs {test_error}"
    );
}
