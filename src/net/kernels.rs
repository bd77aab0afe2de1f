//! The hot kernels of training: the matrix product behind every layer (the `gemm` crate with
//! runtime-dispatched AVX-512/AVX2 kernels by default, ndarray's matrixmultiply without the
//! `gemm` feature; a direct loop for products into few rows; products and large elementwise
//! loops split across threads), a vectorised rational tanh for f32, and the run-time dispatch
//! that compiles the elementwise loops for the widest vector instructions.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use ndarray::{ArrayView2, ArrayViewMut2};

use crate::real::Real;

/// Threads for the matrix products; 0 means "not set yet" (read MATMUL_NUM_THREADS, else 1).
static THREADS: AtomicUsize = AtomicUsize::new(0);

/// Sets the number of threads the matrix products use (at least 1).
///
/// With the `gemm` backend this takes effect at once. Without it, matrixmultiply reads the
/// MATMUL_NUM_THREADS environment variable once, at its first product, so this also sets that.
pub fn set_threads(threads: usize) {
    let threads = threads.max(1);
    THREADS.store(threads, Ordering::Relaxed);
    if std::env::var_os("MATMUL_NUM_THREADS").is_none() {
        std::env::set_var("MATMUL_NUM_THREADS", threads.to_string());
    }
}

thread_local! {
    /// Set on a thread whose products must stay on it (see [`on_one_thread`]).
    static ONE_THREAD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `work` with this thread's products and elementwise loops on this thread alone,
/// whatever [`set_threads`] said: for work split across threads by its caller. The numbers are
/// those of any thread count (products and loops are cut into blocks that are each computed
/// as alone).
pub fn on_one_thread<R>(work: impl FnOnce() -> R) -> R {
    /// Puts the thread's setting back, also when `work` panics.
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            ONE_THREAD.with(|one| one.set(self.0));
        }
    }
    let _restore = Restore(ONE_THREAD.with(|one| one.replace(true)));
    work()
}

/// Runs `work` on a thread of a pool of its own with [`threads`] threads (directly with one),
/// so that the products and loops it splits hand their other parts to threads of that pool.
/// Split from a thread outside any pool, every product woke a pool thread and slept until the
/// parts were done: products at batch 100 repeated on two threads ran 20–26 % slower that way,
/// and whole steps at batch 1000 gained 1–14 % from the pool (docs/performance.md). Each run
/// gets its own pool, so that concurrent runs never wait on each other's parts. A pool that
/// cannot be started leaves `work` on the calling thread.
pub fn on_own_pool<R: Send>(work: impl FnOnce() -> R + Send) -> R {
    on_pool_of(threads(), work)
}

/// [`on_own_pool`] with the pool's size given.
fn on_pool_of<R: Send>(threads: usize, work: impl FnOnce() -> R + Send) -> R {
    if threads < 2 {
        return work();
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("ltmlp-pool-{i}"))
        .build();
    match pool {
        Ok(pool) => pool.install(work),
        Err(_) => work(),
    }
}

/// The number of threads the matrix products use.
pub fn threads() -> usize {
    if ONE_THREAD.with(|one| one.get()) {
        return 1;
    }
    match THREADS.load(Ordering::Relaxed) {
        0 => {
            let from_env = std::env::var("MATMUL_NUM_THREADS")
                .ok()
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(1)
                .max(1);
            THREADS.store(from_env, Ordering::Relaxed);
            from_env
        }
        n => n,
    }
}

/// Whether [`matmul`] adds its time to PROFILE_NANOS (for `ltmlp bench`).
static PROFILING: AtomicBool = AtomicBool::new(false);
static PROFILE_NANOS: AtomicU64 = AtomicU64::new(0);

