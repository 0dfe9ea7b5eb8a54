//! `--plot FILE.svg`: a grouped bar chart of the smalloc / peer ratios, one group per case (plus
//! the two footprint figures and the figures of the memory and tail-latency summary), one bar
//! per peer, on a logarithmic axis centred on 1.0 so that
//! "twice as fast" and "twice as slow" look the same size. Rendered with `plotters`' SVG backend.

use plotters::prelude::*;

use crate::results::Results;

/// Bar colours, one per peer (colour-blind-safe Okabe-Ito palette).
const COLOURS: [RGBColor; 7] = [
    RGBColor(0, 114, 178),
    RGBColor(230, 159, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(86, 180, 233),
    RGBColor(213, 94, 0),
    RGBColor(120, 120, 120),
];

/// Axis ticks at 1, 2 and 5 times the powers of ten between `lo` and `hi` (plotters' own log
/// axis labels only the powers of ten, which leaves most bars without a readable scale).
fn ticks(lo: f64, hi: f64) -> Vec<f64> {
    let mut v = Vec::new();
    let mut decade = 10f64.powi(lo.log10().floor() as i32);
    while decade <= hi {
        for m in [1.0, 2.0, 5.0] {
            let t = m * decade;
            if (lo..=hi).contains(&t) {
                v.push(t);
            }
        }
        decade *= 10.0;
    }
    v
}

/// Renders the chart of `r` into the SVG file `path`.
pub fn render(r: &Results, path: &str) -> Result<(), String> {
    let peers: Vec<(usize, &'static str)> = r.peers().map(|(a, id)| (a, id.name())).collect();
    if peers.is_empty() {
        return Err("--plot needs --compare: there is nothing to compare smalloc with".into());
    }
    // Rows: (label, one ratio per peer).
    let mut rows: Vec<(String, Vec<Option<f64>>)> = (0..r.cases.len())
        .map(|c| {
            let label = if r.cases[c].threads > r.cpus {
                format!("{}*", r.cases[c].name)
            } else {
                r.cases[c].name.clone()
            };
            (label, peers.iter().map(|&(a, _)| r.ratio(c, a)).collect())
        })
        .collect();
    if !r.footprint.is_empty() {
        for (label, pick) in [
            ("footprint peak RSS", 0usize),
            ("footprint RSS after free", 1),
        ] {
            let v = peers
                .iter()
                .map(|&(a, _)| {
                    r.footprint_ratios(a)
                        .map(|f| if pick == 0 { f.0 } else { f.1 })
                })
                .collect();
            rows.push((label.to_string(), v));
        }
    }
    let side: Vec<Vec<Option<f64>>> = peers.iter().map(|&(a, _)| r.side_ratios(a)).collect();
    for (i, label) in r.side_labels().into_iter().enumerate() {
        rows.push((label, side.iter().map(|v| v[i]).collect()));
    }
    let all: Vec<f64> = rows
        .iter()
        .flat_map(|r| r.1.iter().flatten())
        .copied()
        .collect();
    let lo = all.iter().copied().fold(1.0f64, f64::min) / 1.3;
    let hi = all.iter().copied().fold(1.0f64, f64::max) * 1.3;

    let n = rows.len();
    let height = 170 + 26 * n as u32;
    let root = SVGBackend::new(path, (1000, height)).into_drawing_area();
    let err = |e: &dyn std::fmt::Display| format!("cannot draw {path}: {e}");
    root.fill(&WHITE).map_err(|e| err(&e))?;
    // The legend gets a strip of its own below the chart, where it cannot hide a bar.
    let (area, legend) = root.split_vertically(height - 36);
    let mut chart = ChartBuilder::on(&area)
        .caption(
            "smalloc time / peer time (log scale; left of 1.0: smalloc faster or smaller)",
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(190)
        .build_cartesian_2d(
            (lo..hi).log_scale().with_key_points(ticks(lo, hi)),
            -0.5f64..(n as f64 - 0.5),
        )
        .map_err(|e| err(&e))?;
    // Row k is drawn at y = n - 1 - k so that the first case is at the top.
    let label_of = |y: &f64| {
        let k = y.round();
        if (y - k).abs() < 1e-6 && k >= 0.0 && (k as usize) < n {
            rows[n - 1 - k as usize].0.clone()
        } else {
            String::new()
        }
    };
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(n + 1)
        .y_label_formatter(&label_of)
        .x_label_formatter(&|x| format!("{x}"))
        .x_desc("ratio")
        .draw()
        .map_err(|e| err(&e))?;
    let band = 0.8 / peers.len() as f64;
    for (p, &(_, name)) in peers.iter().enumerate() {
        let colour = COLOURS[p % COLOURS.len()];
        // Peers top to bottom within a group, in legend order.
        let bars = rows.iter().enumerate().filter_map(|(k, row)| {
            let v = row.1[p]?;
            let y1 = (n - 1 - k) as f64 + 0.4 - band * p as f64;
            Some(Rectangle::new(
                [(1.0, y1 - band * 0.9), (v, y1)],
                colour.filled(),
            ))
        });
        chart.draw_series(bars).map_err(|e| err(&e))?;
        let x = 210 + 130 * p as i32;
        legend
            .draw(&Rectangle::new([(x, 10), (x + 14, 24)], colour.filled()))
            .map_err(|e| err(&e))?;
        legend
            .draw(&Text::new(name, (x + 20, 10), ("sans-serif", 15)))
            .map_err(|e| err(&e))?;
    }
    chart
        .draw_series(std::iter::once(PathElement::new(
            vec![(1.0, -0.5), (1.0, n as f64 - 0.5)],
            BLACK.stroke_width(1),
        )))
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}
