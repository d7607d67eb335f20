//! Revaluation surfaces: the summed P&L of every option on one underlying, tabulated at the
//! horizon on a grid of ln(S_h/S_0) × ln(iv_h/iv_0) and interpolated per path with
//! Catmull–Rom cubics, so a path costs a few dozen flops per underlying however many options
//! the underlying has. A point outside the grid's inner cells is revalued in full by the
//! caller, so the grid never extrapolates.

use std::ops::{Add, Mul, Neg, Sub};

/// Points along ln(S_h/S_0).
pub const SPOT_POINTS: usize = 241;
/// Points along ln(iv_h/iv_0) (1 when the implied vol does not move).
pub const VOL_POINTS: usize = 41;

/// Halvings of the spot step from the coarsest tabulation to the finest (31 → 241 points).
pub const SPOT_HALVINGS: u32 = 3;
/// Halvings of the vol step from the coarsest tabulation to the finest (11 → 41 points).
pub const VOL_HALVINGS: u32 = 2;

/// Largest spot step of an adaptive tabulation, as a share of the narrowest feature along ln
/// spot ([`Surface::tabulate_to_tolerance`]).
pub const SCALE_SHARE: f64 = 0.5;

/// Where in a cell the adaptive tabulation measures its error, as a fraction of the cell:
/// near the peak of Catmull–Rom's leading error term t(t − 1)(2t − 1) (at 0.2113), and not a
/// dyadic fraction, so a sample is never a node of a finer axis (nothing is priced twice).
pub const SAMPLE_AT: f64 = 0.21;

/// Spot points a tabulation call revalues at once.
pub const TABULATION_RUN: usize = 64;

/// An evenly spaced axis: `points` values from `start` in steps of `step`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Axis {
    /// First value of the axis (−half-width; 0 for a one-point axis), in the axis's units (log
    /// moves on revaluation surfaces).
    pub start: f64,
    /// Spacing of consecutive values, in the axis's units (0 for a one-point axis).
    pub step: f64,
    /// Number of values on the axis (count, at least 1).
    pub points: usize,
}

impl Axis {
    /// `points` values evenly spread over [−half_width, +half_width] (one point at 0 if
    /// `points` is 1).
    pub fn centred(half_width: f64, points: usize) -> Axis {
        if points <= 1 || half_width <= 0.0 {
            return Axis {
                start: 0.0,
                step: 0.0,
                points: 1,
            };
        }
        Axis {
            start: -half_width,
            step: 2.0 * half_width / (points - 1) as f64,
            points,
        }
    }

    /// The axis with every other point dropped, `times` times or as many as its points
    /// allow (same ends, at least four points when it has them): its step is this one's times
    /// a power of two, so refining it back gives these nodes to the last bit.
    pub fn coarsened(&self, times: u32) -> Axis {
        let mut halvings = 0;
        while halvings < times
            && (self.points - 1) % (2 << halvings) == 0
            && (self.points - 1) / (2 << halvings) >= 3
        {
            halvings += 1;
        }
        Axis {
            start: self.start,
            step: self.step * f64::from(1u32 << halvings),
            points: (self.points - 1) / (1 << halvings) + 1,
        }
    }

    /// The axis with a point between each two (same ends, half the step).
    pub fn refined(&self) -> Axis {
        if self.points <= 1 {
            return *self;
        }
        Axis {
            start: self.start,
            step: self.step / 2.0,
            points: 2 * self.points - 1,
        }
    }

    /// The `i`-th value of the axis: `start + i·step` (not bounds-checked).
    pub fn value(&self, i: usize) -> f64 {
        self.start + self.step * i as f64
    }

    /// The cell (i, t) with 1 ≤ i ≤ points − 3 and t in [0, 1] holding `x`, so that the
    /// four points i − 1 … i + 2 exist; `None` outside.
    fn cell(&self, x: f64) -> Option<(usize, f64)> {
        if self.points < 4 {
            return None;
        }
        let position = (x - self.start) / self.step;
        if !(position >= 1.0 && position <= (self.points - 2) as f64) {
            return None;
        }
        // truncation is the floor here (position ≥ 1), without a call to `floor`
        let i = (position as usize).min(self.points - 3);
        Some((i, position - i as f64))
    }
}

