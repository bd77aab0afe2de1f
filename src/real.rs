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

    /// t = tanh(x) elementwise. f32 uses a vectorised rational approximation (maximum absolute
    /// error about 3e-7, see `net::kernels`); f64 stays exact for the exactness tests.
    fn tanh_slice(x: &[Self], t: &mut [Self]);
}

impl Real for f32 {
    const NAME: &'static str = "f32";
    fn of(value: f64) -> Self {
        value as f32
    }
    fn f64(self) -> f64 {
        f64::from(self)
    }
    fn tanh_slice(x: &[Self], t: &mut [Self]) {
        crate::net::kernels::tanh_f32(x, t);
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
    fn tanh_slice(x: &[Self], t: &mut [Self]) {
        for (t, &x) in t.iter_mut().zip(x) {
            *t = x.tanh();
        }
    }
}
