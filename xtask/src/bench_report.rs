//! What `cargo xtask bench` measured, and how it is shown: the metrics with
//! their runs, the statistics, the targets, the table (plain and Markdown)
//! and the JSON.

use std::fmt::Write as _;

use serde::Serialize;

/// Whether more of a metric is better (rates) or less (latency, memory).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Better {
    Higher,
    Lower,
}

/// How values of a metric are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Unit {
    /// Per second, with k/M/G suffixes.
    PerSecond,
    /// Microseconds.
    Micros,
    /// Megabytes (10^6) per second.
    MegabytesPerSecond,
    /// Mebibytes.
    Mebibytes,
    /// Kibibytes.
    Kibibytes,
}

impl Unit {
    pub(crate) fn format(self, value: f64) -> String {
        match self {
            Unit::PerSecond => si(value),
            Unit::Micros | Unit::Mebibytes | Unit::Kibibytes => significant(value),
            Unit::MegabytesPerSecond => format!("{value:.0}"),
        }
    }
}

/// `1.23M`, `45.6k`, `789`.
fn si(value: f64) -> String {
    let (scaled, suffix) = if value >= 1e9 {
        (value / 1e9, "G")
    } else if value >= 1e6 {
        (value / 1e6, "M")
    } else if value >= 1e3 {
        (value / 1e3, "k")
    } else {
        (value, "")
    };
    format!("{}{suffix}", significant(scaled))
}

/// Three significant digits, at most one decimal past them: `123`, `12.3`,
/// `1.23`, `0.123`.
fn significant(value: f64) -> String {
    let magnitude = value.abs();
    if magnitude >= 100.0 {
        format!("{value:.0}")
    } else if magnitude >= 10.0 {
        format!("{value:.1}")
    } else if magnitude >= 1.0 {
        format!("{value:.2}")
    } else {
        format!("{value:.3}")
    }
}

/// Median, minimum and maximum of some runs.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub(crate) struct Stats {
    pub(crate) median: f64,
    pub(crate) min: f64,
    pub(crate) max: f64,
    pub(crate) runs: usize,
}

impl Stats {
    pub(crate) fn of(values: &[f64]) -> Option<Stats> {
        let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
        if sorted.is_empty() {
            return None;
        }
        sorted.sort_by(f64::total_cmp);
        Some(Stats {
            median: quantile_sorted(&sorted, 0.5),
            min: sorted[0],
            max: sorted[sorted.len() - 1],
            runs: sorted.len(),
        })
    }
}

/// The `q` quantile (0..=1) of sorted values, interpolating linearly.
pub(crate) fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    match sorted.len() {
        0 => f64::NAN,
        1 => sorted[0],
        n => {
            let position = q.clamp(0.0, 1.0) * (n - 1) as f64;
            let below = position.floor() as usize;
            let above = (below + 1).min(n - 1);
            let fraction = position - below as f64;
            sorted[below] + (sorted[above] - sorted[below]) * fraction
        }
    }
}

/// One side's runs of a metric, for the table and the JSON.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Series {
    /// `iris`, `CPython 3.13`, `floor`.
    pub(crate) label: String,
    pub(crate) runs: Vec<f64>,
}

impl Series {
    pub(crate) fn new(label: impl Into<String>) -> Series {
        Series {
            label: label.into(),
            runs: Vec::new(),
        }
    }

    pub(crate) fn stats(&self) -> Option<Stats> {
        Stats::of(&self.runs)
    }

    fn median(&self) -> Option<f64> {
        self.stats().map(|stats| stats.median)
    }
}

/// A goal from the issue, checked against the medians.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub(crate) enum Goal {
    /// iris's median at least this.
    AtLeast(f64),
    /// iris's median at most this.
    AtMost(f64),
    /// iris / CPython at least this.
    CpythonRatioAtLeast(f64),
    /// iris / CPython at most this.
    CpythonRatioAtMost(f64),
    /// iris / floor at least this.
    FloorRatioAtLeast(f64),
    /// iris / floor at most this.
    FloorRatioAtMost(f64),
    /// iris (sealed) / iris unsealed at least this.
    UnsealedRatioAtLeast(f64),
    /// iris (sealed) / iris unsealed at most this.
    UnsealedRatioAtMost(f64),
}

