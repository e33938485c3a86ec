//! The SVG chart of `cargo xtask bench`: for every metric, how many times
//! better iris is than the CPython baseline and than the raw floor, on a
//! log scale (1× is parity; above is better, whichever way the metric
//! goes: a higher rate, a lower latency or memory).

use std::path::Path;

use anyhow::anyhow;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::report::Metric;

const WIDTH: u32 = 1100;
const HEIGHT: u32 = 600;
const CPYTHON_COLOUR: RGBColor = RGBColor(0x1f, 0x77, 0xb4);
const FLOOR_COLOUR: RGBColor = RGBColor(0xff, 0x7f, 0x0e);

struct Bar {
    label: String,
    cpython: Option<f64>,
    floor: Option<f64>,
}

/// Draws the chart to `path`; says so and draws nothing when no metric has
/// anything to compare with.
pub(crate) fn draw(
    path: &Path,
    metrics: &[Metric],
    baseline: &str,
    footnote: &str,
) -> anyhow::Result<bool> {
    let bars: Vec<Bar> = metrics
        .iter()
        .map(|metric| Bar {
            label: metric.short.clone(),
            cpython: metric.advantage(metric.cpython_median()),
            floor: metric.advantage(metric.floor_median()),
        })
        .filter(|bar| bar.cpython.is_some() || bar.floor.is_some())
        .collect();
    if bars.is_empty() {
        return Ok(false);
    }
    let values = bars
        .iter()
        .flat_map(|bar| [bar.cpython, bar.floor])
        .flatten();
    let low = values.clone().fold(1.0_f64, f64::min) / 2.5;
    let high = values.fold(1.0_f64, f64::max) * 2.5;
    let groups = bars.len() as f64;

    let root = SVGBackend::new(path, (WIDTH, HEIGHT)).into_drawing_area();
    let fail = |error: &dyn std::fmt::Display| anyhow!("cannot draw {}: {error}", path.display());
    root.fill(&WHITE).map_err(|e| fail(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("iris against {baseline} and against the raw loopback floor"),
            ("sans-serif", 20),
        )
        .margin(20)
        .x_label_area_size(60)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..groups, (low..high).log_scale())
        .map_err(|e| fail(&e))?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .y_desc("times better than … (log scale; 1× = parity)")
        .y_label_formatter(&|value| format!("{value}×"))
        .draw()
        .map_err(|e| fail(&e))?;

    let value_style = ("sans-serif", 11)
        .into_font()
        .color(&BLACK)
        .pos(Pos::new(HPos::Center, VPos::Bottom));
    for (series, colour, label, left) in [
        (0, CPYTHON_COLOUR, format!("vs {baseline}"), 0.08),
        (1, FLOOR_COLOUR, "vs raw floor".to_owned(), 0.5),
    ] {
        let pick = |bar: &Bar| if series == 0 { bar.cpython } else { bar.floor };
        chart
            .draw_series(bars.iter().enumerate().filter_map(|(index, bar)| {
                let value = pick(bar)?;
                let x = index as f64 + left;
                Some(Rectangle::new(
                    [(x, low), (x + 0.42, value)],
                    colour.filled(),
                ))
            }))
            .map_err(|e| fail(&e))?
            .label(label)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], colour.filled()));
        chart
            .draw_series(bars.iter().enumerate().filter_map(|(index, bar)| {
                let value = pick(bar)?;
                let x = index as f64 + left + 0.21;
                Some(Text::new(
                    format!("{}×", short_ratio(value)),
                    (x, value),
                    value_style.clone(),
                ))
            }))
            .map_err(|e| fail(&e))?;
    }
    chart
        .draw_series(std::iter::once(PathElement::new(
            vec![(0.0, 1.0), (groups, 1.0)],
            BLACK.stroke_width(1),
        )))
        .map_err(|e| fail(&e))?;
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|e| fail(&e))?;

    // The metric names under their groups, and the footnote.
    let name_style = ("sans-serif", 12)
        .into_font()
        .color(&BLACK)
        .pos(Pos::new(HPos::Center, VPos::Top));
    for (index, bar) in bars.iter().enumerate() {
        let (x, y) = chart.backend_coord(&(index as f64 + 0.5, low));
        for (line, text) in bar.label.split('\n').enumerate() {
            root.draw(&Text::new(
                text.to_owned(),
                (x, y + 8 + 15 * line as i32),
                name_style.clone(),
            ))
            .map_err(|e| fail(&e))?;
        }
    }
    let footnote_style = ("sans-serif", 11)
        .into_font()
        .color(&RGBColor(0x55, 0x55, 0x55))
        .pos(Pos::new(HPos::Right, VPos::Bottom));
    root.draw(&Text::new(
        footnote.to_owned(),
        (WIDTH as i32 - 10, HEIGHT as i32 - 6),
        footnote_style,
    ))
    .map_err(|e| fail(&e))?;
    root.present().map_err(|e| fail(&e))?;
    Ok(true)
}

fn short_ratio(value: f64) -> String {
    if value >= 10.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.2}")
    }
}
