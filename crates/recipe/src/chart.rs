//! Line charts as PNG files, drawn by `plotters`: a title, labelled axes with a light grid, and
//! a legend naming each line, in DejaVu Sans (embedded, so a chart looks the same on a machine
//! without fonts).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::OnceLock;

use grpo_trainer::Metrics;
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

use crate::error::{RecipeError, Result};

/// One named line.
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

impl Series {
    /// The metric `key` over `step`, from the metrics lines that have both, named `name`.
    pub fn from_metrics(metrics: &[Metrics], key: &str, name: &str) -> Series {
        Series {
            name: name.to_owned(),
            points: metrics
                .iter()
                .filter_map(|m| Some((*m.get("step")?, *m.get(key)?)))
                .collect(),
        }
    }
}

/// A chart: title, axis names, lines.
pub struct Chart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub series: Vec<Series>,
}

const WIDTH: u32 = 960;
const HEIGHT: u32 = 600;
/// Tableau's first colours: distinct, and readable on white.
const PALETTE: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];
/// The family name the embedded font is registered under.
const FONT: &str = "grpo-sans";

/// Registers the embedded font once per process.
fn font(path: &Path) -> Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        let bytes = include_bytes!("../assets/DejaVuSans.ttf");
        register_font(FONT, FontStyle::Normal, bytes).is_ok()
    });
    ok.then_some(()).ok_or_else(|| RecipeError::Chart {
        path: path.to_owned(),
        message: "the embedded chart font does not parse".into(),
    })
}

/// Renders `chart` and writes it to `path` as a PNG, atomically (into a temporary file beside
/// it, then renamed). Non-finite points are left out; a chart with no point is an error.
pub fn save(chart: &Chart, path: &Path) -> Result<()> {
    font(path)?;
    let points = || {
        chart
            .series
            .iter()
            .flat_map(|s| s.points.iter().copied())
            .filter(|(x, y)| x.is_finite() && y.is_finite())
    };
    if points().next().is_none() {
        return Err(RecipeError::Chart {
            path: path.to_owned(),
            message: "nothing to plot (no finite point)".into(),
        });
    }
    let x = padded(points().map(|p| p.0), 0.0);
    let y = padded(points().map(|p| p.1), 0.05);
    // The temporary file keeps `.png`: plotters picks the encoder by the extension.
    grpo_base::replace(path, |temp| draw(chart, temp, x, y))
}

fn draw(chart: &Chart, file: &Path, x: (f64, f64), y: (f64, f64)) -> Result<()> {
    let fail = |e: &dyn std::fmt::Display| RecipeError::Chart {
        path: file.to_owned(),
        message: format!("cannot draw: {e}"),
    };
    let root = BitMapBackend::new(file, (WIDTH, HEIGHT)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| fail(&e))?;
    let mut plot = ChartBuilder::on(&root)
        .caption(&chart.title, (FONT, 26))
        .margin(18)
        .x_label_area_size(52)
        .y_label_area_size(72)
        .build_cartesian_2d(x.0..x.1, y.0..y.1)
        .map_err(|e| fail(&e))?;
    plot.configure_mesh()
        .x_desc(&chart.x_label)
        .y_desc(&chart.y_label)
        .label_style((FONT, 15))
        .axis_desc_style((FONT, 17))
        .light_line_style(RGBColor(238, 238, 238))
        .bold_line_style(RGBColor(215, 215, 215))
        .draw()
        .map_err(|e| fail(&e))?;
    for (i, series) in chart.series.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let points = series
            .points
            .iter()
            .copied()
            .filter(|(x, y)| x.is_finite() && y.is_finite());
        plot.draw_series(LineSeries::new(points, color.stroke_width(3)))
            .map_err(|e| fail(&e))?
            .label(series.name.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(3))
            });
    }
    plot.configure_series_labels()
        .label_font((FONT, 15))
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(180, 180, 180))
        .position(SeriesLabelPosition::LowerRight)
        .draw()
        .map_err(|e| fail(&e))?;
    root.present().map_err(|e| fail(&e))?;
    Ok(())
}