impl Goal {
    fn describe(&self, unit: Unit) -> String {
        match *self {
            Goal::AtLeast(value) => format!("≥ {}", unit.format(value)),
            Goal::AtMost(value) => format!("≤ {}", unit.format(value)),
            Goal::CpythonRatioAtLeast(ratio) => format!("≥ {}× CPython", significant(ratio)),
            Goal::CpythonRatioAtMost(ratio) => format!("≤ {}× CPython", significant(ratio)),
            Goal::FloorRatioAtLeast(ratio) => format!("≥ {}× floor", significant(ratio)),
            Goal::FloorRatioAtMost(ratio) => format!("≤ {}× floor", significant(ratio)),
            Goal::UnsealedRatioAtLeast(ratio) => format!("≥ {}× unsealed", significant(ratio)),
            Goal::UnsealedRatioAtMost(ratio) => format!("≤ {}× unsealed", significant(ratio)),
        }
    }

    /// Whether the goal is met; `None` when what it compares with is missing.
    fn met(&self, iris: f64, others: &Others) -> Option<bool> {
        let Others {
            cpython,
            floor,
            unsealed,
        } = *others;
        match *self {
            Goal::AtLeast(value) => Some(iris >= value),
            Goal::AtMost(value) => Some(iris <= value),
            Goal::CpythonRatioAtLeast(ratio) => cpython.map(|c| iris / c >= ratio),
            Goal::CpythonRatioAtMost(ratio) => cpython.map(|c| iris / c <= ratio),
            Goal::FloorRatioAtLeast(ratio) => floor.map(|f| iris / f >= ratio),
            Goal::FloorRatioAtMost(ratio) => floor.map(|f| iris / f <= ratio),
            Goal::UnsealedRatioAtLeast(ratio) => unsealed.map(|u| iris / u >= ratio),
            Goal::UnsealedRatioAtMost(ratio) => unsealed.map(|u| iris / u <= ratio),
        }
    }
}

/// The medians iris's is compared with.
#[derive(Clone, Copy)]
struct Others {
    cpython: Option<f64>,
    floor: Option<f64>,
    unsealed: Option<f64>,
}

/// One row group of the table: a quantity measured for iris, CPython (the
/// baseline and maybe other versions) and maybe a raw floor.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct Metric {
    pub(crate) scenario: &'static str,
    pub(crate) name: String,
    /// A short name for the chart.
    pub(crate) short: String,
    pub(crate) unit: Unit,
    pub(crate) better: Better,
    pub(crate) iris: Series,
    /// The baseline CPython (3.13 when present).
    pub(crate) cpython: Option<Series>,
    /// Other CPython versions, shown as extra rows.
    pub(crate) extras: Vec<Series>,
    pub(crate) floor: Option<Series>,
    /// iris with sealing off on both ends, where the iris series is sealed;
    /// its label names the row.
    pub(crate) unsealed: Option<Series>,
    pub(crate) goals: Vec<Goal>,
}

impl Metric {
    pub(crate) fn new(
        scenario: &'static str,
        name: impl Into<String>,
        short: impl Into<String>,
        unit: Unit,
        better: Better,
    ) -> Metric {
        Metric {
            scenario,
            name: name.into(),
            short: short.into(),
            unit,
            better,
            iris: Series::new("iris"),
            cpython: None,
            extras: Vec::new(),
            floor: None,
            unsealed: None,
            goals: Vec::new(),
        }
    }

    pub(crate) fn with_cpython(mut self, label: Option<&str>) -> Metric {
        self.cpython = label.map(Series::new);
        self
    }

    pub(crate) fn with_extras(mut self, labels: &[String]) -> Metric {
        self.extras = labels.iter().map(Series::new).collect();
        self
    }

    pub(crate) fn with_floor(mut self) -> Metric {
        self.floor = Some(Series::new("floor"));
        self
    }

    /// Adds the unsealed series, its row named `name`.
    pub(crate) fn with_unsealed(mut self, name: impl Into<String>) -> Metric {
        self.unsealed = Some(Series::new(name));
        self
    }

    pub(crate) fn with_goals(mut self, goals: Vec<Goal>) -> Metric {
        self.goals = goals;
        self
    }

    pub(crate) fn push_cpython(&mut self, value: f64) {
        if let Some(series) = &mut self.cpython {
            series.runs.push(value);
        }
    }

    pub(crate) fn push_extra(&mut self, label: &str, value: f64) {
        if let Some(series) = self.extras.iter_mut().find(|s| s.label == label) {
            series.runs.push(value);
        }
    }

    pub(crate) fn push_floor(&mut self, value: f64) {
        if let Some(series) = &mut self.floor {
            series.runs.push(value);
        }
    }

    pub(crate) fn push_unsealed(&mut self, value: f64) {
        if let Some(series) = &mut self.unsealed {
            series.runs.push(value);
        }
    }

