//! JSON has no NaN: serde_json writes a non-finite float as `null`. The statistics and events
//! hold NaN where nothing was measured, so their floats read `null` back as NaN (for metrics
//! files read on resume, and for the control endpoint's messages).

use serde::{Deserialize, Deserializer};

/// An `f64` that reads `null` as NaN. Binary formats (checkpoints) hold NaN as it is and are
/// read as plain floats.
pub fn f64<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    if !d.is_human_readable() {
        return f64::deserialize(d);
    }
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// A `Vec<f64>` whose `null` elements read as NaN (see [`f64`]).
pub fn vec<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
    if !d.is_human_readable() {
        return Vec::<f64>::deserialize(d);
    }
    Ok(Vec::<Option<f64>>::deserialize(d)?
        .into_iter()
        .map(|v| v.unwrap_or(f64::NAN))
        .collect())
}

#[cfg(test)]
mod tests {
    use crate::train::Progress;

    #[test]
    fn a_nan_survives_a_json_round_trip() {
        let p = Progress {
            epoch: 1,
            iteration: 2,
            learning_rate: 0.1,
            momentum: 0.9,
            examples_per_second: 5.0,
            elapsed_seconds: 1.0,
            batch_loss: f64::NAN,
        };
        let text = serde_json::to_string(&p).unwrap();
        assert!(text.contains("null"), "{text}");
        let back: Progress = serde_json::from_str(&text).unwrap();
        assert!(back.batch_loss.is_nan());
        assert_eq!(back.iteration, 2);
    }
}