/// Catmull–Rom weights of the points i − 1, i, i + 1, i + 2 at fraction t of cell i (one
/// formula for a fraction and for eight lanes of them, so both round alike).
#[inline(always)]
fn weights<T>(t: T) -> [T; 4]
where
    T: Copy
        + Add<Output = T>
        + Add<f64, Output = T>
        + Sub<Output = T>
        + Mul<Output = T>
        + Neg<Output = T>,
    f64: Mul<T, Output = T>,
{
    let t2 = t * t;
    let t3 = t2 * t;
    [
        0.5 * (-t3 + 2.0 * t2 - t),
        0.5 * (3.0 * t3 - 5.0 * t2 + 2.0),
        0.5 * (-3.0 * t3 + 4.0 * t2 + t),
        0.5 * (t3 - t2),
    ]
}

/// A tabulated function of (ln spot move, ln vol ratio).
#[derive(Debug, Clone, PartialEq)]
pub struct Surface {
    /// Axis of ln(S_h/S_0), the path's log spot move.
    pub spot: Axis,
    /// Axis of ln(iv_h/iv_0), the path's log implied-vol ratio (one point at 0 when implied vol
    /// does not move).
    pub vol: Axis,
    /// values[i·vol.points + j] at spot point i, vol point j.
    values: Vec<f64>,
}

impl Surface {
    /// Tabulates a function over the axes, a run of spot points at a time:
    /// `column(xs, log_ratio, out)` writes f(xs[k], log_ratio) into out[k] (so a pricer can
    /// revalue many points per call). Runs in parallel over vol points and runs of
    /// [`TABULATION_RUN`] spot points.
    pub fn tabulate(
        spot: Axis,
        vol: Axis,
        column: impl Fn(&[f64], f64, &mut [f64]) + Sync,
    ) -> Surface {
        let xs: Vec<f64> = (0..spot.points).map(|i| spot.value(i)).collect();
        let requests: Vec<(f64, Vec<f64>)> = (0..vol.points)
            .map(|j| (vol.value(j), xs.clone()))
            .collect();
        let columns = evaluate(&requests, &column);
        let mut values = vec![0.0; spot.points * vol.points];
        for (j, column) in columns.iter().enumerate() {
            for (i, v) in column.iter().enumerate() {
                values[i * vol.points + j] = *v;
            }
        }
        Surface { spot, vol, values }
    }

    /// Tabulates on the nodes of the `finest` axes only as finely as the function needs. It
    /// starts from a coarse surface (every 2^[`SPOT_HALVINGS`]-th spot node, or finer until
    /// the spot step is at most [`SCALE_SHARE`] of `spot_scale`, the narrowest feature
    /// expected along ln spot; every 2^[`VOL_HALVINGS`]-th vol node), measures its
    /// interpolation error along each axis at a fraction [`SAMPLE_AT`] into every inner cell
    /// (on vol nodes no farther apart along spot than half of `spot_scale`), and halves each
    /// axis's step until that error, taken to fall eightfold per halving, is at most half of
    /// `tolerance` (in the function's units). The nodes already priced are kept, and refined
    /// to the finest axes the surface is [`Surface::tabulate`]'s on them to the last bit.
    /// The error is a sample, not a bound: the caller checks the surface on paths.
    pub fn tabulate_to_tolerance(
        finest_spot: Axis,
        finest_vol: Axis,
        tolerance: f64,
        spot_scale: f64,
        column: impl Fn(&[f64], f64, &mut [f64]) + Sync,
    ) -> Surface {
        let mut spot = finest_spot.coarsened(SPOT_HALVINGS);
        while spot.points < finest_spot.points && spot.step > SCALE_SHARE * spot_scale {
            spot = spot.refined();
        }
        let vol = finest_vol.coarsened(VOL_HALVINGS);
        let coarse = Surface::tabulate(spot, vol, &column);
        let (spot_most, vol_most) = (
            halvings_between(&spot, &finest_spot),
            halvings_between(&vol, &finest_vol),
        );
        let spot_halvings = match spot_most {
            0 => 0,
            most => halvings_needed(coarse.spot_error(&column), tolerance, most),
        };
        let vol_halvings = match vol_most {
            0 => 0,
            most => halvings_needed(coarse.vol_error(spot_scale, &column), tolerance, most),
        };
        let mut surface = coarse;
        for k in 0..spot_halvings.max(vol_halvings) {
            surface = surface.refined(k < spot_halvings, k < vol_halvings, &column);
        }
        surface
    }

