//! `Examples`: the one type every loader produces and the trainer consumes — an input row per
//! example and its target (a class index, or regression values). Inputs are held as decoded
//! values, or, for 8-bit pixels, as the stored bytes decoded whenever rows are read (a quarter of
//! the memory, the same numbers); storage stays behind the methods here.

use ndarray::{
    s, Array1, Array2, ArrayView2, ArrayViewMut1, ArrayViewMut2, Axis, CowArray, Ix1, Ix2,
};

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
    inputs: Inputs<T>,
    targets: Targets<T>,
}

/// How a split's inputs are held.
#[derive(Debug, Clone, PartialEq)]
enum Inputs<T> {
    Values(Array2<T>),
    Bytes(ByteInputs<T>),
}

/// 8-bit inputs as stored, decoded on read: value = (table[byte] − mean[j]) · scale[j], the
/// same operations, in the same order and precision, as decoding once and normalising after.
#[derive(Debug, Clone, PartialEq)]
struct ByteInputs<T> {
    bytes: Array2<u8>,
    /// The decoded value of each byte (pixels: byte / 255).
    table: Vec<T>,
    /// Per-feature centring and scaling, once the training statistics are known.
    affine: Option<(Array1<T>, Array1<T>)>,
}

impl<T: Real> ByteInputs<T> {
    fn decode_row(&self, i: usize, mut dst: ArrayViewMut1<T>) {
        let row = self.bytes.row(i);
        let table = &self.table;
        match &self.affine {
            None => {
                for (d, &b) in dst.iter_mut().zip(row) {
                    *d = table[usize::from(b)];
                }
            }
            Some((mean, scale)) => {
                for (((d, &b), &m), &k) in dst.iter_mut().zip(row).zip(mean).zip(scale) {
                    *d = (table[usize::from(b)] - m) * k;
                }
            }
        }
    }

    /// Other rows of the same data (a slice or a selection), decoded the same way.
    fn with_bytes(&self, bytes: Array2<u8>) -> Self {
        ByteInputs {
            bytes,
            table: self.table.clone(),
            affine: self.affine.clone(),
        }
    }
}

/// Inputs and targets disagree on the number of examples (a loader bug, reported, not panicked).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{inputs} input rows but {targets} targets")]
pub struct LengthMismatch {
    pub inputs: usize,
    pub targets: usize,
}

/// Input rows read a chunk at a time, whatever their storage: a split, a plain matrix, or the
/// first rows of either.
pub trait InputRows<T: Real> {
    fn row_count(&self) -> usize;
    /// Rows `start..end` (a view where they are stored as values, decoded otherwise).
    fn rows_of(&self, start: usize, end: usize) -> CowArray<'_, T, Ix2>;
}

impl<T: Real> InputRows<T> for ArrayView2<'_, T> {
    fn row_count(&self) -> usize {
        self.nrows()
    }
    fn rows_of(&self, start: usize, end: usize) -> CowArray<'_, T, Ix2> {
        self.slice(s![start..end, ..]).into()
    }
}

impl<T: Real> InputRows<T> for Examples<T> {
    fn row_count(&self) -> usize {
        self.len()
    }
    fn rows_of(&self, start: usize, end: usize) -> CowArray<'_, T, Ix2> {
        self.rows(start, end)
    }
}

/// The first `.1` rows of `.0`.
pub struct FirstRows<'a, S: ?Sized>(pub &'a S, pub usize);

impl<T: Real, S: InputRows<T> + ?Sized> InputRows<T> for FirstRows<'_, S> {
    fn row_count(&self) -> usize {
        self.1.min(self.0.row_count())
    }
    fn rows_of(&self, start: usize, end: usize) -> CowArray<'_, T, Ix2> {
        self.0.rows_of(start, end.min(self.row_count()))
    }
}