/// Starts (`true`: clears the total) or stops (`false`) timing the matrix products; returns the
/// seconds spent in them since the last start.
pub fn profile(on: bool) -> f64 {
    let nanos = if on {
        PROFILE_NANOS.swap(0, Ordering::Relaxed)
    } else {
        PROFILE_NANOS.load(Ordering::Relaxed)
    };
    PROFILING.store(on, Ordering::Relaxed);
    if on {
        0.0
    } else {
        nanos as f64 * 1e-9
    }
}

/// Name of the matrix-multiply backend compiled in.
pub fn backend() -> &'static str {
    if cfg!(feature = "gemm") {
        "gemm (pure Rust, runtime AVX-512/AVX2 dispatch)"
    } else {
        "matrixmultiply (ndarray)"
    }
}

/// C ← α·A·B + β·C for views of any strides (transposed views included). With β = 0, C is
/// overwritten and its old contents (even NaN) are ignored.
pub fn matmul<T: Real>(
    alpha: T,
    a: &ArrayView2<T>,
    b: &ArrayView2<T>,
    beta: T,
    c: &mut ArrayViewMut2<T>,
) {
    let (m, k) = a.dim();
    let (k2, n) = b.dim();
    assert!(
        k == k2 && c.dim() == (m, n),
        "matmul shapes: {:?} · {:?} into {:?}",
        a.dim(),
        b.dim(),
        c.dim()
    );
    if m == 0 || n == 0 {
        return;
    }
    if PROFILING.load(Ordering::Relaxed) {
        let started = Instant::now();
        product(alpha, a, b, beta, c);
        let nanos = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        PROFILE_NANOS.fetch_add(nanos, Ordering::Relaxed);
    } else {
        product(alpha, a, b, beta, c);
    }
}

/// [`matmul`] after the shape checks, on non-empty C.
fn product<T: Real>(
    alpha: T,
    a: &ArrayView2<T>,
    b: &ArrayView2<T>,
    beta: T,
    c: &mut ArrayViewMut2<T>,
) {
    if a.ncols() == 0 {
        if beta == T::zero() {
            c.fill(T::zero());
        } else {
            c.mapv_inplace(|v| v * beta);
        }
        return;
    }
    if c.nrows() <= FEW_ROWS && b.strides()[1] == 1 && c.is_standard_layout() {
        return few_rows_product(alpha, a, b, beta, c);
    }
    #[cfg(feature = "gemm")]
    product_in_parts(alpha, a, b, beta, c, threads());
    #[cfg(not(feature = "gemm"))]
    {
        if beta == T::zero() {
            // matrixmultiply multiplies the old C by 0, which keeps NaN: clear it first.
            c.fill(T::zero());
        }
        ndarray::linalg::general_mat_mul(alpha, a, b, beta, c);
    }
}

/// Products into a C of at most this many rows (the output layer's weight blocks: 10 rows for
/// MNIST) take [`few_rows_product`].
const FEW_ROWS: usize = 16;

/// C ← α·A·B + β·C for a C of few rows: one pass over B, four of its rows at a time added to
/// every row of C, which stays in the L1/L2 cache. Such products (the compensation and the
/// weight gradients of a 10-unit output layer) read a whole weight matrix or minibatch for
/// little arithmetic; gemm packed the operand first and ran them at about a third of this
/// speed (10×800·800×784 took 0.41 ms inside training).
fn few_rows_product<T: Real>(
    alpha: T,
    a: &ArrayView2<T>,
    b: &ArrayView2<T>,
    beta: T,
    c: &mut ArrayViewMut2<T>,
) {
    let ((m, k), n) = (a.dim(), b.ncols());
    let c = c
        .as_slice_mut()
        .expect("the caller checked that C is in standard layout");
    vectorised(
        #[inline(always)]
        || {
            if beta == T::zero() {
                c.fill(T::zero());
            } else if beta != T::one() {
                c.iter_mut().for_each(|v| *v *= beta);
            }
            let row = |i: usize| {
                &b.row(i)
                    .to_slice()
                    .expect("the caller checked that B's rows are contiguous")[..n]
            };
            let mut i = 0;
            while i + 4 <= k {
                let (b0, b1, b2, b3) = (row(i), row(i + 1), row(i + 2), row(i + 3));
                for (r, cr) in c.chunks_exact_mut(n).enumerate().take(m) {
                    let s = [a[[r, i]], a[[r, i + 1]], a[[r, i + 2]], a[[r, i + 3]]];
                    let s = s.map(|v| alpha * v);
                    for j in 0..n {
                        cr[j] += s[0] * b0[j] + s[1] * b1[j] + s[2] * b2[j] + s[3] * b3[j];
                    }
                }
                i += 4;
            }
            for i in i..k {
                let bi = row(i);
                for (r, cr) in c.chunks_exact_mut(n).enumerate().take(m) {
                    let s = alpha * a[[r, i]];
                    for j in 0..n {
                        cr[j] += s * bi[j];
                    }
                }
            }
        },
    )
}

