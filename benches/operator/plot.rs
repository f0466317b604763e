//! results.png: API calls per resync (bulk against per-resource) and convergence time against
//! the floor. Needs a TrueType font (DejaVu Sans); without one the plot is skipped.

use std::path::Path;

use plotters::prelude::*;

use crate::report::Report;

const FONTS: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
];

fn register_font() -> Result<(), String> {
    let bytes = FONTS
        .iter()
        .find_map(|p| std::fs::read(p).ok())
        .ok_or("no TrueType font found (looked for DejaVu Sans)")?;
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
        .map_err(|_| "the font could not be loaded".to_string())
}

fn log_range(values: impl Iterator<Item = f64>) -> std::ops::Range<f64> {
    let (lo, hi) = values
        .filter(|v| *v > 0.0)
        .fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if lo > hi {
        return 1.0..10.0;
    }
    let lo = 10f64.powf(lo.log10().floor());
    let hi = 10f64.powf(hi.log10().ceil()).max(lo * 10.0);
    lo..hi
}

pub fn draw(report: &Report, path: &Path) -> Result<(), String> {
    if report.steady_points.is_empty() && report.convergence_points.is_empty() {
        return Err("nothing to plot".into());
    }
    register_font()?;
    let e = |e: DrawingAreaErrorKind<_>| e.to_string();
    let root = BitMapBackend::new(path, (1200, 500)).into_drawing_area();
    root.fill(&WHITE).map_err(e)?;
    let (left, right) = root.split_horizontally(600);

    if !report.steady_points.is_empty() {
        let pts = &report.steady_points;
        let x = log_range(pts.iter().map(|p| p.0 as f64));
        let y = log_range(pts.iter().flat_map(|p| [p.1, p.2]));
        let mut chart = ChartBuilder::on(&left)
            .caption(
                "Steady state: cloud GET calls per resync",
                ("sans-serif", 20),
            )
            .margin(15)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(x.log_scale(), y.log_scale())
            .map_err(e)?;
        chart
            .configure_mesh()
            .x_desc("Compute objects (N)")
            .y_desc("GET calls per resync")
            .draw()
            .map_err(e)?;
        for (name, color, pick) in [
            ("per-resource (baseline)", RED, 2usize),
            ("bulk (shared listing)", BLUE, 1usize),
        ] {
            let series: Vec<(f64, f64)> = pts
                .iter()
                .map(|p| (p.0 as f64, if pick == 1 { p.1 } else { p.2 }))
                .collect();
            chart
                .draw_series(LineSeries::new(series.clone(), color.stroke_width(2)))
                .map_err(e)?
                .label(name)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
            chart
                .draw_series(series.iter().map(|&p| Circle::new(p, 4, color.filled())))
                .map_err(e)?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .draw()
            .map_err(e)?;
    }

    if !report.convergence_points.is_empty() {
        let pts = &report.convergence_points;
        let x = log_range(pts.iter().map(|p| p.0 as f64));
        let y = log_range(pts.iter().flat_map(|p| [p.1, p.2, p.3]));
        let mut chart = ChartBuilder::on(&right)
            .caption("Convergence at 2 requests/second", ("sans-serif", 20))
            .margin(15)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(x.log_scale(), y.log_scale())
            .map_err(e)?;
        chart
            .configure_mesh()
            .x_desc("Computes applied at once (N)")
            .y_desc("seconds")
            .draw()
            .map_err(e)?;
        for (name, color, pick) in [
            ("time until all Ready", BLUE, 1usize),
            ("floor: calls made / 2 per s", BLACK, 2usize),
            (
                "floor: minimum calls / 2 per s",
                RGBColor(0, 140, 0),
                3usize,
            ),
        ] {
            let series: Vec<(f64, f64)> = pts
                .iter()
                .map(|p| {
                    let y = match pick {
                        1 => p.1,
                        2 => p.2,
                        _ => p.3,
                    };
                    (p.0 as f64, y)
                })
                .collect();
            chart
                .draw_series(LineSeries::new(series.clone(), color.stroke_width(2)))
                .map_err(e)?
                .label(name)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
            chart
                .draw_series(series.iter().map(|&p| Circle::new(p, 4, color.filled())))
                .map_err(e)?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .draw()
            .map_err(e)?;
    }
    root.present().map_err(|e| e.to_string())?;
    Ok(())
}
