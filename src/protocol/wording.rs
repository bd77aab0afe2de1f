//! How a protocol event is worded in a log line: the trainer's answer to a command and every
//! viewer's log say a transformation change the same way, a headless run and a sweep cell an
//! evaluation.

use super::{EpochMetrics, RunInfo, SplitR2, TransformCause, TransformEvent};
use crate::preset::Monitor;

/// "α off, max Δout 3.1e-9" and the like.
pub fn transform_text(t: &TransformEvent) -> String {
    let what = match t.cause {
        TransformCause::Switch { param, on } => {
            format!(
                "{} switched {}",
                param.symbol(),
                if on { "on" } else { "off" }
            )
        }
        TransformCause::Manual => "re-estimated (manual)".to_string(),
        TransformCause::Scheduled => "re-estimated (scheduled)".to_string(),
        TransformCause::Guard {
            layer,
            unit,
            action,
        } => format!(
            "guard {}: layer {layer} unit {unit} collapsed",
            action.name()
        ),
        TransformCause::Rollback { to } => {
            format!("training loss jumped: rolled back to iteration {to}, rate halved")
        }
    };
    format!(
        "{what}, max Δout {} → {}",
        sci(t.max_output_change),
        t.flags.label()
    )
}

/// Scientific notation with two digits, NaN as NaN.
pub fn sci(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == 0.0 {
        "0".into()
    } else {
        format!("{v:.1e}")
    }
}

/// One human line per evaluation, at most 100 columns, every field at a fixed width so that
/// the lines of a run align: epoch, clean training, validation and test loss (and error for
/// classifiers), learning rate, transformations, collapsed units, training time.
pub fn epoch_line(info: &RunInfo, m: &EpochMetrics) -> String {
    // Losses in 6 columns: 4 decimals below 10, fewer above (autoencoders' summed errors).
    let loss = |v: f64| {
        let decimals = match v.abs() {
            a if a < 10.0 => 4,
            a if a < 100.0 => 3,
            a if a < 1000.0 => 2,
            _ => 0,
        };
        format!("{v:>6.decimals$}")
    };
    let pct = |e: Option<f64>| e.map_or(String::new(), |e| format!(" {:>6}", format!("{e:.2}%")));
    // Regression: the losses are mean squared errors, each followed by its split's R².
    let r2 = |pick: fn(&SplitR2) -> f64| {
        m.r2.as_ref()
            .map_or(String::new(), |r| format!(" R² {:>4.2}", pick(r)))
    };
    let collapsed =
        m.layers.iter().map(|l| l.collapsed_fraction).sum::<f64>() / m.layers.len().max(1) as f64;
    // With the test set monitored, validation and test are one split: print it once.
    let held_out = match info.monitor {
        Monitor::Test => String::new(),
        Monitor::Validation => format!(
            " valid {}{}{}",
            loss(m.validation_loss),
            pct(m.validation_error),
            r2(|r| r.validation)
        ),
    };
    let test_label = match info.monitor {
        Monitor::Test => "test(monitored)",
        Monitor::Validation => "test",
    };
    let digits = info.epochs.to_string().len();
    format!(
        "ep {:>digits$}/{} train {}{}{}{held_out} {test_label} {}{}{} lr {:<6} {} coll {:>4.1}% {:>4.0}s",
        m.epoch,
        info.epochs,
        loss(m.train_loss),
        pct(m.train_error),
        r2(|r| r.train),
        loss(m.test_loss),
        pct(m.test_error),
        r2(|r| r.test),
        rate(m.learning_rate),
        m.flags.label(),
        100.0 * collapsed,
        m.elapsed_seconds,
    )
}

/// A learning rate in at most 6 columns.
fn rate(v: f64) -> String {
    if v >= 1e-3 || v == 0.0 {
        format!("{v:.4}")
    } else {
        format!("{v:.0e}")
    }
}