    /// Largest |interpolated − exact| [`SAMPLE_AT`] into every inner spot cell, on up to
    /// five inner vol nodes (0 where nothing can be read).
    fn spot_error(&self, column: &(impl Fn(&[f64], f64, &mut [f64]) + Sync)) -> f64 {
        if self.spot.points < 4 {
            return 0.0;
        }
        let xs: Vec<f64> = (1..self.spot.points - 2)
            .map(|i| self.spot.start + self.spot.step * (i as f64 + SAMPLE_AT))
            .collect();
        let vols: Vec<f64> = if self.vol.points == 1 {
            vec![0.0]
        } else {
            let stride = (self.vol.points - 2).div_ceil(5).max(1);
            (1..self.vol.points - 1)
                .step_by(stride)
                .map(|j| self.vol.value(j))
                .collect()
        };
        let requests: Vec<(f64, Vec<f64>)> = vols.into_iter().map(|v| (v, xs.clone())).collect();
        self.largest_error(&requests, column)
    }

    /// Largest |interpolated − exact| [`SAMPLE_AT`] into every inner vol cell, on about
    /// thirty inner spot nodes, or more so that they lie no farther apart than half of
    /// `spot_scale` (a vega peak is about that wide; 0 where nothing can be read).
    fn vol_error(
        &self,
        spot_scale: f64,
        column: &(impl Fn(&[f64], f64, &mut [f64]) + Sync),
    ) -> f64 {
        if self.spot.points < 4 || self.vol.points < 4 {
            return 0.0;
        }
        let within_scale = (SCALE_SHARE * spot_scale / self.spot.step).floor();
        let stride = (self.spot.points - 2)
            .div_ceil(30)
            .min(within_scale.clamp(1.0, self.spot.points as f64) as usize)
            .max(1);
        let xs: Vec<f64> = (1..self.spot.points - 1)
            .step_by(stride)
            .map(|i| self.spot.value(i))
            .collect();
        let requests: Vec<(f64, Vec<f64>)> = (1..self.vol.points - 2)
            .map(|j| {
                (
                    self.vol.start + self.vol.step * (j as f64 + SAMPLE_AT),
                    xs.clone(),
                )
            })
            .collect();
        self.largest_error(&requests, column)
    }

    /// Largest |interpolated − exact| over the points of `requests` (vol, spots); a point
    /// the surface cannot read does not count, a NaN error counts as infinite.
    fn largest_error(
        &self,
        requests: &[(f64, Vec<f64>)],
        column: &(impl Fn(&[f64], f64, &mut [f64]) + Sync),
    ) -> f64 {
        let exact = evaluate(requests, column);
        let mut largest = 0.0_f64;
        for ((v, xs), values) in requests.iter().zip(&exact) {
            for (&x, &value) in xs.iter().zip(values) {
                if let Some(read) = self.value(x, *v) {
                    let error = (read - value).abs();
                    largest = if error.is_nan() {
                        f64::INFINITY
                    } else {
                        largest.max(error)
                    };
                }
            }
        }
        largest
    }

    /// The surface with a node between each two along spot (`spot`) and/or vol (`vol`): the
    /// nodes it has are kept, the new ones priced.
    fn refined(
        &self,
        spot: bool,
        vol: bool,
        column: &(impl Fn(&[f64], f64, &mut [f64]) + Sync),
    ) -> Surface {
        let new_spot = if spot { self.spot.refined() } else { self.spot };
        let new_vol = if vol { self.vol.refined() } else { self.vol };
        let old_index = |k: usize, halved: bool| match halved {
            false => Some(k),
            true => (k % 2 == 0).then_some(k / 2),
        };
        let kept = |i: usize, j: usize| -> Option<f64> {
            let (i, j) = (old_index(i, spot)?, old_index(j, vol)?);
            Some(self.values[i * self.vol.points + j])
        };
        let missing: Vec<Vec<usize>> = (0..new_vol.points)
            .map(|j| {
                (0..new_spot.points)
                    .filter(|&i| kept(i, j).is_none())
                    .collect()
            })
            .collect();
        let requests: Vec<(f64, Vec<f64>)> = missing
            .iter()
            .enumerate()
            .map(|(j, is)| {
                (
                    new_vol.value(j),
                    is.iter().map(|&i| new_spot.value(i)).collect(),
                )
            })
            .collect();
        let priced = evaluate(&requests, column);
        let mut values = vec![0.0; new_spot.points * new_vol.points];
        for j in 0..new_vol.points {
            for i in 0..new_spot.points {
                if let Some(v) = kept(i, j) {
                    values[i * new_vol.points + j] = v;
                }
            }
            for (&i, &v) in missing[j].iter().zip(&priced[j]) {
                values[i * new_vol.points + j] = v;
            }
        }
        Surface {
            spot: new_spot,
            vol: new_vol,
            values,
        }
    }

