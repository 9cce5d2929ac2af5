//! The CPU's dense stride-1 convolution as one matrix product per kernel tap.
//!
//! Flex runs a dense convolution as im2col + GEMM: it converts the input to channels-last,
//! copies every output tile's patches into a column buffer nine times as large (for 3 × 3),
//! multiplies, and scatters the tile back channel by channel. Here the input is padded once,
//! with one extra zero row, and the output computed on the padded width: output position
//! `p = y · wp + x` reads input position `p + i · wp + j` for tap `(i, j)`. Each tap is then one
//! product of the weight's `[out, in]` slice with a *contiguous* window of the padded planes,
//! accumulated in place: no patch buffer at all. The `wp − wo` columns past each output row are
//! computed and dropped (for 3 × 3 at 128 px, 2 in 130).
//!
//! The work is cut into bands of whole output rows by the shape alone, so the sums run in the
//! same order whatever the thread count: same input, same bits.

use burn::backend::flex::{FlexTensor, Layout};
use burn::tensor::{Bytes, DType, Shape};

/// Output columns (on the padded width) per band: enough for the products to reach their speed,
/// few enough that a large map splits into dozens of bands for the threads.
const BAND_COLUMNS: usize = 1024;
/// Fewer columns per band than this only where the map has too few rows for four bands.
const MIN_BAND_COLUMNS: usize = 256;

/// Below this many input channels each product is too thin to pay for itself; Flex's direct
/// paths serve those (StyleGAN2's one-channel blur passes among them).
const MIN_CHANNELS: usize = 8;

/// How the convolution reads its weight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taps {
    /// `[out, in, kh, kw]`, as stored.
    Forward,
    /// A forward weight `[in, out, kh, kw]` read with its channel axes swapped and its taps
    /// flipped: the convolution that is the forward one's input gradient, without a copy.
    FlippedTransposed,
}

/// A dense (`groups = 1`) stride-1 convolution of `x` `[n, in, h, w]` with `weight` read as
/// `taps` says, padded by `(begin, end)` per spatial axis; `None` where this kernel does not
/// apply (other groups, a 1 × 1 kernel, few channels, not f32, an empty input or output), so
/// the caller runs the backend's own.
pub fn conv2d_taps(
    x: &FlexTensor,
    weight: &FlexTensor,
    taps: Taps,
    padding: [(usize, usize); 2],
    groups: usize,
) -> Option<FlexTensor> {
    let ([n, cin, h, w], [w0, w1, kh, kw]) = (dims4(x)?, dims4(weight)?);
    let (cout, wcin) = match taps {
        Taps::Forward => (w0, w1),
        Taps::FlippedTransposed => (w1, w0),
    };
    let [(top, bottom), (left, right)] = padding;
    let (hp, wp) = (h + top + bottom, w + left + right);
    let applies = groups == 1
        && wcin == cin
        && cin >= MIN_CHANNELS
        && kh * kw > 1
        && hp >= kh
        && wp >= kw
        && n * cout * h * w > 0
        && x.dtype() == DType::F32
        && weight.dtype() == DType::F32;
    if !applies {
        return None;
    }
    let (ho, wo) = (hp - kh + 1, wp - kw + 1);
    let x = x.to_contiguous();
    let weight = weight.to_contiguous();
    let (xs, ws): (&[f32], &[f32]) = (x.storage(), weight.storage());
    let geometry = Geometry { h, w, top, left, wp, ho, wo, kh, kw, cin, cout, taps };
    // At least four bands where each still has MIN_BAND_COLUMNS, so two threads share the work
    // by bands (a 32 px map in one or two bands ran slower than Flex's own).
    let rows = BAND_COLUMNS.div_ceil(wp).min(ho.div_ceil(4).max(MIN_BAND_COLUMNS.div_ceil(wp))).min(ho);
    let bands = ho.div_ceil(rows);
    // Few bands (small maps, wide layers): the products themselves take the threads.
    let threads = if bands >= 4 { Threads::One } else { Threads::All };
    let mut out = vec![0f32; n * cout * ho * wo];
    for (b, out_b) in out.chunks_mut(cout * ho * wo).enumerate() {
        let image = &xs[b * cin * h * w..(b + 1) * cin * h * w];
        let padded = geometry.pad(image);
        let band = |k: usize| {
            let y0 = k * rows;
            let band_rows = rows.min(ho - y0);
            (y0, band_rows, geometry.band(&padded, ws, y0, band_rows, threads))
        };
        let computed: Vec<(usize, usize, Vec<f32>)> = match threads {
            Threads::One => parallel_map(bands, band),
            Threads::All => (0..bands).map(band).collect(),
        };
        for (y0, band_rows, wide) in computed {
            geometry.crop(&wide, y0, band_rows, out_b);
        }
    }
    Some(FlexTensor::new(Bytes::from_elems(out), Layout::contiguous(Shape::from(vec![n, cout, ho, wo])), DType::F32))
}

fn dims4(t: &FlexTensor) -> Option<[usize; 4]> {
    <[usize; 4]>::try_from(t.layout().shape().to_vec()).ok()
}

/// Who runs one product.
#[derive(Clone, Copy)]
enum Threads {
    One,
    All,
}

