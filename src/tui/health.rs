//! Health alerts: conditions a user should notice at once (saturated or collapsed units,
//! validation loss rising, training loss not falling), computed from the dashboard's epochs and
//! latest layer statistics. The app shows them as a banner and logs each when it first appears.

use crate::stats::LayerStats;

use super::app::EpochPoint;

/// A layer whose saturated share exceeds this raises an alert.
pub const SATURATED_SHARE: f64 = 0.2;
/// A layer whose collapsed share exceeds this raises an alert.
pub const COLLAPSED_SHARE: f64 = 0.1;
/// Consecutive epochs of rising validation loss that count as overfitting.
pub const RISING_EPOCHS: usize = 3;
/// Epochs without the clean training loss improving on its earlier best by [`STALL_GAIN`].
pub const STALL_EPOCHS: usize = 5;
/// Relative improvement that counts as "falling".
pub const STALL_GAIN: f64 = 0.01;

/// Logged once per run, after the first saturation alert while γ is on: what is happening and
/// what to try (docs/method.md, "What γ can go wrong with").
pub const GAMMA_BLOW_UP_HINT: &str = "γ blow-up: with γ on, each unit's outgoing weights step \
     about γ² times as far as under α β, the next layer's inputs grow and its units go into \
     saturation; the loss jumps next. Try transforms.gamma_control = \"rollback\" (the \
     default: back to before the jump at half the rate), a smaller rate (-), or γ off (g)";

/// One alert. Layers are numbered as in the layers table.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Alert {
    Saturated { layer: usize, share: f64 },
    Collapsed { layer: usize, share: f64 },
    ValidationRising { epochs: usize },
    LossNotFalling { epochs: usize },
}

impl Alert {
    /// Whether two alerts are the same condition (the figures may differ).
    pub fn same_kind(&self, other: &Alert) -> bool {
        match (self, other) {
            (Alert::Saturated { layer: a, .. }, Alert::Saturated { layer: b, .. })
            | (Alert::Collapsed { layer: a, .. }, Alert::Collapsed { layer: b, .. }) => a == b,
            _ => std::mem::discriminant(self) == std::mem::discriminant(other),
        }
    }

    /// A short text for the banner and the log.
    pub fn text(&self) -> String {
        match *self {
            Alert::Saturated { layer, share } => format!(
                "layer {layer}: {:.0}% of units saturated (alert above {:.0}%)",
                100.0 * share,
                100.0 * SATURATED_SHARE
            ),
            Alert::Collapsed { layer, share } => format!(
                "layer {layer}: {:.0}% of units collapsed (alert above {:.0}%)",
                100.0 * share,
                100.0 * COLLAPSED_SHARE
            ),
            Alert::ValidationRising { epochs } => {
                format!("validation loss rising for {epochs} epochs (overfitting?)")
            }
            Alert::LossNotFalling { epochs } => {
                format!("training loss not falling for {epochs} epochs")
            }
        }
    }
}

/// Every alert that holds now.
pub fn alerts(epochs: &[EpochPoint], layers: &[LayerStats]) -> Vec<Alert> {
    let mut out = Vec::new();
    for l in layers {
        if l.saturated_fraction > SATURATED_SHARE {
            out.push(Alert::Saturated {
                layer: l.layer,
                share: l.saturated_fraction,
            });
        }
        if l.collapsed_fraction > COLLAPSED_SHARE {
            out.push(Alert::Collapsed {
                layer: l.layer,
                share: l.collapsed_fraction,
            });
        }
    }
    let rising = epochs
        .windows(2)
        .rev()
        .take_while(|w| w[1].validation_loss > w[0].validation_loss)
        .count();
    if rising >= RISING_EPOCHS {
        out.push(Alert::ValidationRising { epochs: rising });
    }
    if let Some(epochs) = stalled(epochs) {
        out.push(Alert::LossNotFalling { epochs });
    }
    out
}

/// Epochs since the clean training loss last beat its earlier best by [`STALL_GAIN`], if at
/// least [`STALL_EPOCHS`]. A NaN loss is divergence, not a stall.
fn stalled(epochs: &[EpochPoint]) -> Option<usize> {
    let losses: Vec<f64> = epochs.iter().map(|e| e.train_loss).collect();
    if losses.iter().any(|l| !l.is_finite()) {
        return None;
    }
    let mut best = f64::INFINITY;
    let mut since = 0;
    for &l in &losses {
        if l < best * (1.0 - STALL_GAIN) || best.is_infinite() {
            best = l;
            since = 0;
        } else {
            since += 1;
        }
    }
    (since >= STALL_EPOCHS).then_some(since)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(epoch: usize, train: f64, valid: f64) -> EpochPoint {
        EpochPoint {
            epoch,
            iteration: epoch as u64 * 10,
            train_loss: train,
            train_error: None,
            validation_loss: valid,
            validation_error: None,
            test_loss: valid,
            test_error: None,
        }
    }

    #[test]
    fn rising_validation_loss_needs_enough_epochs_in_a_row() {
        let valid = [1.0, 0.5, 0.6, 0.7];
        let e: Vec<_> = (0..4)
            .map(|i| point(i + 1, 1.0 / (i + 1) as f64, valid[i]))
            .collect();
        assert!(
            alerts(&e, &[]).is_empty(),
            "two rising epochs are not yet an alert"
        );
        let mut e = e;
        e.push(point(5, 0.1, 0.8));
        assert_eq!(alerts(&e, &[]), vec![Alert::ValidationRising { epochs: 3 }]);
    }

    #[test]
    fn a_flat_training_loss_is_reported_and_a_falling_one_is_not() {
        let falling: Vec<_> = (0..10)
            .map(|i| point(i, 1.0 - 0.05 * i as f64, 1.0))
            .collect();
        assert!(stalled(&falling).is_none());
        let mut flat = falling[..3].to_vec();
        for i in 3..9 {
            flat.push(point(i, 0.899, 1.0));
        }
        assert_eq!(stalled(&flat), Some(6));
        flat.push(point(9, f64::NAN, 1.0));
        assert_eq!(stalled(&flat), None, "divergence is not a stall");
    }
}
