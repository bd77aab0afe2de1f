//! Synthetic trainer events for the TUI tests: fixed numbers, no clocks.
#![allow(dead_code)]

use ltmlp::net::{Flags, Param, UnitKind};
use ltmlp::protocol::TransformCause;
use ltmlp::stats::{LayerStats, Range, UnitStats};
use ltmlp::train::{EpochMetrics, Event, Progress, RunInfo, RunState, Summary, TransformEvent};
use ltmlp::tui::App;

pub const AB: Flags = Flags {
    alpha: true,
    beta: true,
    gamma: false,
};

pub fn info() -> RunInfo {
    RunInfo {
        preset: "default".into(),
        variant: "ab".into(),
        data: "embedded MNIST subset (6,000 + 1,000)".into(),
        topology: "784-256-256-10(softmax)".into(),
        weights: 479_904,
        epochs: 20,
        iterations_per_epoch: 50,
        batch_size: 100,
        classify: true,
        precision: "f32".into(),
        out_dir: Some("runs/default-ab-test".into()),
        monitor: Default::default(),
        optimizer: Default::default(),
        task: None,
        trainer: None,
    }
}

/// A hidden layer whose units run through every std level, with a few saturated and
/// collapsed ones.
pub fn layer(index: usize, units: usize, shift: f64) -> LayerStats {
    let mut u = UnitStats::default();
    for j in 0..units {
        let std = 0.01 * (1.0 + ((j * 37 + index * 11) % 150) as f64) * shift;
        u.mean_out.push(0.01 * ((j % 7) as f64 - 3.0));
        u.mean_slope.push(0.4 + 0.001 * (j % 50) as f64);
        u.std_out.push(std);
        u.std_pre.push(std * 1.5);
        let slope = if j % 23 == 5 {
            0.03
        } else {
            0.2 + 0.7 * ((j * 13 + index * 7) % 100) as f64 / 100.0
        };
        u.tanh_slope.push(slope);
        u.saturated.push(j % 23 == 5);
        u.collapsed.push(j % 31 == 7);
    }
    let n = units as f64;
    LayerStats {
        layer: index,
        kind: UnitKind::Tanh,
        units,
        mean_out: u.mean_out.iter().sum::<f64>() / n,
        mean_slope: u.mean_slope.iter().sum::<f64>() / n,
        var_out: u.std_out.iter().map(|s| s * s).sum::<f64>() / n,
        std_pre: u.std_pre.iter().sum::<f64>() / n,
        saturated_fraction: u.saturated.iter().filter(|&&b| b).count() as f64 / n,
        collapsed_fraction: u.collapsed.iter().filter(|&&b| b).count() as f64 / n,
        gamma_capped_fraction: 0.0,
        alpha: Range {
            min: -0.81,
            max: -0.42,
        },
        beta: Range {
            min: -0.12,
            max: 0.09,
        },
        gamma: Range { min: 1.0, max: 1.0 },
        per_unit: u,
    }
}

pub fn layers() -> Vec<LayerStats> {
    vec![layer(1, 256, 1.0), layer(2, 256, 0.5)]
}

pub fn progress(iteration: u64, loss: f64) -> Progress {
    Progress {
        epoch: (iteration / 50) as usize,
        iteration,
        learning_rate: 0.1,
        momentum: 0.9,
        examples_per_second: 12_345.0,
        elapsed_seconds: iteration as f64 * 0.01,
        batch_loss: loss,
    }
}

pub fn epoch(epoch: usize, validation_loss: f64) -> EpochMetrics {
    let iteration = epoch as u64 * 50;
    EpochMetrics {
        epoch,
        iteration,
        elapsed_seconds: iteration as f64 * 0.01,
        train_loss: validation_loss * 0.9,
        train_error: Some(validation_loss * 20.0),
        validation_loss,
        validation_error: Some(validation_loss * 25.0),
        test_loss: validation_loss,
        test_error: Some(validation_loss * 25.0),
        learning_rate: 0.1,
        momentum: 0.9,
        examples_per_second: 12_345.0,
        flags: AB,
        layers: layers(),
        transform_events: vec![TransformEvent {
            iteration,
            cause: TransformCause::Scheduled,
            flags: AB,
            max_output_change: 4.2e-7,
        }],
        r2: None,
        wall: None,
        confusion: None,
    }
}

