//! SVG plot of a `compare` run (plotters, SVG backend only): delivered vs offered packets/s per
//! round and backend, and one-way latency percentiles per backend.

use std::path::Path;

use anyhow::anyhow;
use plotters::prelude::*;

use crate::report::BackendSummary;

const QUANTILES: [(f64, &str); 6] =
    [(0.5, "p50"), (0.9, "p90"), (0.99, "p99"), (0.999, "p99.9"), (0.9999, "p99.99"), (1.0, "max")];

fn color(i: usize) -> RGBColor {
    [RGBColor(31, 119, 180), RGBColor(255, 127, 14), RGBColor(44, 160, 44), RGBColor(214, 39, 40)][i % 4]
}

fn kpps(v: &f64) -> String {
    format!("{:.0}k", v / 1000.0)
}

/// Writes the two-panel plot to `path`.
pub(crate) fn compare_svg(path: &Path, sums: &[BackendSummary], title: &str) -> anyhow::Result<()> {
    let e = |e: &dyn std::fmt::Display| anyhow!("plotting to {}: {e}", path.display());
    let root = SVGBackend::new(path, (1280, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(|x| e(&x))?;
    let root = root.titled(title, ("sans-serif", 20)).map_err(|x| e(&x))?;
    let (left, right) = root.split_horizontally(640);

    // Left: delivered vs offered.
    let max = sums
        .iter()
        .flat_map(|s| s.rounds.iter().map(|m| m.offered_pps().max(m.delivered_pps())))
        .fold(1.0f64, f64::max)
        * 1.1;
    let mut c = ChartBuilder::on(&left)
        .caption("delivered vs offered packets/s (one point per round)", ("sans-serif", 15))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..max, 0.0..max)
        .map_err(|x| e(&x))?;
    c.configure_mesh()
        .x_desc("offered pps")
        .y_desc("delivered pps")
        .x_label_formatter(&kpps)
        .y_label_formatter(&kpps)
        .draw()
        .map_err(|x| e(&x))?;
    c.draw_series(LineSeries::new([(0.0, 0.0), (max, max)], ShapeStyle::from(&BLACK.mix(0.3)).stroke_width(1)))
        .map_err(|x| e(&x))?
        .label("delivered = offered")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 18, y)], BLACK.mix(0.3)));
    for (i, s) in sums.iter().enumerate() {
        let col = color(i);
        c.draw_series(s.rounds.iter().map(|m| Circle::new((m.offered_pps(), m.delivered_pps()), 5, col.filled())))
            .map_err(|x| e(&x))?
            .label(format!("{} (median {:.0}k pps)", s.backend.name(), s.delivered_pps() / 1000.0))
            .legend(move |(x, y)| Circle::new((x + 9, y), 5, col.filled()));
    }
    c.configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(|x| e(&x))?;

    // Right: latency percentiles, log scale.
    let lat_max = sums.iter().map(|s| s.pct_us(1.0)).fold(10.0f64, f64::max) * 2.0;
    let lat_min =
        sums.iter().map(|s| s.pct_us(0.5)).filter(|v| *v > 0.0).fold(f64::MAX, f64::min).min(lat_max / 10.0) / 2.0;
    let mut c = ChartBuilder::on(&right)
        .caption("one-way latency from intended send time (µs, all rounds)", ("sans-serif", 15))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(-0.3f64..(QUANTILES.len() as f64 - 0.7), (lat_min.max(0.5)..lat_max).log_scale())
        .map_err(|x| e(&x))?;
    c.configure_mesh()
        .x_labels(QUANTILES.len())
        .x_label_formatter(&|v: &f64| {
            let i = v.round();
            if (v - i).abs() < 0.05 && i >= 0.0 && (i as usize) < QUANTILES.len() {
                QUANTILES[i as usize].1.to_owned()
            } else {
                String::new()
            }
        })
        .y_desc("µs")
        .y_label_formatter(&|v: &f64| format!("{v:.0}"))
        .draw()
        .map_err(|x| e(&x))?;
    for (i, s) in sums.iter().enumerate() {
        if s.hist.is_empty() {
            continue;
        }
        let col = color(i);
        let pts: Vec<(f64, f64)> =
            QUANTILES.iter().enumerate().map(|(k, (q, _))| (k as f64, s.pct_us(*q).max(lat_min))).collect();
        c.draw_series(LineSeries::new(pts.clone(), col.stroke_width(2)))
            .map_err(|x| e(&x))?
            .label(s.backend.name())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], col.stroke_width(2)));
        c.draw_series(pts.into_iter().map(|p| Circle::new(p, 3, col.filled()))).map_err(|x| e(&x))?;
    }
    c.configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(|x| e(&x))?;
    root.present().map_err(|x| e(&x))?;
    Ok(())
}
