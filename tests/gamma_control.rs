//! The controls of γ's blow-up (`transforms.gamma_control`): every re-estimation stays exact
//! under each of them (f64), the momentum follows γ's rescaling, steps are divided by γ^p,
//! and a jump of the training loss rolls the network back at half the rate.

use std::sync::Arc;

use ltmlp::data::{self, DataSource};
use ltmlp::net::{GammaControl, Network, Param};
use ltmlp::preset::PresetFile;
use ltmlp::protocol::TransformCause;
use ltmlp::train::optimizer::{Optimize, Optimizer};
use ltmlp::train::{AnyData, Experiment, Trainer};

/// A 16-16 α β γ classifier on the embedded subset, f64, with `control` and `extra` settings.
fn trainer(control: GammaControl, extra: &[&str]) -> Trainer<f64> {
    let file = PresetFile::builtin_default().unwrap();
    let mut overrides = vec![
        "model.hidden=[16, 16]".to_string(),
        "train.precision=\"f64\"".to_string(),
        format!("transforms.gamma_control=\"{}\"", control.name()),
    ];
    overrides.extend(extra.iter().map(|s| s.to_string()));
    let resolved = file.resolve(Some("abg"), &overrides).unwrap();
    let raw = data::load(&DataSource::Embedded).unwrap();
    let exp = Experiment::from_raw(resolved.clone(), &raw, String::new()).unwrap();
    let AnyData::F64(data) = exp.data else {
        panic!("f64 expected")
    };
    let net = Network::<f64>::init(exp.topology.clone(), 5);
    Trainer::new(&resolved, Arc::clone(&data), net)
}

/// The momentum of block W[m][l], under SGD or Muon (both keep it in the weights' coordinates).
fn velocity(t: &Trainer<f64>, m: usize, l: usize) -> ndarray::Array2<f64> {
    match t.snapshot().optimizer {
        Optimizer::Sgd(sgd) => sgd.velocity.weights[m][l].clone().unwrap(),
        Optimizer::Muon(muon) => muon.velocity.weights[m][l].clone().unwrap(),
        other => panic!("a velocity expected, not {:?}", other.kind()),
    }
}

#[test]
fn every_control_keeps_each_reestimation_and_switch_exact() {
    for control in GammaControl::ALL {
        let mut t = trainer(control, &[]);
        for _ in 0..30 {
            t.step().unwrap();
        }
        t.toggle(Param::Gamma).unwrap();
        t.step().unwrap();
        t.toggle(Param::Gamma).unwrap();
        let events = t.take_transform_events();
        assert!(events.len() >= 32, "{control:?}: {} events", events.len());
        for e in &events {
            assert!(
                e.max_output_change < 1e-10,
                "{control:?}: {:?} moved the output by {}",
                e.cause,
                e.max_output_change
            );
        }
    }
}

/// SGD's momentum, and Muon's of a hidden layer's matrix (W[2][1] of the 16-16 network), follow
/// γ alike.
#[test]
fn the_momentum_follows_gammas_rescaling_only_under_momentum_and_step() {
    let optimizers: [&[&str]; 2] = [&[], &["train.optimizer=\"muon\""]];
    for (control, extra) in GammaControl::ALL
        .into_iter()
        .flat_map(|c| optimizers.map(|o| (c, o)))
    {
        let mut t = trainer(control, extra);
        for _ in 0..10 {
            t.step().unwrap();
        }
        let gamma_before = t.net.transforms[1].as_ref().unwrap().gamma.clone();
        let (v_out, v_in) = (velocity(&t, 2, 1), velocity(&t, 1, 0));
        // Switching γ off sets every γ to 1.
        t.toggle(Param::Gamma).unwrap();
        let gamma_after = t.net.transforms[1].as_ref().unwrap().gamma.clone();
        let ratio = &gamma_before / &gamma_after;
        assert!(
            ratio.iter().any(|r| (r - 1.0).abs() > 1e-6),
            "γ did not move"
        );
        let expected = if control.rescales_momentum() {
            &v_out * &ratio
        } else {
            v_out.clone()
        };
        let got = velocity(&t, 2, 1);
        let off = (&got - &expected)
            .iter()
            .fold(0.0f64, |a, d| a.max(d.abs()));
        assert!(off < 1e-12, "{control:?} {extra:?}: velocity off by {off}");
        assert_eq!(velocity(&t, 1, 0), v_in, "incoming momentum untouched");
    }
}

