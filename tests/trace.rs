//! `ltmlp run --trace FILE`: a traced run of the tiny preset writes a header, one parseable line
//! per minibatch (indices, loss, α β γ of every unit) that agrees with the run's own record, and
//! its initial network in the export format; a path that cannot be written is refused before
//! training with one line naming it.

use std::process::Command;

fn ltmlp(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ltmlp"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn a_traced_run_writes_every_step_and_its_initial_network() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("trace.jsonl");
    let out = dir.path().join("run");
    let run = ltmlp(&[
        "run",
        "presets/tiny.toml",
        "--variant",
        "abg",
        "--set",
        "train.epochs=2",
        "--out",
        out.to_str().unwrap(),
        "--trace",
        trace.to_str().unwrap(),
    ]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let text = std::fs::read_to_string(&trace).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let header = &lines[0];
    assert_eq!(header["format"], "ltmlp-trace-1");
    assert_eq!(header["iterations_per_epoch"], 10);
    assert_eq!(header["data"]["train"], 1000);
    // The preset's sample policy: its 1,000 examples, each training example once.
    let mut sample: Vec<u64> = header["sample"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    sample.sort_unstable();
    assert_eq!(sample, (0..1000).collect::<Vec<u64>>());
    let config: toml::Value = toml::from_str(header["config"].as_str().unwrap()).unwrap();
    assert_eq!(config["train"]["epochs"].as_integer(), Some(2));

    let steps = &lines[1..];
    assert_eq!(steps.len(), 20);
    for (i, step) in steps.iter().enumerate() {
        assert_eq!(step["step"], i as u64);
        assert_eq!(step["epoch"], (i / 10) as u64);
        let indices = step["indices"].as_array().unwrap();
        // Sequential minibatches of 100 through the 1,000 training examples.
        assert_eq!(indices.len(), 100);
        assert_eq!(indices[0], ((i % 10) * 100) as u64);
        assert!(step["loss"].as_f64().unwrap().is_finite());
        let expected = if i % 10 == 0 {
            serde_json::json!("sample")
        } else {
            serde_json::Value::Null
        };
        assert_eq!(step["reestimated"], expected, "step {i}");
        for name in ["alpha", "beta", "gamma"] {
            let layers = step[name].as_array().unwrap();
            assert_eq!(layers.len(), 2);
            assert!(layers.iter().all(|l| l.as_array().unwrap().len() == 16));
        }
    }
    // γ was re-estimated at the first step: not all ones any more.
    assert!(steps[0]["gamma"][0]
        .as_array()
        .unwrap()
        .iter()
        .any(|g| g.as_f64().unwrap() != 1.0));

    // The initial network: the export format, plain tanh (α = β = 0, γ = 1).
    let init = dir.path().join(header["init"].as_str().unwrap());
    let bytes = std::fs::read(&init).unwrap();
    let tensors = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let meta = meta.metadata().as_ref().unwrap();
    assert_eq!(meta["format"], "ltmlp-mlp-1");
    assert_eq!(meta["sizes"], "[49,16,16,10]");
    let gamma = tensors.tensor("layer1.gamma").unwrap();
    assert!(gamma
        .data()
        .chunks_exact(8)
        .all(|b| f64::from_le_bytes(b.try_into().unwrap()) == 1.0));
    assert!(tensors.tensor("layer3.from0.weight").is_ok());
}

#[test]
fn an_unwritable_trace_is_refused_before_training() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("missing").join("trace.jsonl");
    let out = dir.path().join("run");
    let run = ltmlp(&[
        "run",
        "presets/tiny.toml",
        "--out",
        out.to_str().unwrap(),
        "--trace",
        trace.to_str().unwrap(),
    ]);
    assert!(!run.status.success());
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        stderr.contains("--trace") && stderr.contains("cannot write"),
        "{stderr}"
    );
    assert!(!out.join("metrics.jsonl").exists());
}
