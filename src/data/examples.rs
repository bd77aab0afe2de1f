//! `Examples`: the one type every loader produces and the trainer consumes — an input row per
//! example and its target (a class index, or regression values). Storage stays behind its
//! methods, so that how inputs are held (today one float matrix) can change without touching
//! the trainer.

use ndarray::{s, Array2, ArrayView1, ArrayView2, Axis};

use crate::real::Real;

/// A class index (0..classes); the original labels are the dataset's `class_labels`.
pub type Class = u32;

/// What each example is trained towards.
#[derive(Debug, Clone, PartialEq)]
pub enum Targets<T> {
    /// One class index per example.
    Classes(Vec<Class>),
    /// One row of target values per example (regression).
    Values(Array2<T>),
}

/// Inputs and targets of one split, row `i` of each describing example `i`.
#[derive(Debug, Clone, PartialEq)]
pub struct Examples<T> {
    inputs: Array2<T>,
    targets: Targets<T>,
}

/// Inputs and targets disagree on the number of examples (a loader bug, reported, not panicked).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{inputs} input rows but {targets} targets")]
pub struct LengthMismatch {
    pub inputs: usize,
    pub targets: usize,
}

impl<T: Real> Examples<T> {
    pub fn new(inputs: Array2<T>, targets: Targets<T>) -> Result<Self, LengthMismatch> {
        let n = match &targets {
            Targets::Classes(c) => c.len(),
            Targets::Values(v) => v.nrows(),
        };
        if n != inputs.nrows() {
            return Err(LengthMismatch {
                inputs: inputs.nrows(),
                targets: n,
            });
        }
        Ok(Examples { inputs, targets })
    }

    /// Labelled examples.
    pub fn classified(inputs: Array2<T>, classes: Vec<Class>) -> Result<Self, LengthMismatch> {
        Self::new(inputs, Targets::Classes(classes))
    }

    pub fn len(&self) -> usize {
        self.inputs.nrows()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of inputs per example.
    pub fn input_dim(&self) -> usize {
        self.inputs.ncols()
    }

    /// Number of target values per example (0 for classes).
    pub fn target_dim(&self) -> usize {
        match &self.targets {
            Targets::Classes(_) => 0,
            Targets::Values(v) => v.ncols(),
        }
    }

    /// Every input row.
    pub fn inputs(&self) -> ArrayView2<'_, T> {
        self.inputs.view()
    }

    /// Input rows `start..end`.
    pub fn rows(&self, start: usize, end: usize) -> ArrayView2<'_, T> {
        self.inputs.slice(s![start..end, ..])
    }

    /// Input row `i`.
    pub fn input(&self, i: usize) -> ArrayView1<'_, T> {
        self.inputs.row(i)
    }

    pub fn targets(&self) -> &Targets<T> {
        &self.targets
    }

    /// The class indices (empty for regression targets).
    pub fn class_indices(&self) -> &[Class] {
        match &self.targets {
            Targets::Classes(c) => c,
            Targets::Values(_) => &[],
        }
    }

    /// Examples `start..end` as a new split.
    pub fn slice(&self, start: usize, end: usize) -> Self {
        let targets = match &self.targets {
            Targets::Classes(c) => Targets::Classes(c[start..end].to_vec()),
            Targets::Values(v) => Targets::Values(v.slice(s![start..end, ..]).to_owned()),
        };
        Examples {
            inputs: self.rows(start, end).to_owned(),
            targets,
        }
    }

    /// Splits off examples `at..` as a new split and keeps `..at` here, without a copy of
    /// them: a loader's full set becomes training and validation splits without ever holding
    /// both the set and a copy of the training part (188 MB more on full MNIST).
    pub fn split_off(&mut self, at: usize) -> Self {
        let at = at.min(self.len());
        let tail = self.slice(at, self.len());
        self.inputs = keep_rows(std::mem::take(&mut self.inputs), at);
        match &mut self.targets {
            Targets::Classes(c) => {
                c.truncate(at);
                c.shrink_to_fit();
            }
            Targets::Values(v) => *v = keep_rows(std::mem::take(v), at),
        }
        tail
    }

    /// The listed examples, in that order.
    pub fn select(&self, indices: &[usize]) -> Self {
        let targets = match &self.targets {
            Targets::Classes(c) => Targets::Classes(indices.iter().map(|&i| c[i]).collect()),
            Targets::Values(v) => Targets::Values(v.select(Axis(0), indices)),
        };
        Examples {
            inputs: self.inputs.select(Axis(0), indices),
            targets,
        }
    }

    /// Applies `f` to every input row (preprocessing: centring, scaling).
    pub(crate) fn map_inputs(&mut self, f: impl FnMut(ndarray::ArrayViewMut1<T>)) {
        self.inputs.outer_iter_mut().for_each(f);
    }

    /// The sum over examples and target columns of (value − the split's column mean)², the
    /// denominator of R² (0 for classes).
    pub fn target_total_squares(&self, start: usize, end: usize) -> f64 {
        let Targets::Values(v) = &self.targets else {
            return 0.0;
        };
        let v = v.slice(s![start..end, ..]);
        let n = v.nrows().max(1) as f64;
        v.axis_iter(Axis(1))
            .map(|col| {
                let mean = col.iter().map(|x| x.f64()).sum::<f64>() / n;
                col.iter().map(|x| (x.f64() - mean).powi(2)).sum::<f64>()
            })
            .sum()
    }
}

/// The first `rows` rows of `a`, in its own storage when it is a plain row-major array (the
/// freed tail goes back to the allocator), else copied.
fn keep_rows<T: Real>(a: Array2<T>, rows: usize) -> Array2<T> {
    let cols = a.ncols();
    if !a.is_standard_layout() {
        return a.slice(s![..rows, ..]).to_owned();
    }
    let (mut values, offset) = a.into_raw_vec_and_offset();
    let start = offset.unwrap_or(0);
    values.truncate(start + rows * cols);
    values.drain(..start);
    values.shrink_to_fit();
    Array2::from_shape_vec((rows, cols), values).expect("rows × cols values were kept")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_off_is_the_two_slices() {
        let inputs = Array2::from_shape_fn((7, 3), |(i, j)| (i * 3 + j) as f32);
        let values = Array2::from_shape_fn((7, 2), |(i, j)| (i * 10 + j) as f32);
        for set in [
            Examples::classified(inputs.clone(), (0..7).collect()).unwrap(),
            Examples::new(inputs.clone(), Targets::Values(values)).unwrap(),
        ] {
            for at in [0, 1, 5, 7, 9] {
                let mut head = set.clone();
                let tail = head.split_off(at);
                let at = at.min(7);
                assert_eq!(head, set.slice(0, at), "head at {at}");
                assert_eq!(tail, set.slice(at, 7), "tail at {at}");
            }
        }
    }
}
