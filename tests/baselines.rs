//! The modern baselines as a user meets them: `bn`, `ln` and Adam train, their combinations
//! with α β γ are refused with a message that names the key and the way out (in the preset and
//! live), and nothing changes when a switch is refused.

use std::sync::Arc;

use ltmlp::data::{self, DataSource};
use ltmlp::net::{Network, Norm, Param, TransformError};
use ltmlp::preset::PresetFile;
use ltmlp::train::{AnyData, Experiment, Trainer};

fn trainer(variant: &str, extra: &[&str]) -> Trainer<f32> {
    let file = PresetFile::builtin_default().unwrap();
    let mut overrides: Vec<String> = vec!["model.hidden=[32, 32]".into()];
    overrides.extend(extra.iter().map(|s| s.to_string()));
    let resolved = file.resolve(Some(variant), &overrides).unwrap();
    let raw = data::load(&DataSource::Embedded).unwrap();
    let exp = Experiment::from_raw(resolved.clone(), &raw, String::new()).unwrap();
    let AnyData::F32(data) = exp.data else {
        panic!("f32 expected")
    };
    let net = Network::<f32>::init(exp.topology.clone(), 3);
    Trainer::new(&resolved, Arc::clone(&data), net)
}

/// Mean training loss of minibatches `from..to` of a fresh run.
fn loss_between(t: &mut Trainer<f32>, from: usize, to: usize) -> f64 {
    let mut sum = 0.0;
    for i in 0..to {
        let loss = t.step().unwrap();
        if i >= from {
            sum += loss.mean();
        }
    }
    sum / (to - from) as f64
}

#[test]
fn every_baseline_learns() {
    let adam = ["train.optimizer=\"adam\"", "train.learning_rate=0.002"];
    for (variant, extra) in [
        ("bn", &[][..]),
        ("ln", &[][..]),
        ("none", &adam[..]),
        ("bn", &adam[..]),
    ] {
        let mut t = trainer(variant, extra);
        let early = loss_between(&mut t, 0, 5);
        let late = loss_between(&mut t, 55, 60);
        assert!(
            late < 0.6 * early,
            "{variant} {extra:?}: loss {early:.3} → {late:.3}"
        );
    }
}

#[test]
fn the_variant_decides_the_normalisation() {
    for (variant, norm) in [
        ("none", Norm::None),
        ("abg", Norm::None),
        ("bn", Norm::Batch),
        ("ln", Norm::Layer),
    ] {
        let t = trainer(variant, &[]);
        assert_eq!(t.net.topology.norm(), norm, "{variant}");
        let normalised = t.net.params.gains.iter().filter(|g| !g.is_empty()).count();
        assert_eq!(normalised, if norm == Norm::None { 0 } else { 2 });
    }
}

#[test]
fn switching_alpha_on_a_normalised_or_adam_run_is_refused_and_changes_nothing() {
    let adam = ["train.optimizer=\"adam\"", "train.learning_rate=0.002"];
    for (variant, extra, why) in [
        ("bn", &[][..], "batch-normalised"),
        ("ln", &[][..], "layer-normalised"),
        ("none", &adam[..], "Adam"),
    ] {
        let mut t = trainer(variant, extra);
        for _ in 0..3 {
            t.step().unwrap();
        }
        let before = t.net.clone();
        for param in [Param::Alpha, Param::Beta, Param::Gamma] {
            let err = t.toggle(param).unwrap_err();
            assert!(err.to_string().contains(why), "{variant}: {err}");
            assert!(!t.flags().any());
            assert_eq!(
                t.net, before,
                "{variant}: a refused switch changed the network"
            );
        }
        if variant != "none" {
            assert!(matches!(
                t.toggle(Param::Alpha),
                Err(TransformError::Normalised(_))
            ));
        }
    }
}

#[test]
fn presets_refuse_adam_with_alpha_beta_gamma_and_bad_adam_constants() {
    let file = PresetFile::builtin_default().unwrap();
    for variant in ["ab", "abg"] {
        let err = file
            .resolve(Some(variant), &["train.optimizer=\"adam\"".into()])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("train.optimizer") && err.contains("optimizer = \"sgd\""),
            "{err}"
        );
    }
    for (key, bad) in [
        ("train.adam_beta1", "1.0"),
        ("train.adam_beta2", "-0.1"),
        ("train.adam_epsilon", "0.0"),
    ] {
        let err = file
            .resolve(
                Some("none"),
                &["train.optimizer=\"adam\"".into(), format!("{key}={bad}")],
            )
            .unwrap_err()
            .to_string();
        assert!(err.contains(key), "{key}={bad}: {err}");
    }
    let err = file.resolve(Some("bnx"), &[]).unwrap_err().to_string();
    assert!(err.contains("none, ab, abg, bn, ln"), "{err}");
    // Adam's settings are written to config.toml only when Adam is chosen.
    let sgd = file.resolve(Some("none"), &[]).unwrap();
    assert!(!sgd.to_toml().contains("optimizer"));
    let adam = file
        .resolve(Some("none"), &["train.optimizer=\"adam\"".into()])
        .unwrap();
    assert!(adam.to_toml().contains("optimizer = \"adam\""));
}