/// Products with fewer multiply-adds (m·n·k) than this run on one thread: below it, handing
/// half to another thread costs more than it saves (gemm's own threading threshold).
#[cfg(feature = "gemm")]
const SPLIT_MIN_WORK: usize = 48 * 48 * 256;
/// Cuts between parts fall on multiples of this (16 f32 = one AVX-512 register), so that each
/// part keeps whole-width kernels.
#[cfg(feature = "gemm")]
const SPLIT_ALIGN: usize = 16;

/// C ← α·A·B + β·C on `parts` threads: C is cut along its longer side and the blocks are
/// computed concurrently, each by a single-threaded gemm. gemm's own threading splits inside
/// one product and, measured on the training shapes at batch 100 with 2 threads, reached about
/// 60% of the two-thread peak; independent single-threaded blocks reached 70–76%
/// (docs/performance.md). At batch 1000 both are alike.
#[cfg(feature = "gemm")]
fn product_in_parts<T: Real>(
    alpha: T,
    a: &ArrayView2<T>,
    b: &ArrayView2<T>,
    beta: T,
    c: &mut ArrayViewMut2<T>,
    parts: usize,
) {
    let ((m, k), n) = (a.dim(), b.ncols());
    let longer = m.max(n);
    if parts < 2 || m * n * k < SPLIT_MIN_WORK || longer < 2 * SPLIT_ALIGN {
        return gemm_block(alpha, a, b, beta, c);
    }
    let first_parts = parts / 2;
    let cut = (longer * first_parts / parts).div_ceil(SPLIT_ALIGN) * SPLIT_ALIGN;
    let cut = cut.clamp(SPLIT_ALIGN, longer - 1);
    if n >= m {
        let (b1, b2) = b.view().split_at(ndarray::Axis(1), cut);
        let (mut c1, mut c2) = c.view_mut().split_at(ndarray::Axis(1), cut);
        rayon::join(
            || product_in_parts(alpha, a, &b1, beta, &mut c1, first_parts),
            || product_in_parts(alpha, a, &b2, beta, &mut c2, parts - first_parts),
        );
    } else {
        let (a1, a2) = a.view().split_at(ndarray::Axis(0), cut);
        let (mut c1, mut c2) = c.view_mut().split_at(ndarray::Axis(0), cut);
        rayon::join(
            || product_in_parts(alpha, &a1, b, beta, &mut c1, first_parts),
            || product_in_parts(alpha, &a2, b, beta, &mut c2, parts - first_parts),
        );
    }
}

