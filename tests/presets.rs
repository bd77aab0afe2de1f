//! Presets: every shipped preset resolves for every variant, every invalid fixture fails with
//! its own message naming the file, and `--set` overrides apply or explain themselves.

use std::fs;
use std::path::{Path, PathBuf};

use ltmlp::preset::{PresetFile, VARIANTS};

fn files_in(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_shipped_preset_resolves_for_every_variant() {
    let presets = files_in("presets");
    assert!(
        presets.len() >= 4,
        "expected the shipped presets, found {presets:?}"
    );
    for path in presets {
        let file = PresetFile::read(&path).unwrap_or_else(|e| panic!("{e}"));
        for variant in VARIANTS {
            if variant != "none" && file.preset.model.shortcuts == ltmlp::net::Shortcuts::Adjacent {
                continue;
            }
            let resolved = file
                .resolve(Some(variant), &[])
                .unwrap_or_else(|e| panic!("{variant}: {e}"));
            assert_eq!(resolved.variant, variant);
            // The resolved config is itself a preset that resolves to the same experiment.
            let again = PresetFile::parse(Path::new("config.toml"), resolved.to_toml())
                .unwrap()
                .resolve(None, &[])
                .unwrap();
            assert_eq!(again.to_toml(), resolved.to_toml(), "{}", path.display());
            assert_eq!(again.flags, resolved.flags);
        }
    }
}

#[test]
fn the_builtin_default_is_presets_default_toml() {
    let builtin = PresetFile::builtin_default().unwrap();
    let on_disk = PresetFile::read(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/presets/default.toml"
    )))
    .unwrap();
    assert_eq!(builtin.preset, on_disk.preset);
}

#[test]
fn variants_apply_their_own_settings() {
    let path = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/presets/mnist-800x2.toml"
    ));
    let file = PresetFile::read(path).unwrap();
    let rate = |v: &str| {
        file.resolve(Some(v), &[])
            .unwrap()
            .preset
            .train
            .learning_rate
    };
    assert_eq!((rate("none"), rate("ab"), rate("abg")), (0.05, 0.7, 0.2));
    let flags = file.resolve(Some("ab"), &[]).unwrap().flags;
    assert!(flags.alpha && flags.beta && !flags.gamma);
}

#[test]
fn every_invalid_fixture_fails_with_its_own_message() {
    let fixtures = files_in("tests/fixtures/invalid-presets");
    assert!(fixtures.len() >= 10);
    let mut messages = Vec::new();
    for path in fixtures {
        let text = fs::read_to_string(&path).unwrap();
        let expected = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .unwrap_or_else(|| panic!("{} lacks an `# expect:` line", path.display()))
            .to_string();
        let result = PresetFile::read(&path).and_then(|f| f.resolve(None, &[]));
        let message = match result {
            Ok(_) => panic!("{} was accepted", path.display()),
            Err(e) => e.to_string(),
        };
        assert!(
            message.contains(&expected),
            "{}:\n  expected `{expected}`\n  got {message}",
            path.display()
        );
        assert!(
            message.contains(path.to_str().unwrap()),
            "message must name the file: {message}"
        );
        assert!(!messages.contains(&message), "duplicate message {message}");
        messages.push(message);
    }
}

#[test]
fn unknown_keys_name_their_line_and_the_accepted_keys() {
    let path = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/invalid-presets/unknown-key.toml"
    ));
    let message = PresetFile::read(path).unwrap_err().to_string();
    assert!(message.contains("unknown-key.toml:9:"), "{message}");
    assert!(
        message.contains("learning_rate"),
        "the accepted keys are listed: {message}"
    );
}

#[test]
fn set_overrides_apply_and_bad_ones_explain_themselves() {
    let file = PresetFile::builtin_default().unwrap();
    let resolved = file
        .resolve(
            Some("abg"),
            &[
                "train.learning_rate=0.3".into(),
                "model.hidden=[32, 16]".into(),
                "transforms.gamma_form=rms".into(),
            ],
        )
        .unwrap();
    assert_eq!(
        resolved.preset.train.learning_rate, 0.3,
        "--set wins over [variants.abg]"
    );
    assert_eq!(resolved.preset.model.hidden, vec![32, 16]);
    assert_eq!(
        resolved.preset.transforms.gamma_form,
        ltmlp::net::GammaForm::Rms
    );

    let unknown = file
        .resolve(None, &["train.lerning_rate=0.3".into()])
        .unwrap_err()
        .to_string();
    assert!(
        unknown.contains("--set train.lerning_rate=0.3") && unknown.contains("unknown field"),
        "{unknown}"
    );
    let no_equals = file
        .resolve(None, &["train.epochs".into()])
        .unwrap_err()
        .to_string();
    assert!(no_equals.contains("expected KEY=VALUE"), "{no_equals}");
    let bad_value = file
        .resolve(None, &["train.epochs=-3".into()])
        .unwrap_err()
        .to_string();
    assert!(bad_value.contains("--set train.epochs=-3"), "{bad_value}");
    let nan = file
        .resolve(None, &["train.learning_rate=nan".into()])
        .unwrap_err()
        .to_string();
    assert!(
        nan.contains("train.learning_rate") && nan.contains("not a positive number"),
        "{nan}"
    );
}

#[test]
fn a_run_configuration_from_before_the_gamma_control_keeps_the_papers_rule() {
    use ltmlp::net::GammaControl;
    let dir = tempfile::tempdir().unwrap();
    let resolved = PresetFile::builtin_default()
        .unwrap()
        .resolve(Some("abg"), &[])
        .unwrap();
    let written = resolved.to_toml();
    assert!(written.contains("gamma_control"), "{written}");
    // Today's configuration says which control it ran under.
    let today = dir.path().join("today.toml");
    fs::write(&today, &written).unwrap();
    let read = PresetFile::read_config(&today).unwrap();
    assert_eq!(read.preset.transforms.gamma_control, GammaControl::Rollback);
    // One written before the key existed ran under the papers' rule, and is read so.
    let old = dir.path().join("old.toml");
    let without: String = written
        .lines()
        .filter(|l| !l.trim_start().starts_with("gamma_control"))
        .map(|l| format!("{l}\n"))
        .collect();
    fs::write(&old, without).unwrap();
    let read = PresetFile::read_config(&old).unwrap();
    assert_eq!(read.preset.transforms.gamma_control, GammaControl::Off);
    // A preset (not a run's configuration) without the key gets today's default.
    let preset = PresetFile::read(&old).unwrap();
    assert_eq!(
        preset.preset.transforms.gamma_control,
        GammaControl::Rollback
    );
}