    /// The interpolated value, or `None` outside the inner cells (the caller revalues).
    #[inline]
    pub fn value(&self, x: f64, log_ratio: f64) -> Option<f64> {
        let (i, t) = self.spot.cell(x)?;
        let wx = weights(t);
        if self.vol.points == 1 {
            if log_ratio != 0.0 {
                return None;
            }
            return Some((0..4).map(|a| wx[a] * self.values[i - 1 + a]).sum());
        }
        let (j, u) = self.vol.cell(log_ratio)?;
        let wv = weights(u);
        let n = self.vol.points;
        let mut total = 0.0;
        for (a, wa) in wx.iter().enumerate() {
            let row = &self.values[(i - 1 + a) * n + j - 1..(i - 1 + a) * n + j + 3];
            total += wa * (wv[0] * row[0] + wv[1] * row[1] + wv[2] * row[2] + wv[3] * row[3]);
        }
        Some(total)
    }

    /// [`Surface::value`] over a block of points, folded into running sums: adds the value
    /// at (x[p], log_ratio[p]) to `sums[p]`, or sets it to `None` where the point is off
    /// the grid (a `None` stays). Eight points at a time with AVX2 on a two-dimensional
    /// surface, with the scalar bits lane by lane. The slices have `sums`' length.
    pub fn add_values(&self, x: &[f64], log_ratio: &[f64], sums: &mut [Option<f64>]) {
        let done = self.add_values_vectorised(x, log_ratio, sums);
        for p in done..sums.len() {
            sums[p] = sums[p]
                .zip(self.value(x[p], log_ratio[p]))
                .map(|(sum, v)| sum + v);
        }
    }

    /// The leading multiple of eight points of [`Surface::add_values`] with AVX2; how many
    /// were done.
    fn add_values_vectorised(
        &self,
        x: &[f64],
        log_ratio: &[f64],
        sums: &mut [Option<f64>],
    ) -> usize {
        #[cfg(target_arch = "x86_64")]
        // an axis of fewer than four points has no inner cell (the scalar code says so)
        let interpolates = self.spot.points >= 4 && self.vol.points >= 4;
        if interpolates && std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: AVX2 is present (checked just above).
            return unsafe { avx2::add_values(self, x, log_ratio, sums) };
        }
        let _ = (x, log_ratio, sums);
        0
    }
}

/// Halvings of `coarse`'s step that give `fine`'s (0 when they are the same axis).
fn halvings_between(coarse: &Axis, fine: &Axis) -> u32 {
    let mut halvings = 0;
    let mut points = coarse.points;
    while points < fine.points {
        points = 2 * points - 1;
        halvings += 1;
    }
    halvings
}

/// Halvings (at most `most`) after which an interpolation error measured as `error` is
/// at most half of `tolerance`, the error falling eightfold per halving (Catmull–Rom's
/// error is O(h³) on a smooth function; features narrower than the step are kept off the
/// coarse axis by [`SCALE_SHARE`]).
fn halvings_needed(error: f64, tolerance: f64, most: u32) -> u32 {
    let mut halvings = 0;
    let mut error = error;
    while halvings < most && error > 0.5 * tolerance {
        error /= 8.0;
        halvings += 1;
    }
    halvings
}

/// `column` at the points of `requests` (a vol and its spots each), in parallel over runs
/// of [`TABULATION_RUN`] spots: one vector of values per request.
fn evaluate(
    requests: &[(f64, Vec<f64>)],
    column: &(impl Fn(&[f64], f64, &mut [f64]) + Sync),
) -> Vec<Vec<f64>> {
    use rayon::prelude::*;
    let runs: Vec<(usize, usize)> = requests
        .iter()
        .enumerate()
        .flat_map(|(r, (_, xs))| (0..xs.len().div_ceil(TABULATION_RUN)).map(move |run| (r, run)))
        .collect();
    let pieces: Vec<Vec<f64>> = runs
        .par_iter()
        .map(|&(r, run)| {
            let (v, xs) = &requests[r];
            let xs = &xs[run * TABULATION_RUN..((run + 1) * TABULATION_RUN).min(xs.len())];
            let mut out = vec![0.0; xs.len()];
            column(xs, *v, &mut out);
            out
        })
        .collect();
    let mut values: Vec<Vec<f64>> = requests
        .iter()
        .map(|(_, xs)| Vec::with_capacity(xs.len()))
        .collect();
    for (&(r, _), piece) in runs.iter().zip(pieces) {
        values[r].extend(piece);
    }
    values
}