/// From the same state, one step without momentum: under `step` with power p, each weight of
/// unit i's outgoing column moves by the papers' step divided by γ_i^p.
#[test]
fn step_divides_each_units_outgoing_steps_by_its_gamma_to_the_power() {
    let power = 0.5;
    let mut papers = trainer(GammaControl::Off, &["train.momentum=0.0"]);
    for _ in 0..5 {
        papers.step().unwrap();
    }
    let mut divided = trainer(
        GammaControl::Step,
        &["train.momentum=0.0", "transforms.gamma_step_power=0.5"],
    );
    divided.restore(papers.snapshot());
    let before = papers.net.params.weights[2][1].clone().unwrap();
    let gamma_before = papers.net.transforms[1].as_ref().unwrap().gamma.clone();
    papers.step().unwrap();
    divided.step().unwrap();
    let gamma = papers.net.transforms[1].as_ref().unwrap().gamma.clone();
    assert_eq!(gamma, divided.net.transforms[1].as_ref().unwrap().gamma);
    // The re-estimation within the step rescaled the columns by γ_old/γ_new in both runs.
    let reestimated = &before * &(&gamma_before / &gamma);
    let step_papers = papers.net.params.weights[2][1].as_ref().unwrap() - &reestimated;
    let step_divided = divided.net.params.weights[2][1].as_ref().unwrap() - &reestimated;
    let scale = gamma.mapv(|g| g.powf(-power));
    let off = (&step_divided - &(&step_papers * &scale))
        .iter()
        .fold(0.0f64, |a, d| a.max(d.abs()));
    let size = step_papers.iter().fold(0.0f64, |a, d| a.max(d.abs()));
    assert!(size > 1e-6, "the step is not empty");
    assert!(off < 1e-9 * size.max(1.0), "off by {off} of {size}");
}

/// At a rate far too large the papers' rule blows up; the rollback sees the loss jump, brings
/// back a state kept before it and halves the rate.
#[test]
fn a_jump_of_the_training_loss_rolls_back_at_half_the_rate() {
    let run = |control| {
        let mut t = trainer(control, &["train.learning_rate=3.0"]);
        let mut rollbacks = Vec::new();
        for _ in 0..200 {
            let _ = t.step();
            for e in t.take_transform_events() {
                if let TransformCause::Rollback { to } = e.cause {
                    rollbacks.push((e.iteration, to, t.learning_rate()));
                }
            }
        }
        (t, rollbacks)
    };
    let (_, none) = run(GammaControl::Off);
    assert!(none.is_empty(), "the papers' rule never rolls back");
    let (t, rollbacks) = run(GammaControl::Rollback);
    let &(at, to, rate) = rollbacks.first().expect("a rollback at rate 3");
    assert!(to < at, "back to an earlier state: {to} < {at}");
    assert!(rate <= 1.5 + 1e-12, "rate halved: {rate}");
    assert!(t.learning_rate() < 3.0);
    assert!(
        rollbacks.len() <= ltmlp::train::rollback::MAX_ROLLBACKS,
        "{} rollbacks",
        rollbacks.len()
    );
}

/// The rollback's watch and kept states are part of the checkpoint: a trainer restored a few
/// minibatches before the jump rolls back to the same iteration at the same rate, and ends
/// with the same network, as the uninterrupted one (with a fresh watch it would keep the state
/// at the restore and go back there instead).
#[test]
fn a_run_resumed_just_before_a_jump_rolls_back_as_the_uninterrupted_one() {
    use ltmlp::train::checkpoint::{self, AnyState, Checkpoint};
    let settings = ["train.learning_rate=3.0"];
    let mut first = None;
    let mut whole = trainer(GammaControl::Rollback, &settings);
    let mut whole_rollbacks = Vec::new();
    for _ in 0..200 {
        let _ = whole.step();
        for e in whole.take_transform_events() {
            if let TransformCause::Rollback { to } = e.cause {
                first.get_or_insert(e.iteration);
                whole_rollbacks.push((e.iteration, to, whole.learning_rate()));
            }
        }
    }
    let at = first.expect("a rollback at rate 3");
    // Stop a few minibatches before the first jump, save, restore into a fresh trainer.
    let stop = at.saturating_sub(3).max(1);
    let mut part = trainer(GammaControl::Rollback, &settings);
    let mut rollbacks = Vec::new();
    while part.snapshot().iteration < stop {
        let _ = part.step();
        part.take_transform_events();
    }
    let bytes = checkpoint::encode(&Checkpoint {
        config_toml: String::new(),
        metrics_lines: 0,
        clock_seconds: 0.0,
        state: AnyState::F64(part.snapshot()),
        metrics_mark: None,
        data_fingerprint: None,
    })
    .unwrap();
    let AnyState::F64(state) = checkpoint::decode(std::path::Path::new("cp"), &bytes)
        .unwrap()
        .state
    else {
        panic!("f64 expected")
    };
    let mut resumed = trainer(GammaControl::Rollback, &settings);
    resumed.restore(state);
    for _ in stop..200 {
        let _ = resumed.step();
        for e in resumed.take_transform_events() {
            if let TransformCause::Rollback { to } = e.cause {
                rollbacks.push((e.iteration, to, resumed.learning_rate()));
            }
        }
    }
    assert_eq!(rollbacks, whole_rollbacks);
    assert_eq!(resumed.net, whole.net);
}