    pub(crate) fn iris_median(&self) -> Option<f64> {
        self.iris.median()
    }

    pub(crate) fn cpython_median(&self) -> Option<f64> {
        self.cpython.as_ref().and_then(Series::median)
    }

    pub(crate) fn floor_median(&self) -> Option<f64> {
        self.floor.as_ref().and_then(Series::median)
    }

    pub(crate) fn unsealed_median(&self) -> Option<f64> {
        self.unsealed.as_ref().and_then(Series::median)
    }

    fn others(&self) -> Others {
        Others {
            cpython: self.cpython_median(),
            floor: self.floor_median(),
            unsealed: self.unsealed_median(),
        }
    }

    /// How many times better than `other` iris is, whichever direction
    /// "better" is: above 1 means iris wins. For the chart.
    pub(crate) fn advantage(&self, other: Option<f64>) -> Option<f64> {
        let iris = self.iris_median()?;
        let other = other?;
        let ratio = match self.better {
            Better::Higher => iris / other,
            Better::Lower => other / iris,
        };
        ratio.is_finite().then_some(ratio)
    }

    /// `✓ ≥ 20M; ✗ ≥ 100× CPython`, or empty.
    pub(crate) fn goals_text(&self) -> String {
        let Some(iris) = self.iris_median() else {
            return String::new();
        };
        let others = self.others();
        self.goals
            .iter()
            .map(|goal| {
                let mark = match goal.met(iris, &others) {
                    Some(true) => "✓",
                    Some(false) => "✗",
                    None => "?",
                };
                format!("{mark} {}", goal.describe(self.unit))
            })
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Whether every goal that can be checked is met.
    pub(crate) fn goals_met(&self) -> Option<bool> {
        let iris = self.iris_median()?;
        let others = self.others();
        let checks: Vec<bool> = self
            .goals
            .iter()
            .filter_map(|goal| goal.met(iris, &others))
            .collect();
        (!checks.is_empty()).then(|| checks.iter().all(|&met| met))
    }
}

fn cell(unit: Unit, series: Option<&Series>) -> String {
    match series.and_then(Series::stats) {
        Some(stats) if stats.runs > 1 => format!(
            "{} [{}–{}]",
            unit.format(stats.median),
            unit.format(stats.min),
            unit.format(stats.max)
        ),
        Some(stats) => unit.format(stats.median),
        None => "—".to_owned(),
    }
}

fn ratio(numerator: Option<f64>, denominator: Option<f64>) -> String {
    match (numerator, denominator) {
        (Some(n), Some(d)) if d != 0.0 => format!("{}×", significant(n / d)),
        _ => "—".to_owned(),
    }
}

/// The table's rows, as cells.
fn rows(metrics: &[Metric], baseline: &str) -> (Vec<String>, Vec<Vec<String>>) {
    let header = vec![
        "scenario".to_owned(),
        "metric".to_owned(),
        "iris median [min–max]".to_owned(),
        format!("{baseline} median [min–max]"),
        "iris/CPython".to_owned(),
        "floor median [min–max]".to_owned(),
        "iris/floor".to_owned(),
        "sealed/unsealed".to_owned(),
        "target".to_owned(),
    ];
    let mut rows = Vec::new();
    for metric in metrics {
        let iris = metric.iris_median();
        rows.push(vec![
            metric.scenario.to_owned(),
            metric.name.clone(),
            cell(metric.unit, Some(&metric.iris)),
            cell(metric.unit, metric.cpython.as_ref()),
            ratio(iris, metric.cpython_median()),
            cell(metric.unit, metric.floor.as_ref()),
            ratio(iris, metric.floor_median()),
            match &metric.unsealed {
                Some(_) => ratio(iris, metric.unsealed_median()),
                None => String::new(),
            },
            metric.goals_text(),
        ]);
        // The same CPython and floor runs, against unsealed iris.
        if let Some(unsealed) = &metric.unsealed {
            let median = unsealed.median();
            let same =
                |series: Option<&Series>| if series.is_some() { "″" } else { "—" }.to_owned();
            rows.push(vec![
                metric.scenario.to_owned(),
                unsealed.label.clone(),
                cell(metric.unit, Some(unsealed)),
                same(metric.cpython.as_ref()),
                ratio(median, metric.cpython_median()),
                same(metric.floor.as_ref()),
                ratio(median, metric.floor_median()),
                String::new(),
                String::new(),
            ]);
        }
        for extra in &metric.extras {
            if extra.runs.is_empty() {
                continue;
            }
            rows.push(vec![
                metric.scenario.to_owned(),
                format!("{} (vs {})", metric.name, extra.label),
                "″".to_owned(),
                cell(metric.unit, Some(extra)),
                ratio(iris, extra.median()),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
            ]);
        }
    }
    (header, rows)
}

/// The table in plain text, columns aligned.
pub(crate) fn plain_table(metrics: &[Metric], baseline: &str) -> String {
    let (header, rows) = rows(metrics, baseline);
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[String]| {
        let mut text = String::new();
        for (index, (cell, width)) in cells.iter().zip(&widths).enumerate() {
            if index > 0 {
                text.push_str("  ");
            }
            let pad = width - cell.chars().count();
            text.push_str(cell);
            text.extend(std::iter::repeat_n(' ', pad));
        }
        let _ = writeln!(out, "{}", text.trim_end());
    };
    line(&header);
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    line(&rule);
    for row in &rows {
        line(row);
    }
    out
}

/// The table in Markdown, for the README.
pub(crate) fn markdown_table(metrics: &[Metric], baseline: &str) -> String {
    let (header, rows) = rows(metrics, baseline);
    let mut out = String::new();
    let _ = writeln!(out, "| {} |", header.join(" | "));
    let _ = writeln!(
        out,
        "|{}",
        header.iter().map(|_| "---|").collect::<String>()
    );
    for row in rows {
        let _ = writeln!(out, "| {} |", row.join(" | "));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statistics_of_runs() {
        let stats = Stats::of(&[3.0, 1.0, 2.0, 10.0]).expect("stats");
        assert_eq!(stats.median, 2.5);
        assert_eq!((stats.min, stats.max, stats.runs), (1.0, 10.0, 4));
        assert_eq!(Stats::of(&[]), None);
        assert_eq!(quantile_sorted(&[1.0, 2.0, 3.0], 0.5), 2.0);
        assert_eq!(quantile_sorted(&[0.0, 10.0], 0.99), 9.9);
    }

    #[test]
    fn values_are_written_briefly() {
        assert_eq!(Unit::PerSecond.format(21_345_678.0), "21.3M");
        assert_eq!(Unit::PerSecond.format(4_400.0), "4.40k");
        assert_eq!(Unit::Micros.format(96.4), "96.4");
        assert_eq!(Unit::Micros.format(1234.0), "1234");
        assert_eq!(Unit::MegabytesPerSecond.format(4_912.4), "4912");
    }

    #[test]
    fn goals_compare_medians() {
        let mut metric = Metric::new("ping", "p50 µs", "ping", Unit::Micros, Better::Lower)
            .with_cpython(Some("CPython 3.13"))
            .with_floor()
            .with_goals(vec![Goal::FloorRatioAtMost(1.2)]);
        metric.iris.runs.extend([78.0, 80.0, 82.0]);
        metric.push_floor(70.0);
        metric.push_cpython(160.0);
        assert_eq!(metric.goals_text(), "✓ ≤ 1.20× floor");
        assert_eq!(metric.goals_met(), Some(true));
        assert_eq!(metric.advantage(metric.cpython_median()), Some(2.0));
        let table = plain_table(&[metric], "CPython 3.13");
        assert!(table.contains("80.0 [78.0–82.0]"), "{table}");
        assert!(table.contains("0.500×"), "{table}");
    }

    #[test]
    fn sealed_rows_compare_with_unsealed() {
        let mut metric = Metric::new(
            "bulk",
            "MB/s, sealed",
            "bulk",
            Unit::MegabytesPerSecond,
            Better::Higher,
        )
        .with_unsealed("MB/s, unsealed")
        .with_goals(vec![Goal::UnsealedRatioAtLeast(0.7)]);
        metric.iris.runs.extend([600.0, 700.0, 800.0]);
        for value in [900.0, 1000.0, 1100.0] {
            metric.push_unsealed(value);
        }
        assert_eq!(metric.goals_text(), "✓ ≥ 0.700× unsealed");
        assert_eq!(metric.goals_met(), Some(true));
        metric.goals = vec![Goal::UnsealedRatioAtLeast(0.8)];
        assert_eq!(metric.goals_met(), Some(false));
        let table = plain_table(&[metric], "CPython 3.13");
        let unsealed_row = table
            .lines()
            .find(|line| line.contains("MB/s, unsealed"))
            .expect("an unsealed row");
        assert!(unsealed_row.contains("1000 [900–1100]"), "{table}");
        let sealed_row = table
            .lines()
            .find(|line| line.contains("MB/s, sealed"))
            .expect("a sealed row");
        assert!(sealed_row.contains("0.700×"), "{table}");
    }
}
