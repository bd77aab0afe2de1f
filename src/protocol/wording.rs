//! How a protocol event is worded in a log line: the trainer's answer to a command and every
//! viewer's log say a transformation change the same way.

use super::{TransformCause, TransformEvent};

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
