//! Inline SVG charts for the HTML report: a P&L histogram with VaR and ES marked, a
//! spot × vol heatmap and horizontal bars with error whiskers. Plain SVG text, no
//! scripts, so the report is one self-contained file that renders anywhere.

use std::fmt::Write as _;

use crate::report::text::money;

/// Escapes text for HTML and SVG.
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const WIDTH: f64 = 760.0;
const FONT: &str = "font-family='sans-serif' font-size='11'";

/// Histogram of the P&L (`bins` equal bins over the central range), with vertical lines at
/// −VaR and −ES (losses are negative P&L).
pub fn pnl_histogram(pnl: &[f64], var: f64, es: f64, confidence: f64) -> String {
    let height = 260.0;
    let (left, bottom, top) = (60.0, 30.0, 20.0);
    let bins = 80;
    let mut sorted = pnl.to_vec();
    sorted.sort_by(f64::total_cmp);
    let quantile = |p: f64| sorted[((sorted.len() - 1) as f64 * p) as usize];
    let lo = quantile(0.0005).min(-es * 1.1);
    let hi = quantile(0.9995);
    let width = (hi - lo) / bins as f64;
    let mut counts = vec![0usize; bins];
    for &p in pnl {
        if p >= lo && p < hi {
            counts[(((p - lo) / width) as usize).min(bins - 1)] += 1;
        }
    }
    let max = counts.iter().copied().max().unwrap_or(1).max(1) as f64;
    let plot_w = WIDTH - left - 20.0;
    let plot_h = height - bottom - top;
    let x = |v: f64| left + (v - lo) / (hi - lo) * plot_w;
    let mut svg = format!(
        "<svg xmlns='http://www.w3.org/2000/svg' width='{WIDTH}' height='{height}' role='img' \
         aria-label='P&amp;L distribution'>"
    );
    for (i, &c) in counts.iter().enumerate() {
        let bar_h = c as f64 / max * plot_h;
        let x0 = x(lo + i as f64 * width);
        let colour = if lo + (i as f64 + 0.5) * width < -var {
            "#c0392b"
        } else {
            "#7f8c8d"
        };
        let _ = write!(
            svg,
            "<rect x='{x0:.1}' y='{:.1}' width='{:.1}' height='{bar_h:.1}' fill='{colour}'/>",
            top + plot_h - bar_h,
            (plot_w / bins as f64 - 0.5).max(0.5)
        );
    }
    let _ = write!(
        svg,
        "<line x1='{left}' y1='{:.1}' x2='{:.1}' y2='{:.1}' stroke='#333'/>",
        top + plot_h,
        left + plot_w,
        top + plot_h
    );
    for (label, value, colour) in [
        (format!("VaR {:.1}%", confidence * 100.0), var, "#e67e22"),
        (format!("ES {:.1}%", confidence * 100.0), es, "#8e44ad"),
    ] {
        let xv = x(-value);
        let _ = write!(
            svg,
            "<line x1='{xv:.1}' y1='{top}' x2='{xv:.1}' y2='{:.1}' stroke='{colour}' \
             stroke-width='2' stroke-dasharray='5,3'/><text x='{:.1}' y='{:.1}' fill='{colour}' \
             {FONT}>{} −{}</text>",
            top + plot_h,
            xv + 4.0,
            top + 12.0 + if value == es { 14.0 } else { 0.0 },
            escape(&label),
            money(value, 0)
        );
    }
    for t in 0..=4 {
        let v = lo + (hi - lo) * t as f64 / 4.0;
        let anchor = match t {
            0 => "start",
            4 => "end",
            _ => "middle",
        };
        let _ = write!(
            svg,
            "<text x='{:.1}' y='{:.1}' text-anchor='{anchor}' {FONT}>{}</text>",
            x(v),
            height - 10.0,
            money(v, 0)
        );
    }
    svg.push_str("</svg>");
    svg
}