/// Rows `start..end` of a set of rows, seen as rows `0..end - start` of their own (one chunk of
/// an evaluation).
pub struct RowRange<'a, S: ?Sized>(pub &'a S, pub usize, pub usize);

impl<T: Real, S: InputRows<T> + ?Sized> InputRows<T> for RowRange<'_, S> {
    fn row_count(&self) -> usize {
        self.2.saturating_sub(self.1)
    }
    fn rows_of(&self, start: usize, end: usize) -> CowArray<'_, T, Ix2> {
        self.0
            .rows_of(self.1 + start, self.1 + end.min(self.row_count()))
    }
}

/// Per-feature mean (summed row by row in `T`, then divided, as a decoded matrix's mean over
/// its rows is) and standard deviation (in f64) of a split's inputs, read in chunks.
pub struct FeatureMoments {
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
}

impl<T: Real> Examples<T> {
    pub fn new(inputs: Array2<T>, targets: Targets<T>) -> Result<Self, LengthMismatch> {
        Self::checked(Inputs::Values(inputs), targets)
    }

    /// Examples whose inputs stay bytes, each decoded as `table[byte]` when read.
    pub fn from_bytes(
        bytes: Array2<u8>,
        table: [T; 256],
        targets: Targets<T>,
    ) -> Result<Self, LengthMismatch> {
        let inputs = Inputs::Bytes(ByteInputs {
            bytes,
            table: table.to_vec(),
            affine: None,
        });
        Self::checked(inputs, targets)
    }