/// One single-threaded gemm call on views of any strides.
#[cfg(feature = "gemm")]
fn gemm_block<T: Real>(
    alpha: T,
    a: &ArrayView2<T>,
    b: &ArrayView2<T>,
    beta: T,
    c: &mut ArrayViewMut2<T>,
) {
    let ((m, k), n) = (a.dim(), b.ncols());
    let (a_rs, a_cs) = (a.strides()[0], a.strides()[1]);
    let (b_rs, b_cs) = (b.strides()[0], b.strides()[1]);
    let (c_rs, c_cs) = (c.strides()[0], c.strides()[1]);
    // SAFETY: the pointers and strides come from live ndarray views whose shapes `matmul`
    // checked (the parts of a split keep matching shapes); `c` is borrowed mutably, so it does
    // not alias `a` or `b`. gemm's `alpha` scales the destination and its `beta` the product;
    // with read_dst = false the destination is not read.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            c_cs,
            c_rs,
            beta != T::zero(),
            a.as_ptr(),
            a_cs,
            a_rs,
            b.as_ptr(),
            b_cs,
            b_rs,
            beta,
            alpha,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// Inputs beyond ±TANH_CLAMP give tanh = ±1 in f32 (the approximation is fitted inside).
const TANH_CLAMP: f32 = 7.905_311;
/// Below this magnitude tanh x = x to within f32 rounding; also keeps tiny inputs exact.
const TANH_TINY: f32 = 0.0004;
// Coefficients of the [13/6] rational approximation of tanh used by Eigen and XLA
// (odd numerator, even denominator); maximum absolute error about 3e-7 on f32.
const A1: f32 = 4.893_524_6e-3;
const A3: f32 = 6.372_619_3e-4;
const A5: f32 = 1.485_722_4e-5;
const A7: f32 = 5.122_297e-8;
const A9: f32 = -8.604_672e-11;
const A11: f32 = 2.000_188e-13;
const A13: f32 = -2.760_768_5e-16;
const B0: f32 = 4.893_525e-3;
const B2: f32 = 2.268_434_6e-3;
const B4: f32 = 1.185_347_1e-4;
const B6: f32 = 1.198_258_4e-6;

/// The rational tanh for one value; branch-free so that loops over it vectorise.
#[inline(always)]
pub fn tanh_approx(x: f32) -> f32 {
    let c = x.clamp(-TANH_CLAMP, TANH_CLAMP);
    let x2 = c * c;
    let mut p = x2 * A13 + A11;
    p = x2 * p + A9;
    p = x2 * p + A7;
    p = x2 * p + A5;
    p = x2 * p + A3;
    p = x2 * p + A1;
    p *= c;
    let mut q = x2 * B6 + B4;
    q = x2 * q + B2;
    q = x2 * q + B0;
    let r = p / q;
    if x.abs() < TANH_TINY {
        x
    } else {
        r
    }
}

#[inline(always)]
fn tanh_loop(x: &[f32], t: &mut [f32]) {
    for (t, &x) in t.iter_mut().zip(x) {
        *t = tanh_approx(x);
    }
}

/// t = tanh(x) elementwise with the rational approximation, in the widest vector instructions
/// this CPU has (detected at run time).
pub fn tanh_f32(x: &[f32], t: &mut [f32]) {
    assert_eq!(x.len(), t.len(), "tanh_f32 lengths");
    vectorised(
        #[inline(always)]
        || tanh_loop(x, t),
    )
}

/// Matrices with fewer values than this keep their elementwise loops on one thread: below it,
/// waking a second thread costs about as much as the loop.
const PARALLEL_MIN_VALUES: usize = 1 << 18;

/// Into how many parts an elementwise loop over `values` values is split: the matrix-product
/// thread count for large matrices, else 1. With several threads the products shrink and the
/// elementwise loops (activations, moment sums, the SGD update) would otherwise become the
/// single-threaded remainder of the step.
pub fn parts_for(values: usize) -> usize {
    if values < PARALLEL_MIN_VALUES {
        1
    } else {
        threads()
    }
}

/// Values per part when `rows` rows of `cols` values are split into `parts` parts of whole rows.
pub fn rows_per_part(rows: usize, cols: usize, parts: usize) -> usize {
    rows.div_ceil(parts.max(1)).max(1) * cols.max(1)
}

/// dst[i][j] = src[i][j]·factor[j] for row-major matrices of equal shape (`dst` may be `src`'s
/// own storage when `src` is `None`): the column scaling of the α and γ compensation.
pub fn scale_columns<T: Real>(dst: &mut [T], src: Option<&[T]>, factor: &[T]) {
    let n = factor.len();
    if n == 0 {
        return;
    }
    let run = |dst: &mut [T], src: Option<&[T]>| {
        vectorised(
            #[inline(always)]
            || match src {
                Some(src) => {
                    for (d, s) in dst.chunks_exact_mut(n).zip(src.chunks_exact(n)) {
                        for j in 0..n {
                            d[j] = s[j] * factor[j];
                        }
                    }
                }
                None => {
                    for d in dst.chunks_exact_mut(n) {
                        for j in 0..n {
                            d[j] *= factor[j];
                        }
                    }
                }
            },
        )
    };
    let parts = parts_for(dst.len());
    if parts == 1 {
        return run(dst, src);
    }
    use rayon::prelude::*;
    let chunk = rows_per_part(dst.len() / n, n, parts);
    match src {
        Some(src) => dst
            .par_chunks_mut(chunk)
            .zip(src.par_chunks(chunk))
            .with_max_len(1)
            .for_each(|(d, s)| run(d, Some(s))),
        None => dst
            .par_chunks_mut(chunk)
            .with_max_len(1)
            .for_each(|d| run(d, None)),
    }
}

/// Runs `f` compiled for the widest vector instructions this CPU has (AVX-512, else AVX2 with
/// FMA, else the build's baseline), detected at run time. The default build targets baseline
/// x86-64 (SSE2), so the elementwise loops of a training step (activations, moment sums, the
/// SGD update) only get wide vectors this way. `f` and the loops it calls must be inlined into
/// the wrapper, so pass an `#[inline(always)]` closure calling `#[inline(always)]` functions
/// (a plain closure is called from three places and stays an out-of-line baseline function).
#[inline(always)]
pub fn vectorised<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports AVX-512F (checked just above).
            return unsafe { run_avx512(f) };
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            // SAFETY: the CPU supports AVX2 and FMA (checked just above).
            return unsafe { run_avx2(f) };
        }
    }
    f()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn run_avx512<R>(f: impl FnOnce() -> R) -> R {
    f()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn run_avx2<R>(f: impl FnOnce() -> R) -> R {
    f()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    /// Aᵀ (k × m, so that A = its transpose is m × k), B (k × n) and C (m × n) filled with
    /// small exact values.
    fn operands(m: usize, k: usize, n: usize) -> (Array2<f64>, Array2<f64>, Array2<f64>) {
        let a = Array2::from_shape_fn((k, m), |(i, j)| ((i * 7 + j * 3) % 11) as f64 - 5.0);
        let b = Array2::from_shape_fn((k, n), |(i, j)| ((i * 5 + j) % 13) as f64 * 0.5 - 3.0);
        let c = Array2::from_shape_fn((m, n), |(i, j)| (i + j) as f64 * 0.01);
        (a, b, c)
    }

    /// The largest absolute difference between two matrices of the same shape.
    fn largest_gap(x: &Array2<f64>, y: &Array2<f64>) -> f64 {
        x.iter()
            .zip(y.iter())
            .fold(0.0f64, |w, (x, y)| w.max((x - y).abs()))
    }

    #[test]
    fn fast_tanh_is_within_stated_error() {
        let xs: Vec<f32> = (-200_000..=200_000).map(|i| i as f32 * 1e-4).collect();
        let mut ts = vec![0.0; xs.len()];
        tanh_f32(&xs, &mut ts);
        let worst = xs
            .iter()
            .zip(&ts)
            .map(|(&x, &t)| (f64::from(t) - f64::from(x).tanh()).abs())
            .fold(0.0, f64::max);
        assert!(worst < 5e-7, "max |error| {worst}");
        let mut big = [0.0f32; 4];
        tanh_f32(&[100.0, -100.0, 1e-8, 0.0], &mut big);
        assert_eq!(big, [1.0, -1.0, 1e-8, 0.0]);
    }

    #[test]
    fn products_into_few_rows_match_one_product() {
        // The output layer's shapes: C of 10 rows, K not a multiple of 4, A transposed (a
        // weight-gradient δᵀ) or not (a compensation product), β = 0 over NaN and β ≠ 0.
        let (m, k, n) = (10, 801, 37);
        let (a, b, c0) = operands(m, k, n);
        let a_rows = a.t().as_standard_layout().into_owned();
        for (beta, start) in [
            (0.0, Array2::from_elem((m, n), f64::NAN)),
            (2.0, c0.clone()),
        ] {
            let expected = a.t().dot(&b) * 0.5 + &c0 * beta;
            for a_view in [a.t(), a_rows.view()] {
                let mut c = start.clone();
                matmul(0.5, &a_view, &b.view(), beta, &mut c.view_mut());
                let worst = largest_gap(&c, &expected);
                assert!(worst < 1e-9, "β = {beta}: off by {worst}");
            }
        }
    }

    /// Inside `on_one_thread` the products use one thread, also nested, and the thread's
    /// setting comes back after it.
    #[test]
    fn work_on_one_thread_stays_on_it() {
        assert_eq!(on_one_thread(threads), 1);
        assert_eq!(on_one_thread(|| on_one_thread(threads) + threads()), 2);
        assert!(!ONE_THREAD.with(|one| one.get()));
    }

    #[test]
    #[cfg(feature = "gemm")]
    fn products_split_across_threads_match_one_product() {
        // Shapes above SPLIT_MIN_WORK, cut along the rows (m > n) or the columns, with parts
        // that do not divide evenly; transposed operands and β ≠ 0 included.
        for (m, k, n, parts) in [(300, 70, 40, 2), (40, 90, 333, 2), (129, 100, 250, 3)] {
            let (a, b, c0) = operands(m, k, n);
            let expected = a.t().dot(&b) * 0.5 + &c0 * 2.0;
            let mut c = c0.clone();
            product_in_parts(0.5, &a.t(), &b.view(), 2.0, &mut c.view_mut(), parts);
            let worst = largest_gap(&c, &expected);
            assert!(worst < 1e-9, "{m}×{k}×{n} in {parts} parts: off by {worst}");
        }
    }

    #[test]
    fn a_run_with_threads_works_on_a_pool_of_that_many() {
        let where_it_ran = || (rayon::current_thread_index(), rayon::current_num_threads());
        let (index, size) = on_pool_of(3, where_it_ran);
        assert!(index.is_some(), "the work ran outside the pool");
        assert_eq!(size, 3);
        // The test's own thread is in no pool: with one thread the work stays on it.
        assert_eq!(on_pool_of(1, where_it_ran).0, None);
        let (a, b, c0) = operands(300, 70, 40);
        let mut c = c0.clone();
        on_pool_of(2, || matmul(1.0, &a.t(), &b.view(), 0.0, &mut c.view_mut()));
        assert!(largest_gap(&c, &a.t().dot(&b)) < 1e-9);
    }

    #[test]
    fn matmul_matches_naive_for_transposed_views() {
        let a = Array2::from_shape_fn((7, 5), |(i, j)| (i * 5 + j) as f64 * 0.1 - 1.0);
        let b = Array2::from_shape_fn((7, 3), |(i, j)| (i + 2 * j) as f64 * 0.3 - 0.5);
        let mut c = Array2::from_elem((5, 3), f64::NAN);
        matmul(2.0, &a.t(), &b.view(), 0.0, &mut c.view_mut());
        let expected = a.t().dot(&b) * 2.0;
        for (x, y) in c.iter().zip(expected.iter()) {
            assert!((x - y).abs() < 1e-12);
        }
        let mut d = expected.clone();
        matmul(1.0, &a.t(), &b.view(), 0.5, &mut d.view_mut());
        for (x, y) in d.iter().zip(expected.iter()) {
            assert!((x - y).abs() < 1e-12);
        }
    }
}
