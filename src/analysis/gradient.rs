//! The gradient of the mean cross-entropy over a whole data set with respect to the weights
//! (biases excluded), in chunks, without allocating per call.

use ndarray::{s, ArrayView2};

use crate::data::Class;
use crate::net::{Network, Params, Target, Workspace};

/// Rows per forward/backward chunk.
const CHUNK: usize = 1000;

/// Number of weights (biases excluded) of a network: the size of every matrix in this module.
pub fn weight_count<T: crate::real::Real>(net: &Network<T>) -> usize {
    net.params.len(false)
}

/// Reusable buffers for full-data-set weight gradients of one network shape.
pub struct WeightGradient {
    ws: Workspace<f64>,
    grads: Params<f64>,
}

impl WeightGradient {
    pub fn new(net: &Network<f64>) -> Self {
        WeightGradient {
            ws: Workspace::new(&net.topology, CHUNK),
            grads: Params::zeros(&net.topology),
        }
    }

    /// Writes the gradient of the mean cross-entropy over all rows of `inputs` with respect to
    /// the weights into `out` (in [`Params::to_flat`] order) and returns the mean loss.
    pub fn compute(
        &mut self,
        net: &Network<f64>,
        inputs: ArrayView2<f64>,
        labels: &[Class],
        out: &mut [f64],
    ) -> f64 {
        out.fill(0.0);
        let n = inputs.nrows();
        let mut loss = 0.0;
        let mut start = 0;
        while start < n {
            let end = (start + CHUNK).min(n);
            net.forward(inputs.slice(s![start..end, ..]), &mut self.ws);
            loss += net
                .output_delta(Target::Labels(&labels[start..end]), &mut self.ws)
                .objective;
            net.backward(&mut self.ws, &mut self.grads);
            // `backward` gives the chunk mean; weight it by the chunk's share of the data.
            let share = (end - start) as f64 / n as f64;
            let mut i = 0;
            for (_, _, g) in self.grads.blocks() {
                for v in g.iter() {
                    out[i] += share * v;
                    i += 1;
                }
            }
            start = end;
        }
        loss / n.max(1) as f64
    }
}