/// [`Surface::value`] on eight points at a time: the same operations in the same order
/// (no fused multiply-adds), so each lane has the scalar bits.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::{weights, Axis, Surface};
    use crate::math::lanes::{F64x8, Mask8, LANES};

    /// [`Axis::cell`] of eight points: the cell indices (as f64), the fractions, and which
    /// points lie in the inner cells (the others get cell 1 and are not to be read).
    #[inline(always)]
    fn cells(axis: &Axis, x: F64x8) -> (F64x8, F64x8, Mask8) {
        let position = (x - axis.start) / axis.step;
        let highest = F64x8::splat((axis.points - 2) as f64);
        let inside = position.ge(F64x8::splat(1.0)).and_not(position.gt(highest));
        let position = inside.select(position, F64x8::splat(1.0));
        let last = F64x8::splat((axis.points - 3) as f64);
        let cell = position.truncate_to_i32().to_f64();
        let cell = cell.gt(last).select(last, cell);
        (cell, position - cell, inside)
    }

    /// [`Surface::add_values`] over the leading multiple of eight points of a
    /// two-dimensional surface; how many were done.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn add_values(
        surface: &Surface,
        x: &[f64],
        log_ratio: &[f64],
        sums: &mut [Option<f64>],
    ) -> usize {
        let whole = sums.len().min(x.len()).min(log_ratio.len()) / LANES * LANES;
        let n = surface.vol.points;
        for start in (0..whole).step_by(LANES) {
            let (i, t, spot_inside) = cells(&surface.spot, F64x8::load(&x[start..]));
            let (j, u, vol_inside) = cells(&surface.vol, F64x8::load(&log_ratio[start..]));
            let inside = spot_inside.and_not(!vol_inside).bits();
            let (wx, wv) = (weights(t), weights(u));
            let (mut i_lanes, mut j_lanes) = ([0.0; LANES], [0.0; LANES]);
            i.store(&mut i_lanes);
            j.store(&mut j_lanes);
            // the 4 × 4 neighbours of each point, row a and column b across the lanes
            let mut near = [[[0.0; LANES]; 4]; 4];
            for lane in 0..LANES {
                if inside >> lane & 1 == 1 {
                    let corner = (i_lanes[lane] as usize - 1) * n + j_lanes[lane] as usize - 1;
                    for (a, row) in near.iter_mut().enumerate() {
                        let values = &surface.values[corner + a * n..corner + a * n + 4];
                        for (column, &v) in row.iter_mut().zip(values) {
                            column[lane] = v;
                        }
                    }
                }
            }
            let mut total = F64x8::splat(0.0);
            for (a, row) in near.iter().enumerate() {
                let column = [
                    F64x8::load(&row[0]),
                    F64x8::load(&row[1]),
                    F64x8::load(&row[2]),
                    F64x8::load(&row[3]),
                ];
                total = total
                    + wx[a]
                        * (wv[0] * column[0]
                            + wv[1] * column[1]
                            + wv[2] * column[2]
                            + wv[3] * column[3]);
            }
            let mut values = [0.0; LANES];
            total.store(&mut values);
            for (lane, &v) in values.iter().enumerate() {
                let sum = &mut sums[start + lane];
                *sum = match *sum {
                    Some(s) if inside >> lane & 1 == 1 => Some(s + v),
                    _ => None,
                };
            }
        }
        whole
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A point function as a tabulation column.
    fn columns(f: impl Fn(f64, f64) -> f64 + Sync) -> impl Fn(&[f64], f64, &mut [f64]) + Sync {
        move |xs, v, out| {
            for (o, &x) in out.iter_mut().zip(xs) {
                *o = f(x, v);
            }
        }
    }

    #[test]
    fn interpolation_is_exact_for_quadratics_and_refuses_the_edges() {
        let f = |x: f64, v: f64| 2.0 * x * x - x + 3.0 * v * v + x * v + 1.0;
        let s = Surface::tabulate(Axis::centred(1.0, 21), Axis::centred(0.5, 11), columns(f));
        for (x, v) in [(0.13, 0.07), (-0.71, -0.33), (0.5, 0.2)] {
            let got = s.value(x, v).unwrap();
            assert!(
                (got - f(x, v)).abs() < 1e-12,
                "{x} {v}: {got} vs {}",
                f(x, v)
            );
        }
        assert_eq!(s.value(0.99, 0.0), None, "outer cell");
        assert_eq!(s.value(0.0, 0.49), None);
        assert_eq!(s.value(f64::NAN, 0.0), None);
    }

    /// The block form folds in the scalar values bit for bit, off-grid points (outer cells,
    /// NaN, infinities) included, at lengths that are not multiples of eight.
    #[test]
    fn block_reads_have_the_scalar_bits() {
        let f = |x: f64, v: f64| (3.0 * x).sin() * (1.0 + v) + (x * v).exp() - 0.3 * x;
        // dyadic steps (1/16 and 3/16), so the edges below are hit exactly
        let s = Surface::tabulate(Axis::centred(1.25, 41), Axis::centred(0.75, 9), columns(f));
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut uniform = move || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        // NaN, ±∞, the first and last inner positions (1 and points − 2) and just beyond
        let edges = |last: f64, step: f64| {
            [
                f64::NAN,
                f64::INFINITY,
                f64::NEG_INFINITY,
                last,
                -last,
                last + step / 4.0,
                -last - step / 4.0,
                0.0,
            ]
        };
        let (x_edges, v_edges) = (edges(1.1875, 0.0625), edges(0.5625, 0.1875));
        for len in [0, 1, 7, 8, 9, 63, 1000] {
            let mut x: Vec<f64> = (0..len).map(|_| 2.8 * uniform() - 1.4).collect();
            let mut v: Vec<f64> = (0..len).map(|_| 1.6 * uniform() - 0.8).collect();
            for k in 0..len.min(64) {
                if k % 3 == 0 {
                    x[k] = x_edges[k / 3 % x_edges.len()];
                }
                if k % 5 == 1 {
                    v[k] = v_edges[k / 5 % v_edges.len()];
                }
            }
            let start: Vec<Option<f64>> = (0..len)
                .map(|p| (p % 11 != 5).then_some(p as f64 - 0.5))
                .collect();
            let mut block = start.clone();
            s.add_values(&x, &v, &mut block);
            for p in 0..len {
                let scalar = start[p].zip(s.value(x[p], v[p])).map(|(a, b)| a + b);
                assert_eq!(
                    block[p].map(f64::to_bits),
                    scalar.map(f64::to_bits),
                    "len {len}, point {p}: ({}, {})",
                    x[p],
                    v[p]
                );
            }
            if len >= 63 {
                // both kinds of point were read, the edges on the grid
                assert!(block.iter().any(Option::is_some));
                assert!(block.iter().any(Option::is_none));
                assert!(s.value(1.1875, 0.5625).is_some() && s.value(-1.1875, -0.5625).is_some());
            }
        }
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            let mut sums = vec![Some(0.0); 20];
            assert_eq!(
                s.add_values_vectorised(&[0.1; 20], &[0.1; 20], &mut sums),
                16,
                "the eight-lane path ran"
            );
        }
    }

    /// A spot that does not move (spot vol 0) gives a one-point spot axis: no inner cell, so
    /// every point is revalued in full, in the block form too.
    #[test]
    fn a_one_point_spot_axis_reads_nothing() {
        let s = Surface::tabulate(
            Axis::centred(0.0, SPOT_POINTS),
            Axis::centred(0.5, VOL_POINTS),
            columns(|x, v| x + v),
        );
        assert_eq!(s.value(0.0, 0.1), None);
        let mut sums = vec![Some(1.0); 17];
        s.add_values(&[0.0; 17], &[0.1; 17], &mut sums);
        assert!(sums.iter().all(Option::is_none));
    }

    /// Finest axes of the adaptive tests: 241 × 41 nodes over ±1 × ±0.5.
    fn finest() -> (Axis, Axis) {
        (
            Axis::centred(1.0, SPOT_POINTS),
            Axis::centred(0.5, VOL_POINTS),
        )
    }

    /// Largest |read − f| over 20,000 pseudo-random points the surface reads.
    fn largest_read_error(s: &Surface, f: impl Fn(f64, f64) -> f64) -> f64 {
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut uniform = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        (0..20_000)
            .filter_map(|_| {
                let (x, v) = (2.0 * uniform() - 1.0, uniform() - 0.5);
                s.value(x, v).map(|read| (read - f(x, v)).abs())
            })
            .fold(0.0, f64::max)
    }

    /// A tolerance of zero refines both axes to the finest: the surface is the one tabulated
    /// there directly, to the last bit.
    #[test]
    fn refined_to_the_finest_axes_it_is_the_direct_tabulation() {
        let f = |x: f64, v: f64| (1.7 * x).exp() * (1.0 + 0.4 * v).powi(3) - x * v;
        let (spot, vol) = finest();
        let direct = Surface::tabulate(spot, vol, columns(f));
        let adaptive = Surface::tabulate_to_tolerance(spot, vol, 0.0, f64::INFINITY, columns(f));
        assert_eq!((adaptive.spot, adaptive.vol), (direct.spot, direct.vol));
        let bits = |s: &Surface| s.values.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&adaptive), bits(&direct));
    }

    /// A smooth function is tabulated on fewer nodes than the finest, and its reads stay
    /// within the tolerance; each node is priced once (the samples are off the nodes).
    #[test]
    fn a_smooth_function_stays_coarse_within_the_tolerance() {
        let f = |x: f64, v: f64| {
            3.0 * (0.8 * x).exp() * (1.0 + 0.3 * v + 0.1 * v * v) + (2.0 * v).exp()
        };
        let (spot, vol) = finest();
        let priced = std::sync::Mutex::new(Vec::new());
        let counting = |xs: &[f64], v: f64, out: &mut [f64]| {
            priced
                .lock()
                .unwrap()
                .extend(xs.iter().map(|x| (x.to_bits(), v.to_bits())));
            columns(f)(xs, v, out)
        };
        for tolerance in [1e-3, 1e-5] {
            priced.lock().unwrap().clear();
            let s = Surface::tabulate_to_tolerance(spot, vol, tolerance, f64::INFINITY, counting);
            assert!(
                s.values.len() < SPOT_POINTS * VOL_POINTS,
                "{:?}",
                (s.spot, s.vol)
            );
            if tolerance < 1e-4 {
                // two vol halvings: the coarse samples are off the finest nodes too
                assert_eq!(s.vol.points, VOL_POINTS);
            }
            let error = largest_read_error(&s, f);
            assert!(
                error <= tolerance,
                "{error} above {tolerance} on {:?}",
                (s.spot, s.vol)
            );
            let mut points = priced.lock().unwrap().clone();
            let all = points.len();
            points.sort_unstable();
            points.dedup();
            assert_eq!(points.len(), all, "a point priced twice");
        }
        let loose = Surface::tabulate_to_tolerance(spot, vol, 1e-3, f64::INFINITY, columns(f));
        let tight = Surface::tabulate_to_tolerance(spot, vol, 1e-5, f64::INFINITY, columns(f));
        assert!(loose.values.len() < tight.values.len());
    }

    /// A feature narrower than the coarse spot step: told its scale, the tabulation starts
    /// with a spot step of at most half of it (here the finest); told nothing, it finds the
    /// feature with its samples. Either way the reads meet the tolerance.
    #[test]
    fn a_narrow_feature_refines_the_spot_axis() {
        let width = 0.02;
        let f = move |x: f64, v: f64| (x * x + width * width).sqrt() * (1.0 + 0.2 * v);
        let (spot, vol) = finest();
        let tolerance = 1e-3;
        let told = Surface::tabulate_to_tolerance(spot, vol, tolerance, width, columns(f));
        assert_eq!(told.spot.points, SPOT_POINTS);
        let blind = Surface::tabulate_to_tolerance(spot, vol, tolerance, f64::INFINITY, columns(f));
        assert!(blind.spot.points > 31, "the samples saw the feature");
        for s in [&told, &blind] {
            let error = largest_read_error(s, f);
            assert!(error <= tolerance, "{error} on {:?}", (s.spot, s.vol));
        }
    }

    #[test]
    fn one_dimensional_surface_needs_an_unmoved_vol() {
        let s = Surface::tabulate(
            Axis::centred(1.0, 21),
            Axis::centred(0.0, 1),
            columns(|x, _| x * x),
        );
        assert!((s.value(0.3, 0.0).unwrap() - 0.09).abs() < 1e-12);
        assert_eq!(s.value(0.3, 0.1), None);
    }
}
