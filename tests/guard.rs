//! The γ guard on a unit made to collapse: every mode finds it, acts once, keeps the network
//! function (f64), and its effect holds through later re-estimations.

use std::sync::Arc;

use ltmlp::data::{self, DataSource};
use ltmlp::net::Network;
use ltmlp::preset::PresetFile;
use ltmlp::protocol::TransformCause;
use ltmlp::train::{AnyData, Experiment, Trainer};

const LAYER: usize = 1;
const UNIT: usize = 3;

/// A 16-16 α β γ classifier after a few steps, with unit 3 of layer 1 collapsed: its incoming
/// weights and bias shrunk to almost nothing (the function changes here, on purpose), then α
/// β γ re-estimated so that γ climbs to its cap as the papers describe.
fn collapsed(mode: &str) -> Trainer<f64> {
    let file = PresetFile::builtin_default().unwrap();
    let overrides = [
        "model.hidden=[16, 16]".to_string(),
        "train.precision=\"f64\"".to_string(),
        format!("guard.mode=\"{mode}\""),
        "guard.gamma_cap=2.0".to_string(),
    ];
    let resolved = file.resolve(Some("abg"), &overrides).unwrap();
    let raw = data::load(&DataSource::Embedded).unwrap();
    let exp = Experiment::from_raw(resolved.clone(), &raw, String::new()).unwrap();
    let AnyData::F64(data) = exp.data else {
        panic!("f64 expected")
    };
    let net = Network::<f64>::init(exp.topology.clone(), 3);
    let mut t = Trainer::new(&resolved, Arc::clone(&data), net);
    for _ in 0..5 {
        t.step().unwrap();
    }
    for k in 0..LAYER {
        if let Some(w) = t.net.params.weights[LAYER][k].as_mut() {
            w.row_mut(UNIT).mapv_inplace(|v| v * 1e-6);
        }
    }
    t.net.params.biases[LAYER][UNIT] = 0.0;
    t.reestimate_now().unwrap();
    let gamma = t.net.transforms[LAYER].as_ref().unwrap().gamma[UNIT];
    assert!(
        gamma > 5.0,
        "γ of the collapsed unit should be near its cap: {gamma}"
    );
    t
}

/// Runs the guard on a fresh probe; returns its events.
fn guard(t: &mut Trainer<f64>) -> Vec<ltmlp::train::TransformEvent> {
    let layers = t.layer_stats();
    assert!(
        layers[0].per_unit.collapsed[UNIT],
        "unit {UNIT} is not collapsed"
    );
    t.take_transform_events();
    let acted = t.guard(&layers).unwrap();
    let events = t.take_transform_events();
    assert_eq!(acted, events.len());
    events
}

fn acted_on_the_unit(events: &[ltmlp::train::TransformEvent]) -> bool {
    events.iter().any(|e| {
        matches!(e.cause, TransformCause::Guard { layer, unit, .. } if layer == LAYER && unit == UNIT)
    })
}

#[test]
fn off_does_nothing() {
    let mut t = collapsed("off");
    let before = t.net.clone();
    assert!(guard(&mut t).is_empty());
    assert_eq!(t.net, before);
}

#[test]
fn warn_reports_once_and_changes_nothing() {
    let mut t = collapsed("warn");
    let before = t.net.clone();
    let events = guard(&mut t);
    assert!(acted_on_the_unit(&events), "{events:?}");
    assert_eq!(t.net, before);
    assert!(
        !acted_on_the_unit(&guard(&mut t)),
        "a unit still collapsed is not warned again"
    );
}

#[test]
fn cap_bounds_gamma_now_and_at_every_later_reestimation() {
    let mut t = collapsed("cap");
    let events = guard(&mut t);
    assert!(acted_on_the_unit(&events));
    for e in &events {
        assert!(
            e.max_output_change < 1e-10,
            "output moved {}",
            e.max_output_change
        );
    }
    for _ in 0..3 {
        assert!(t.net.transforms[LAYER].as_ref().unwrap().gamma[UNIT] <= 2.0 + 1e-12);
        t.reestimate_now().unwrap();
    }
    assert!(
        !acted_on_the_unit(&guard(&mut t)),
        "a capped unit is left alone"
    );
    let layers = t.layer_stats();
    assert_eq!(
        layers[0].per_unit.guarded[UNIT],
        Some(ltmlp::stats::GuardMark::Capped)
    );
}

#[test]
fn unit_off_holds_that_units_gamma_at_one_and_no_other() {
    let mut t = collapsed("unit-off");
    let events = guard(&mut t);
    assert!(acted_on_the_unit(&events));
    assert!(events.iter().all(|e| e.max_output_change < 1e-10));
    t.reestimate_now().unwrap();
    let gamma = &t.net.transforms[LAYER].as_ref().unwrap().gamma;
    assert_eq!(gamma[UNIT], 1.0);
    assert!(
        gamma
            .iter()
            .enumerate()
            .any(|(j, &g)| j != UNIT && g != 1.0),
        "the other units keep their re-estimated γ"
    );
}

#[test]
fn reinit_gives_the_unit_fresh_weights_without_changing_the_function() {
    let mut t = collapsed("reinit");
    let events = guard(&mut t);
    assert!(acted_on_the_unit(&events));
    assert!(events.iter().all(|e| e.max_output_change < 1e-10));
    let net = &t.net;
    let incoming = net.params.weights[LAYER][0]
        .as_ref()
        .unwrap()
        .row(UNIT)
        .to_owned();
    assert!(
        incoming.iter().any(|w| w.abs() > 1e-3),
        "incoming weights drawn afresh"
    );
    for m in net.topology.targets(LAYER) {
        let w = net.params.weights[m][LAYER].as_ref().unwrap();
        assert!(w.column(UNIT).iter().all(|&v| v == 0.0), "outgoing to {m}");
    }
    let tr = net.transforms[LAYER].as_ref().unwrap();
    assert_eq!(
        (tr.alpha[UNIT], tr.beta[UNIT], tr.gamma[UNIT]),
        (0.0, 0.0, 1.0)
    );
    let state = t.snapshot();
    let ltmlp::train::optimizer::Optimizer::Sgd(sgd) = &state.optimizer else {
        panic!("SGD expected")
    };
    let v = sgd.velocity.weights[LAYER][0].as_ref().unwrap();
    assert!(v.row(UNIT).iter().all(|&v| v == 0.0), "momentum reset");
    // Training goes on, and the unit is no longer collapsed.
    for _ in 0..5 {
        t.step().unwrap();
    }
    assert!(!t.layer_stats()[0].per_unit.collapsed[UNIT]);
}
