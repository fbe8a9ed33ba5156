//! The chart: calls per second (ok, failed) above, p50/p99 latency below, each fault a
//! vertical line in both. SVG only: it needs no system fonts, so it renders the same anywhere.

use std::path::Path;

use plotters::prelude::*;

use crate::error::{DrillError, Result};
use crate::report::Report;

/// Writes the chart of `report` to `path` (SVG).
pub fn write_svg(report: &Report, path: &Path) -> Result<()> {
    draw(report, path).map_err(|e| DrillError::Report(format!("chart: {e}")))
}

fn draw(report: &Report, path: &Path) -> std::result::Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::new(path, (1000, 640)).into_drawing_area();
    root.fill(&WHITE)?;
    let (top, bottom) = root.split_vertically(320);
    let x_max = report.duration_secs.max(1) as f64;
    let tl = &report.timeline;

    let calls_max = tl.iter().map(|s| s.ok + s.failed).max().unwrap_or(1).max(1) as f64;
    let mut c = ChartBuilder::on(&top)
        .caption(
            format!("drill {}: calls per second", report.scenario),
            ("sans-serif", 18),
        )
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(50)
        .build_cartesian_2d(0f64..x_max, 0f64..calls_max * 1.2)?;
    c.configure_mesh().x_desc("s").y_desc("calls").draw()?;
    let ok = tl.iter().map(|s| (s.t as f64, s.ok as f64));
    c.draw_series(LineSeries::new(ok, GREEN.stroke_width(2)))?
        .label("ok")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], GREEN));
    let failed = tl.iter().map(|s| (s.t as f64, s.failed as f64));
    c.draw_series(LineSeries::new(failed, RED.stroke_width(2)))?
        .label("failed")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED));
    for f in &report.faults {
        let color = if f.disruptive { &MAGENTA } else { &BLUE };
        c.draw_series(LineSeries::new(
            [(f.at_secs, 0.0), (f.at_secs, calls_max * 1.2)],
            color.stroke_width(1),
        ))?;
        c.draw_series(std::iter::once(Text::new(
            format!("{} {}", f.action, f.region),
            (f.at_secs + 0.3, calls_max * 1.12),
            ("sans-serif", 12).into_font().color(color),
        )))?;
    }
    c.configure_series_labels()
        .border_style(BLACK)
        .position(SeriesLabelPosition::LowerRight)
        .draw()?;

    let lat_max = tl.iter().filter_map(|s| s.p99_ms).fold(1.0f64, f64::max);
    let mut c = ChartBuilder::on(&bottom)
        .caption("latency (ms)", ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(50)
        .build_cartesian_2d(0f64..x_max, 0f64..lat_max * 1.1)?;
    c.configure_mesh().x_desc("s").y_desc("ms").draw()?;
    for (name, color, pick) in [
        (
            "p50",
            &BLUE,
            (|s: &crate::report::Second| s.p50_ms) as fn(&_) -> _,
        ),
        ("p99", &RGBColor(230, 120, 0), |s| s.p99_ms),
    ] {
        let pts: Vec<(f64, f64)> = tl
            .iter()
            .filter_map(|s| pick(s).map(|v| (s.t as f64, v)))
            .collect();
        let color = *color;
        c.draw_series(LineSeries::new(pts, color.stroke_width(2)))?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
    }
    for f in &report.faults {
        let color = if f.disruptive { &MAGENTA } else { &BLUE };
        c.draw_series(LineSeries::new(
            [(f.at_secs, 0.0), (f.at_secs, lat_max * 1.1)],
            color.stroke_width(1),
        ))?;
    }
    c.configure_series_labels()
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()?;
    root.present()?;
    Ok(())
}