/// `transforms.gamma_control` is a live setting: a run started under the papers' rule at a rate
/// that blows it up rolls back once the control is set to `rollback` mid-run (as `ctl set` and
/// the editor do, through the preset's own check), and a value the preset refuses is refused.
#[test]
fn gamma_control_can_be_set_while_the_run_trains() {
    use ltmlp::train::tunables;
    let file = PresetFile::builtin_default().unwrap();
    let overrides: Vec<String> = [
        "model.hidden=[16, 16]",
        "train.precision=\"f64\"",
        "transforms.gamma_control=\"off\"",
        "train.learning_rate=3.0",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let resolved = file.resolve(Some("abg"), &overrides).unwrap();
    let refused = tunables::retune(&resolved, "transforms.gamma_control", "sideways").unwrap_err();
    assert!(
        refused.contains("`sideways`") && refused.contains("`rollback`"),
        "{refused}"
    );
    let next = tunables::retune(&resolved, "transforms.gamma_control", "rollback").unwrap();
    assert_eq!(next.preset.transforms.gamma_control, GammaControl::Rollback);
    let raw = data::load(&DataSource::Embedded).unwrap();
    let exp = Experiment::from_raw(resolved.clone(), &raw, String::new()).unwrap();
    let AnyData::F64(data) = exp.data else {
        panic!("f64 expected")
    };
    let mut t = Trainer::new(
        &resolved,
        data,
        Network::<f64>::init(exp.topology.clone(), 5),
    );
    let mut rollbacks = 0;
    for i in 0..200 {
        if i == 2 {
            t.retune(&next.preset);
        }
        let _ = t.step();
        rollbacks += t
            .take_transform_events()
            .iter()
            .filter(|e| matches!(e.cause, TransformCause::Rollback { .. }))
            .count();
    }
    assert!(rollbacks > 0, "no rollback after the control was set live");
    assert!(t.learning_rate() < 3.0);
}

/// The dashboard's case: an α β run of the default preset at rate 0.2 with `g` pressed at
/// iteration 100 (replayed as the dashboard records it). The papers' rule blows the network up
/// into saturation (82.7 % validation error after 12 epochs, measured); the default control
/// keeps the run: final error near its best, no layer saturated.
#[test]
fn a_replayed_g_toggle_at_rate_two_tenths_no_longer_ruins_the_run() {
    use ltmlp::protocol::{Command, Steer};
    let run = |control: GammaControl| {
        let file = PresetFile::builtin_default().unwrap();
        let overrides = [
            "train.learning_rate=0.2".to_string(),
            "train.epochs=8".to_string(),
            format!("transforms.gamma_control=\"{}\"", control.name()),
        ];
        let resolved = file.resolve(Some("ab"), &overrides).unwrap();
        let exp = Experiment::prepare(resolved, None).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("run");
        let start = ltmlp::headless::Start {
            replay: vec![Steer {
                iteration: 100,
                command: Command::Toggle(Param::Gamma),
                ok: true,
                message: "γ switched on".to_string(),
            }],
            ..Default::default()
        };
        let summary = ltmlp::headless::run(exp, &out, start).unwrap();
        let metrics = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
        let last: serde_json::Value =
            serde_json::from_str(metrics.lines().last().unwrap()).unwrap();
        let saturated = last["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["saturated_fraction"].as_f64().unwrap())
            .fold(0.0f64, f64::max);
        let gamma_on = last["flags"]["gamma"].as_bool().unwrap();
        (summary, saturated, gamma_on)
    };
    let (papers, papers_saturated, on) = run(GammaControl::Off);
    assert!(on, "the replay switched γ on");
    let papers_final = papers.final_validation_error.unwrap();
    assert!(
        papers_final > 20.0 && papers_saturated > 0.5,
        "the papers' rule was expected to blow up here: {papers_final} %, {papers_saturated}"
    );
    let (controlled, saturated, on) = run(GammaControl::default());
    assert!(on);
    let (last, best) = (
        controlled.final_validation_error.unwrap(),
        controlled.best_validation_error.unwrap(),
    );
    assert!(
        last < 8.0 && last <= 1.5 * best,
        "final {last} %, best {best} %"
    );
    assert!(saturated < 0.2, "saturated share {saturated}");
}
