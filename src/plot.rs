//! Line charts as PNG files, drawn by `plotters`: a title, labelled axes with a light grid, and
//! a legend naming each line, in DejaVu Sans (embedded, so a chart looks the same on a machine
//! without fonts).

use std::path::Path;
use std::sync::OnceLock;

use anyhow::{Context, Result, anyhow};
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

/// One named line.
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
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
fn font() -> Result<()> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        let bytes = include_bytes!("../assets/DejaVuSans.ttf");
        register_font(FONT, FontStyle::Normal, bytes).is_ok()
    });
    ok.then_some(())
        .ok_or_else(|| anyhow!("the embedded chart font does not parse"))
}

/// Renders `chart` and writes it to `path` as a PNG, atomically (into a temporary file beside
/// it, then renamed). Non-finite points are left out; a chart with no point is an error.
pub fn save(chart: &Chart, path: &Path) -> Result<()> {
    font()?;
    let points = || {
        chart
            .series
            .iter()
            .flat_map(|s| s.points.iter().copied())
            .filter(|(x, y)| x.is_finite() && y.is_finite())
    };
    anyhow::ensure!(
        points().next().is_some(),
        "{}: nothing to plot (no finite point)",
        path.display()
    );
    let x = padded(points().map(|p| p.0), 0.0);
    let y = padded(points().map(|p| p.1), 0.05);
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("chart");
    // plotters picks the encoder by the extension, so the temporary file keeps `.png`.
    let temp = path.with_file_name(format!(".{name}.tmp-{}.png", std::process::id()));
    let drawn = draw(chart, &temp, x, y);
    let outcome = drawn.and_then(|()| {
        std::fs::rename(&temp, path).with_context(|| format!("cannot write {}", path.display()))
    });
    if outcome.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    outcome
}

fn draw(chart: &Chart, file: &Path, x: (f64, f64), y: (f64, f64)) -> Result<()> {
    let fail = |e: &dyn std::fmt::Display| anyhow!("drawing {}: {e}", file.display());
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