pub fn switch(iteration: u64, param: Param, on: bool, flags: Flags) -> Event {
    Event::Transform(TransformEvent {
        iteration,
        cause: TransformCause::Switch { param, on },
        flags,
        max_output_change: 3.1e-9,
    })
}

/// A dashboard 3.4 epochs into a 20-epoch run, with a switch of α off and on.
pub fn mid_run() -> App {
    let mut app = App::new(AB);
    app.on_event(Event::Started(info()));
    app.on_event(Event::State(RunState::Running));
    app.on_event(Event::Layers {
        iteration: 0,
        layers: layers(),
    });
    for it in (5..=170u64).step_by(5) {
        let loss = 2.3 * (-(it as f64) / 40.0).exp() + 0.25;
        app.on_event(Event::Progress(progress(it, loss)));
        if it % 50 == 0 {
            let e = (it / 50) as usize;
            app.on_event(Event::Epoch(Box::new(epoch(e, 0.6 / e as f64 + 0.2))));
        }
    }
    let no_alpha = Flags { alpha: false, ..AB };
    app.on_event(switch(160, Param::Alpha, false, no_alpha));
    app.on_event(switch(165, Param::Alpha, true, AB));
    app.on_event(Event::Log("learning rate → 0.1250".into()));
    app
}

pub fn summary(state: RunState, reason: Option<&str>) -> Summary {
    Summary {
        preset: "default".into(),
        variant: "ab".into(),
        state,
        reason: reason.map(str::to_string),
        epochs_completed: 3,
        iterations: 172,
        wall_seconds: 1.72,
        train_seconds: 1.5,
        reestimate_seconds: 0.0,
        examples_per_second: 12_345.0,
        final_train_loss: Some(0.3),
        final_validation_loss: Some(0.4),
        final_validation_error: Some(10.0),
        final_test_loss: Some(0.4),
        final_test_error: Some(10.5),
        best_epoch: Some(3),
        best_validation_loss: Some(0.4),
        best_validation_error: Some(10.0),
        test_loss_at_best: Some(0.4),
        test_error_at_best: Some(10.5),
        out_dir: Some("runs/default-ab-test".into()),
        steering_actions: 0,
        wall: None,
        per_class_error: None,
        monitor: Default::default(),
    }
}

/// The same run after the loss became NaN at iteration 172.
pub fn diverged() -> App {
    let mut app = mid_run();
    app.on_event(Event::Progress(progress(172, f64::NAN)));
    let reason = "diverged at iteration 172: training loss is NaN";
    app.on_event(Event::Log(reason.into()));
    app.on_event(Event::State(RunState::Diverged));
    app.on_event(Event::Finished(Box::new(summary(
        RunState::Diverged,
        Some(reason),
    ))));
    app
}

/// A run whose validation loss rises for four epochs while a layer saturates: the alerts.
pub fn overfitting() -> App {
    let mut app = mid_run();
    let mut sat = layers();
    sat[1].saturated_fraction = 0.35;
    for (k, e) in (4..=7usize).enumerate() {
        let it = e as u64 * 50;
        app.on_event(Event::Progress(progress(it, 0.2 - 0.01 * k as f64)));
        let mut m = epoch(e, 0.3 + 0.02 * k as f64);
        m.train_loss = 0.1 - 0.01 * k as f64;
        m.layers = sat.clone();
        app.on_event(Event::Epoch(Box::new(m)));
    }
    app
}

/// A 10-class confusion matrix of 1,014 validation examples: mostly right, with the
/// confusions a digit classifier makes (4 → 9, 3 → 5, 7 → 1).
pub fn confusion() -> ltmlp::confusion::EpochConfusion {
    let mut m = ltmlp::confusion::Confusion::new(10);
    for (t, row) in m.counts.iter_mut().enumerate() {
        row[t] = 90 + t;
        row[(t + 3) % 10] = 10 - t;
    }
    m.counts[4][9] += 7;
    m.counts[3][5] += 4;
    m.counts[7][1] += 3;
    ltmlp::confusion::EpochConfusion {
        labels: (0..10).collect(),
        validation: m.clone(),
        test: m,
    }
}
