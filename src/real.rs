//! The floating-point element type of the network: f32 for speed, f64 for exactness.

use ndarray::NdFloat;
use num_traits::FromPrimitive;

/// A float the network can compute in. Everything numeric is generic over it, so the fast f32
/// path and the exact f64 path are the same code.
pub trait Real:
    NdFloat + FromPrimitive + Default + serde::Serialize + serde::de::DeserializeOwned + 'static
{
    /// The name used in presets and reports ("f32" / "f64").
    const NAME: &'static str;

    /// Converts from f64, rounding to the nearest representable value.
    fn of(value: f64) -> Self;

    /// Converts to f64 without loss.
    fn f64(self) -> f64;
}

impl Real for f32 {
    const NAME: &'static str = "f32";
    fn of(value: f64) -> Self {
        value as f32
    }
    fn f64(self) -> f64 {
        f64::from(self)
    }
}

impl Real for f64 {
    const NAME: &'static str = "f64";
    fn of(value: f64) -> Self {
        value
    }
    fn f64(self) -> f64 {
        self
    }
}