/// The charts of a run, into `out`: `reward.png` (reward and train accuracy per GRPO step),
/// `accuracy.png` (greedy accuracy per split at each evaluation, from the warm-up model's at
/// step 0), `kl.png`, `completion_length.png`, and with an environment `tools.png` (tool calls
/// per episode and the share that failed, per GRPO step) and `tool_calls.png` (greedy tool
/// calls per episode per split at each evaluation, from the warm-up model's, `warmup_calls`).
pub fn run_charts(
    metrics: &[Metrics],
    warmup: &BTreeMap<String, f64>,
    warmup_calls: Option<&BTreeMap<String, f64>>,
    out: &Path,
) -> Result<()> {
    let series = |key: &str, name: &str| Series::from_metrics(metrics, key, name);
    let chart = |title: &str, y_label: &str, series: Vec<Series>| Chart {
        title: title.into(),
        x_label: "step".into(),
        y_label: y_label.into(),
        series,
    };
    save(
        &chart(
            "GRPO reward",
            "mean reward",
            vec![
                series("reward", "reward"),
                series("accuracy", "train accuracy"),
            ],
        ),
        &out.join("reward.png"),
    )?;
    // One line per split of the evaluation metric `eval/<split>/<key>`, from `start` at step 0.
    let per_split = |start: &BTreeMap<String, f64>, key: &str| -> Vec<Series> {
        start
            .iter()
            .map(|(name, &start)| {
                let mut line = series(&format!("eval/{name}/{key}"), name);
                line.points.insert(0, (0.0, start));
                line
            })
            .collect()
    };
    // A run of files without a `test_file` has no split to draw.
    if !warmup.is_empty() {
        save(
            &chart(
                "greedy accuracy per split",
                "pass@1",
                per_split(warmup, "pass@1"),
            ),
            &out.join("accuracy.png"),
        )?;
    }
    if let Some(calls) = warmup_calls {
        save(
            &chart(
                "greedy tool calls per split",
                "tool calls per episode",
                per_split(calls, "tool_calls"),
            ),
            &out.join("tool_calls.png"),
        )?;
    }
    save(
        &chart(
            "KL to the reference",
            "KL per token (0 when beta = 0)",
            vec![series("kl", "kl")],
        ),
        &out.join("kl.png"),
    )?;
    if metrics
        .iter()
        .any(|m| m.contains_key("tools/call_frequency"))
    {
        save(
            &chart(
                "tool use in GRPO's rollouts",
                "per episode / per call",
                vec![
                    series("tools/call_frequency", "tool calls per episode"),
                    series("tools/failure_frequency", "failed calls per call"),
                    series("episodes/mean_turns", "turns per episode"),
                ],
            ),
            &out.join("tools.png"),
        )?;
    }
    save(
        &chart(
            "completion length",
            "tokens",
            vec![
                series("completions/mean_length", "mean"),
                series("completions/max_length", "max"),
                series(
                    "completions/mean_terminated_length",
                    "mean of those that stopped",
                ),
            ],
        ),
        &out.join("completion_length.png"),
    )
}

/// The range of `values` widened by `margin` of its span on each side (and to a unit span
/// when every value is the same, so a flat line is drawn mid-chart, not on an edge).
fn padded(values: impl Iterator<Item = f64>, margin: f64) -> (f64, f64) {
    let (low, high) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if high - low < 1e-12 {
        return (low - 0.5, high + 0.5);
    }
    let pad = (high - low) * margin;
    (low - pad, high + pad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_is_a_png_with_every_line_drawn() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("reward.png");
        let chart = Chart {
            title: "reward".into(),
            x_label: "step".into(),
            y_label: "reward".into(),
            series: vec![
                Series {
                    name: "reward".into(),
                    points: vec![(0.0, 0.1), (1.0, 0.5), (2.0, f64::NAN), (3.0, 0.9)],
                },
                Series {
                    name: "accuracy".into(),
                    points: vec![(0.0, 0.3), (3.0, 0.2)],
                },
            ],
        };
        save(&chart, &path).unwrap();
        let image = image::open(&path).unwrap().to_rgb8();
        assert_eq!(image.dimensions(), (WIDTH, HEIGHT));
        // Each series' colour is on the canvas (its line and its legend swatch).
        for color in &PALETTE[..2] {
            let drawn = image
                .pixels()
                .filter(|p| p.0 == [color.0, color.1, color.2])
                .count();
            assert!(drawn > 100, "{color:?}: {drawn} pixels");
        }
        // Text is drawn in the embedded font: dark pixels in the title band.
        let title_ink = (0..WIDTH)
            .flat_map(|x| (0..40).map(move |y| (x, y)))
            .filter(|&(x, y)| image.get_pixel(x, y).0.iter().all(|&c| c < 100))
            .count();
        assert!(title_ink > 50, "{title_ink}");
        // Written atomically: nothing left beside it.
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn a_chart_without_a_finite_point_is_an_error_naming_the_file() {
        let chart = Chart {
            title: "t".into(),
            x_label: "x".into(),
            y_label: "y".into(),
            series: vec![Series {
                name: "nan".into(),
                points: vec![(0.0, f64::NAN)],
            }],
        };
        let error = save(&chart, Path::new("/tmp/never.png")).unwrap_err();
        assert!(error.to_string().contains("never.png"), "{error}");
    }

    #[test]
    fn a_flat_line_gets_a_unit_span() {
        assert_eq!(padded([2.0, 2.0].into_iter(), 0.05), (1.5, 2.5));
        let (low, high) = padded([0.0, 10.0].into_iter(), 0.05);
        assert!((low + 0.5).abs() < 1e-12 && (high - 10.5).abs() < 1e-12);
    }
}
