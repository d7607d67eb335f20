//! Revaluation surfaces: the summed P&L of every option on one underlying, tabulated at the
//! horizon on a grid of ln(S_h/S_0) × ln(iv_h/iv_0) and interpolated per path with
//! Catmull–Rom cubics, so a path costs a few dozen flops per underlying however many options
//! the underlying has. A point outside the grid's inner cells is revalued in full by the
//! caller, so the grid never extrapolates.

/// Points along ln(S_h/S_0).
pub const SPOT_POINTS: usize = 241;
/// Points along ln(iv_h/iv_0) (1 when the implied vol does not move).
pub const VOL_POINTS: usize = 41;

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

    /// The `i`-th value of the axis: `start + i·step` (not bounds-checked).
    pub fn value(&self, i: usize) -> f64 {
        self.start + self.step * i as f64
    }

    /// The cell (i, t) with 1 ≤ i ≤ points − 3 and t in [0, 1] holding `x`, so that the
    /// four points i − 1 … i + 2 exist; `None` outside.
    fn cell(&self, x: f64) -> Option<(usize, f64)> {
        let position = (x - self.start) / self.step;
        if !(position >= 1.0 && position <= (self.points - 2) as f64) {
            return None;
        }
        // truncation is the floor here (position ≥ 1), without a call to `floor`
        let i = (position as usize).min(self.points - 3);
        Some((i, position - i as f64))
    }
}

/// Catmull–Rom weights of the points i − 1, i, i + 1, i + 2 at fraction t of cell i.
#[inline]
fn weights(t: f64) -> [f64; 4] {
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
        use rayon::prelude::*;
        let xs: Vec<f64> = (0..spot.points).map(|i| spot.value(i)).collect();
        let runs = spot.points.div_ceil(TABULATION_RUN);
        let pieces: Vec<Vec<f64>> = (0..vol.points * runs)
            .into_par_iter()
            .map(|k| {
                let (j, run) = (k / runs, k % runs);
                let xs = &xs[run * TABULATION_RUN..((run + 1) * TABULATION_RUN).min(spot.points)];
                let mut out = vec![0.0; xs.len()];
                column(xs, vol.value(j), &mut out);
                out
            })
            .collect();
        let mut values = vec![0.0; spot.points * vol.points];
        for (k, piece) in pieces.iter().enumerate() {
            let (j, run) = (k / runs, k % runs);
            for (offset, v) in piece.iter().enumerate() {
                values[(run * TABULATION_RUN + offset) * vol.points + j] = *v;
            }
        }
        Surface { spot, vol, values }
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