/// A heatmap of `values[row][col]` with row and column labels; red for losses, green for
/// gains, the number in every cell.
pub fn heatmap(rows: &[String], cols: &[String], values: &[Vec<f64>], title: &str) -> String {
    let (cell_w, cell_h, left, top) = (88.0, 24.0, 60.0, 36.0);
    let width = left + cell_w * cols.len() as f64 + 10.0;
    let height = top + cell_h * rows.len() as f64 + 10.0;
    let extreme = values
        .iter()
        .flatten()
        .fold(0.0_f64, |m, v| m.max(v.abs()))
        .max(1.0);
    let mut svg = format!(
        "<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' role='img' \
         aria-label='{}'><text x='{left}' y='12' {FONT}>{}</text>",
        escape(title),
        escape(title)
    );
    for (j, c) in cols.iter().enumerate() {
        let _ = write!(
            svg,
            "<text x='{:.1}' y='{:.1}' text-anchor='middle' {FONT}>{}</text>",
            left + cell_w * (j as f64 + 0.5),
            top - 6.0,
            escape(c)
        );
    }
    for (i, (r, row)) in rows.iter().zip(values).enumerate() {
        let y = top + cell_h * i as f64;
        let _ = write!(
            svg,
            "<text x='{:.1}' y='{:.1}' text-anchor='end' {FONT}>{}</text>",
            left - 6.0,
            y + cell_h * 0.65,
            escape(r)
        );
        for (j, &v) in row.iter().enumerate() {
            let strength = (v.abs() / extreme).sqrt();
            let light = (255.0 - 140.0 * strength) as u8;
            let colour = if v < 0.0 {
                format!("rgb(255,{light},{light})")
            } else {
                format!("rgb({light},255,{light})")
            };
            let x = left + cell_w * j as f64;
            let _ = write!(
                svg,
                "<rect x='{x:.1}' y='{y:.1}' width='{cell_w}' height='{cell_h}' fill='{colour}' \
                 stroke='#fff'/><text x='{:.1}' y='{:.1}' text-anchor='middle' {FONT}>{}</text>",
                x + cell_w / 2.0,
                y + cell_h * 0.65,
                money(v, 0)
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

/// Horizontal bars (value ± error) for labelled items, zero line in the middle.
pub fn bars_with_errors(items: &[(String, f64, f64)], title: &str) -> String {
    let (row_h, left, top) = (20.0, 190.0, 24.0);
    let height = top + row_h * items.len() as f64 + 10.0;
    let extreme = items
        .iter()
        .fold(0.0_f64, |m, (_, v, e)| m.max(v.abs() + e))
        .max(1.0);
    let half = (WIDTH - left - 20.0) / 2.0;
    let zero = left + half;
    let scale = |v: f64| v / extreme * half;
    let mut svg = format!(
        "<svg xmlns='http://www.w3.org/2000/svg' width='{WIDTH}' height='{height}' role='img' \
         aria-label='{}'><text x='{left}' y='12' {FONT}>{}</text>",
        escape(title),
        escape(title)
    );
    for (i, (label, value, error)) in items.iter().enumerate() {
        let y = top + row_h * i as f64;
        let (x0, w) = if *value < 0.0 {
            (zero + scale(*value), -scale(*value))
        } else {
            (zero, scale(*value))
        };
        let colour = if *value < 0.0 { "#27ae60" } else { "#c0392b" };
        let _ = write!(
            svg,
            "<text x='{:.1}' y='{:.1}' text-anchor='end' {FONT}>{}</text><rect x='{x0:.1}' \
             y='{:.1}' width='{w:.1}' height='{:.1}' fill='{colour}'/><line x1='{:.1}' y1='{:.1}' \
             x2='{:.1}' y2='{:.1}' stroke='#333'/>",
            left - 6.0,
            y + row_h * 0.7,
            escape(label),
            y + 3.0,
            row_h - 6.0,
            zero + scale(value - error),
            y + row_h / 2.0,
            zero + scale(value + error),
            y + row_h / 2.0
        );
    }
    let _ = write!(
        svg,
        "<line x1='{zero:.1}' y1='{top}' x2='{zero:.1}' y2='{:.1}' stroke='#333'/></svg>",
        height - 10.0
    );
    svg
}