    fn checked(inputs: Inputs<T>, targets: Targets<T>) -> Result<Self, LengthMismatch> {
        let n = match &targets {
            Targets::Classes(c) => c.len(),
            Targets::Values(v) => v.nrows(),
        };
        let rows = match &inputs {
            Inputs::Values(v) => v.nrows(),
            Inputs::Bytes(b) => b.bytes.nrows(),
        };
        if n != rows {
            return Err(LengthMismatch {
                inputs: rows,
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
        match &self.inputs {
            Inputs::Values(v) => v.nrows(),
            Inputs::Bytes(b) => b.bytes.nrows(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of inputs per example.
    pub fn input_dim(&self) -> usize {
        match &self.inputs {
            Inputs::Values(v) => v.ncols(),
            Inputs::Bytes(b) => b.bytes.ncols(),
        }
    }

    /// Number of target values per example (0 for classes).
    pub fn target_dim(&self) -> usize {
        match &self.targets {
            Targets::Classes(_) => 0,
            Targets::Values(v) => v.ncols(),
        }
    }

    /// Every input row (decoded when held as bytes: prefer [`Self::rows`] by chunks for a large
    /// split).
    pub fn inputs(&self) -> CowArray<'_, T, Ix2> {
        self.rows(0, self.len())
    }

    /// Every input row as a view, where they are held as values.
    pub fn input_values(&self) -> Option<ArrayView2<'_, T>> {
        match &self.inputs {
            Inputs::Values(v) => Some(v.view()),
            Inputs::Bytes(_) => None,
        }
    }

    /// Input rows `start..end`.
    pub fn rows(&self, start: usize, end: usize) -> CowArray<'_, T, Ix2> {
        match &self.inputs {
            Inputs::Values(v) => v.slice(s![start..end, ..]).into(),
            Inputs::Bytes(_) => {
                let mut out = Array2::zeros((end - start, self.input_dim()));
                self.fill_rows(start, out.view_mut());
                out.into()
            }
        }
    }

    /// Input row `i`.
    pub fn input(&self, i: usize) -> CowArray<'_, T, Ix1> {
        match &self.inputs {
            Inputs::Values(v) => v.row(i).into(),
            Inputs::Bytes(b) => {
                let mut out = Array1::zeros(self.input_dim());
                b.decode_row(i, out.view_mut());
                out.into()
            }
        }
    }

    /// Writes input rows `start..start + dst.nrows()` into `dst`.
    pub fn fill_rows(&self, start: usize, mut dst: ArrayViewMut2<T>) {
        match &self.inputs {
            Inputs::Values(v) => dst.assign(&v.slice(s![start..start + dst.nrows(), ..])),
            Inputs::Bytes(b) => {
                for (k, row) in dst.outer_iter_mut().enumerate() {
                    b.decode_row(start + k, row);
                }
            }
        }
    }

    /// Writes input row `i` into `dst`.
    pub fn fill_row(&self, i: usize, mut dst: ArrayViewMut1<T>) {
        match &self.inputs {
            Inputs::Values(v) => dst.assign(&v.row(i)),
            Inputs::Bytes(b) => b.decode_row(i, dst),
        }
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
        let inputs = match &self.inputs {
            Inputs::Values(v) => Inputs::Values(v.slice(s![start..end, ..]).to_owned()),
            Inputs::Bytes(b) => {
                Inputs::Bytes(b.with_bytes(b.bytes.slice(s![start..end, ..]).to_owned()))
            }
        };
        Examples { inputs, targets }
    }

    /// Splits off examples `at..` as a new split and keeps `..at` here, without a copy of
    /// them: a loader's full set becomes training and validation splits without ever holding
    /// both the set and a copy of the training part (188 MB more on full MNIST).
    pub fn split_off(&mut self, at: usize) -> Self {
        let at = at.min(self.len());
        let tail = self.slice(at, self.len());
        match &mut self.inputs {
            Inputs::Values(v) => *v = keep_rows(std::mem::take(v), at),
            Inputs::Bytes(b) => b.bytes = keep_rows(std::mem::take(&mut b.bytes), at),
        }
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
        let inputs = match &self.inputs {
            Inputs::Values(v) => Inputs::Values(v.select(Axis(0), indices)),
            Inputs::Bytes(b) => Inputs::Bytes(b.with_bytes(b.bytes.select(Axis(0), indices))),
        };
        Examples { inputs, targets }
    }

    /// Centres and scales every input: x ← (x − mean[j]) · scale[j] (in place, or on read for
    /// bytes).
    pub(crate) fn normalise(&mut self, mean: &Array1<T>, scale: &Array1<T>) {
        match &mut self.inputs {
            Inputs::Values(v) => v.outer_iter_mut().for_each(|mut row| {
                row -= mean;
                row *= scale;
            }),
            Inputs::Bytes(b) => b.affine = Some((mean.clone(), scale.clone())),
        }
    }

    /// The inputs' per-feature mean and, with `std`, standard deviation (else 1), read in
    /// chunks so that byte inputs are never decoded whole.
    pub fn feature_moments(&self, std: bool) -> FeatureMoments {
        const CHUNK: usize = 1024;
        let (n, d) = (self.len(), self.input_dim());
        let mut sum = Array1::<T>::zeros(d);
        for start in (0..n).step_by(CHUNK) {
            for row in self.rows(start, (start + CHUNK).min(n)).outer_iter() {
                sum += &row;
            }
        }
        let count = T::of(n.max(1) as f64);
        let mean: Vec<f64> = sum.iter().map(|&s| (s / count).f64()).collect();
        if !std {
            return FeatureMoments {
                mean,
                std: vec![1.0; d],
            };
        }
        let mut squares = vec![0.0f64; d];
        for start in (0..n).step_by(CHUNK) {
            for row in self.rows(start, (start + CHUNK).min(n)).outer_iter() {
                for ((q, v), m) in squares.iter_mut().zip(row).zip(&mean) {
                    *q += (v.f64() - m).powi(2);
                }
            }
        }
        let std = squares
            .iter()
            .map(|q| {
                let var = q / n.max(1) as f64;
                if var > 1e-24 {
                    var.sqrt()
                } else {
                    1.0
                }
            })
            .collect();
        FeatureMoments { mean, std }
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
fn keep_rows<A: Clone>(a: Array2<A>, rows: usize) -> Array2<A> {
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