impl Threads {
    fn parallelism(self) -> gemm::Parallelism {
        match self {
            #[cfg(not(target_arch = "wasm32"))]
            Threads::All => gemm::Parallelism::Rayon(0),
            _ => gemm::Parallelism::None,
        }
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn parallel_map<T: Send>(count: usize, f: impl Fn(usize) -> T + Sync + Send) -> Vec<T> {
    use rayon::prelude::*;
    (0..count).into_par_iter().map(f).collect()
}

#[cfg(target_arch = "wasm32")]
fn parallel_map<T>(count: usize, f: impl Fn(usize) -> T) -> Vec<T> {
    (0..count).map(f).collect()
}

/// `dst += lhs · rhs` (or `=` when `accumulate` is false): `lhs` `[m, k]` at its column and row
/// strides, `rhs` `[k, n]` at row stride `rhs_rs` and column stride 1, into a row-major `[m, n]`.
///
/// # Safety
/// Every `lhs[r · lhs_rs + c]` (`r < m`, `c < k`, at `lhs_cs` apart), `rhs[r · rhs_rs + c]`
/// (`r < k`, `c < n`) and `dst[r · n + c]` must lie inside its allocation.
#[allow(clippy::too_many_arguments)]
unsafe fn product(
    [m, k, n]: [usize; 3],
    dst: *mut f32,
    accumulate: bool,
    lhs: *const f32,
    [lhs_cs, lhs_rs]: [usize; 2],
    rhs: *const f32,
    rhs_rs: usize,
    threads: Threads,
) {
    // SAFETY: the caller's bounds are gemm's.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            1,
            n as isize,
            accumulate,
            lhs,
            lhs_cs as isize,
            lhs_rs as isize,
            rhs,
            1,
            rhs_rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            threads.parallelism(),
        )
    }
}

/// One convolution's sizes: the input `h × w`, padded by `top` rows and `left` columns before
/// to `wp` columns, the output `ho × wo`.
#[derive(Clone, Copy)]
struct Geometry {
    h: usize,
    w: usize,
    top: usize,
    left: usize,
    wp: usize,
    ho: usize,
    wo: usize,
    kh: usize,
    kw: usize,
    cin: usize,
    cout: usize,
    taps: Taps,
}

impl Geometry {
    /// The padded plane's length: `ho + kh − 1` padded rows and one extra zero row, as the last
    /// tap's window of the last band reads up to `kw − 1` values past the padded rows.
    fn plane(&self) -> usize {
        (self.ho + self.kh) * self.wp
    }

    /// One image's planes, zero-padded, the input at (`top`, `left`).
    fn pad(&self, image: &[f32]) -> Vec<f32> {
        let mut padded = vec![0f32; self.cin * self.plane()];
        for (src, dst) in image.chunks_exact(self.h * self.w).zip(padded.chunks_exact_mut(self.plane())) {
            for (y, row) in src.chunks_exact(self.w).enumerate() {
                let at = (y + self.top) * self.wp + self.left;
                dst[at..at + self.w].copy_from_slice(row);
            }
        }
        padded
    }

    /// Output rows `y0 .. y0 + rows` on the padded width, `[out, rows · wp]`: one product per tap,
    /// each accumulated onto the ones before.
    fn band(&self, padded: &[f32], weight: &[f32], y0: usize, rows: usize, threads: Threads) -> Vec<f32> {
        let columns = rows * self.wp;
        let mut wide = vec![0f32; self.cout * columns];
        let count = self.kh * self.kw;
        let plane = self.plane();
        // Tap `(i, j)`'s `[out, in]` matrix inside the weight: its first value and the strides
        // of its columns and rows.
        let matrix = |tap: usize| match self.taps {
            Taps::Forward => (tap, [count, self.cin * count]),
            Taps::FlippedTransposed => (count - 1 - tap, [self.cout * count, count]),
        };
        // The last tap's window ends at (y0 + rows − 1 + kh − 1) · wp + wp − 1 + kw − 1, inside
        // the plane's extra row (ho + kh − 1 padded rows).
        debug_assert!((y0 + rows + self.kh - 1) * self.wp + self.kw - 1 <= plane);
        for i in 0..self.kh {
            for j in 0..self.kw {
                let tap = i * self.kw + j;
                let start = (y0 + i) * self.wp + j;
                let (first, strides) = matrix(tap);
                // SAFETY: dst is `[cout, columns]`; lhs, the weight's tap matrix, reaches at most
                // `(cout − 1) · cin · count + (cin − 1) · count + count − 1` < `cout · cin · count`
                // either way it is read; rhs, plane `c < cin` at `c · plane`, window `start + q`
                // for `q < columns`, which the assertion above keeps inside the plane.
                unsafe {
                    product(
                        [self.cout, self.cin, columns],
                        wide.as_mut_ptr(),
                        tap > 0,
                        weight.as_ptr().add(first),
                        strides,
                        padded.as_ptr().add(start),
                        plane,
                        threads,
                    );
                }
            }
        }
        wide
    }

    /// The band's `wo` valid columns of each row into the output `[out, ho, wo]` at row `y0`.
    fn crop(&self, wide: &[f32], y0: usize, rows: usize, out: &mut [f32]) {
        for (o, plane) in out.chunks_exact_mut(self.ho * self.wo).enumerate() {
            for r in 0..rows {
                let src = &wide[(o * rows + r) * self.wp..][..self.wo];
                plane[(y0 + r) * self.wo..][..self.wo].copy_from_slice(src);
            }
        }
    }
}
