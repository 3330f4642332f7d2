//! The SVG bar chart: one group of horizontal bars per workload, log scale.

use std::path::Path;

use plotters::prelude::*;

use super::{Report, ns};

const COLORS: [RGBColor; 6] = [
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0x8c, 0x56, 0x4b),
];

pub(super) fn draw(report: &Report, path: &Path) -> Result<(), String> {
    let err = |e: &dyn std::fmt::Display| format!("drawing {}: {e}", path.display());
    let mut series: Vec<String> = report.engines.clone();
    if let Some(p) = report.perl.first() {
        series.push(p.engine.clone());
    }
    let workloads: Vec<&str> = report.workloads.iter().map(|(w, _)| w.as_str()).collect();
    let value = |e: &str, w: &str| report.median(e, w);
    let values: Vec<f64> = series
        .iter()
        .flat_map(|e| workloads.iter().filter_map(move |w| value(e, w)))
        .collect();
    let lo = values
        .iter()
        .copied()
        .fold(f64::INFINITY, f64::min)
        .max(1.0)
        / 2.0;
    let hi = values.iter().copied().fold(0.0, f64::max).max(lo * 10.0) * 2.0;
    let n = workloads.len().max(1);
    let height = (n as u32 * (series.len() as u32 * 9 + 12)).max(300) + 120;
    let root = SVGBackend::new(path, (1100, height)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!(
                "session stores, median ns per operation (log scale, shorter is faster), {} mode",
                report.mode
            ),
            ("sans-serif", 18),
        )
        .margin(12)
        .margin_right(40)
        .x_label_area_size(40)
        .y_label_area_size(150)
        .build_cartesian_2d((lo..hi).log_scale(), 0f64..n as f64)
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(0)
        .x_desc("time per operation")
        .x_label_formatter(&|v| ns(*v))
        .draw()
        .map_err(|e| err(&e))?;
    let band = 0.8 / series.len() as f64;
    for (si, engine) in series.iter().enumerate() {
        let color = COLORS[si % COLORS.len()];
        let bars: Vec<_> = workloads
            .iter()
            .enumerate()
            .filter_map(|(wi, w)| {
                let v = value(engine, w)?;
                let top = (n - 1 - wi) as f64 + 0.9 - band * si as f64;
                Some(Rectangle::new([(lo, top - band), (v, top)], color.filled()))
            })
            .collect();
        chart
            .draw_series(bars)
            .map_err(|e| err(&e))?
            .label(engine.as_str())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], color.filled()));
    }
    for (wi, w) in workloads.iter().enumerate() {
        let (px, py) = chart.backend_coord(&(lo, (n - 1 - wi) as f64 + 0.5));
        root.draw(&Text::new(
            w.to_string(),
            (px - 145, py - 6),
            ("sans-serif", 13).into_font(),
        ))
        .map_err(|e| err(&e))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::tests::sample;
    use super::*;

    #[test]
    fn every_workload_gets_a_label() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chart.svg");
        draw(&sample(), &path).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("get_at_1m"));
    }
}
