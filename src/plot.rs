//! Line charts as PNG files, with no dependency beyond flate2: a small rasteriser, a 3×5 pixel
//! font, and a PNG encoder. Enough for training curves (`reward`, accuracy per split).

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};

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

const WIDTH: usize = 800;
const HEIGHT: usize = 500;
const SCALE: usize = 2;
const LEFT: usize = 80;
const RIGHT: usize = 30;
const TOP: usize = 50;
const BOTTOM: usize = 60;
const PALETTE: [[u8; 3]; 6] = [
    [31, 119, 180],
    [214, 39, 40],
    [44, 160, 44],
    [255, 127, 14],
    [148, 103, 189],
    [140, 86, 75],
];

struct Canvas {
    pixels: Vec<[u8; 3]>,
}

impl Canvas {
    fn new() -> Canvas {
        Canvas {
            pixels: vec![[255; 3]; WIDTH * HEIGHT],
        }
    }

    fn dot(&mut self, x: i64, y: i64, color: [u8; 3]) {
        if (0..WIDTH as i64).contains(&x) && (0..HEIGHT as i64).contains(&y) {
            self.pixels[y as usize * WIDTH + x as usize] = color;
        }
    }

    /// A line `width` pixels thick (Bresenham, stamping a square).
    fn line(&mut self, (x0, y0): (i64, i64), (x1, y1): (i64, i64), color: [u8; 3], width: i64) {
        let (dx, dy) = ((x1 - x0).abs(), -(y1 - y0).abs());
        let (sx, sy) = (if x0 < x1 { 1 } else { -1 }, if y0 < y1 { 1 } else { -1 });
        let (mut x, mut y, mut err) = (x0, y0, dx + dy);
        loop {
            for ox in 0..width {
                for oy in 0..width {
                    self.dot(x + ox - width / 2, y + oy - width / 2, color);
                }
            }
            if x == x1 && y == y1 {
                break;
            }
            let e2 = 2 * err;
            if e2 >= dy {
                err += dy;
                x += sx;
            }
            if e2 <= dx {
                err += dx;
                y += sy;
            }
        }
    }

    /// Text with its top-left corner at (x, y).
    fn text(&mut self, x: i64, y: i64, text: &str, color: [u8; 3]) {
        for (i, c) in text.chars().enumerate() {
            let rows = glyph(c);
            let left = x + (i * 4 * SCALE) as i64;
            for (r, row) in rows.iter().enumerate() {
                for (col, bit) in row.bytes().enumerate() {
                    if bit == b'#' {
                        for sx in 0..SCALE {
                            for sy in 0..SCALE {
                                self.dot(
                                    left + (col * SCALE + sx) as i64,
                                    y + (r * SCALE + sy) as i64,
                                    color,
                                );
                            }
                        }
                    }
                }
            }
        }
    }
}

fn text_width(text: &str) -> i64 {
    (text.chars().count() * 4 * SCALE) as i64
}

/// Renders `chart` and writes it to `path` as a PNG, atomically.
pub fn save(chart: &Chart, path: &Path) -> Result<()> {
    let canvas = render(chart);
    let png = encode_png(&canvas.pixels, WIDTH, HEIGHT);
    let mut file = grpo_data::AtomicFile::create(path)?;
    file.writer()
        .write_all(&png)
        .with_context(|| format!("cannot write {}", path.display()))?;
    file.commit()?;
    Ok(())
}

fn render(chart: &Chart) -> Canvas {
    let mut canvas = Canvas::new();
    let black = [0, 0, 0];
    let grey = [220, 220, 220];
    let points: Vec<(f64, f64)> = chart
        .series
        .iter()
        .flat_map(|s| s.points.iter().copied())
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .collect();
    let (x_min, x_max, x_step) = axis(bounds(points.iter().map(|p| p.0)));
    let (y_min, y_max, y_step) = axis(bounds(points.iter().map(|p| p.1)));
    let (plot_w, plot_h) = (
        (WIDTH - LEFT - RIGHT) as f64,
        (HEIGHT - TOP - BOTTOM) as f64,
    );
    let to_px = |(x, y): (f64, f64)| {
        (
            LEFT as i64 + ((x - x_min) / (x_max - x_min) * plot_w).round() as i64,
            (TOP as f64 + plot_h - (y - y_min) / (y_max - y_min) * plot_h).round() as i64,
        )
    };
    // Grid and tick labels, at round values.
    for y in ticks(y_min, y_max, y_step) {
        let (_, py) = to_px((x_min, y));
        canvas.line((LEFT as i64, py), ((WIDTH - RIGHT) as i64, py), grey, 1);
        let label = tick(y, y_step);
        canvas.text(LEFT as i64 - 8 - text_width(&label), py - 5, &label, black);
    }
    for x in ticks(x_min, x_max, x_step) {
        let (px, _) = to_px((x, y_min));
        canvas.line((px, TOP as i64), (px, (HEIGHT - BOTTOM) as i64), grey, 1);
        let label = tick(x, x_step);
        canvas.text(
            px - text_width(&label) / 2,
            (HEIGHT - BOTTOM) as i64 + 8,
            &label,
            black,
        );
    }
    // Axes, title, axis names.
    let (x0, y0) = (LEFT as i64, (HEIGHT - BOTTOM) as i64);
    canvas.line((x0, TOP as i64), (x0, y0), black, 2);
    canvas.line((x0, y0), ((WIDTH - RIGHT) as i64, y0), black, 2);
    canvas.text(
        WIDTH as i64 / 2 - text_width(&chart.title) / 2,
        14,
        &chart.title,
        black,
    );
    canvas.text(
        WIDTH as i64 / 2 - text_width(&chart.x_label) / 2,
        HEIGHT as i64 - 24,
        &chart.x_label,
        black,
    );
    canvas.text(8, TOP as i64 - 22, &chart.y_label, black);
    // Lines, then the legend on top.
    for (i, series) in chart.series.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        let finite: Vec<(i64, i64)> = series
            .points
            .iter()
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .map(|&p| to_px(p))
            .collect();
        for pair in finite.windows(2) {
            canvas.line(pair[0], pair[1], color, 2);
        }
        if let [only] = finite.as_slice() {
            canvas.line(*only, *only, color, 5);
        }
        let ly = TOP as i64 + 10 + 16 * i as i64;
        canvas.line((x0 + 12, ly + 4), (x0 + 36, ly + 4), color, 3);
        canvas.text(x0 + 44, ly, &series.name, black);
    }
    canvas
}

/// Smallest and largest value; (0, 1) when there are none.
fn bounds(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
        (lo.min(v), hi.max(v))
    });
    if lo.is_finite() { (lo, hi) } else { (0.0, 1.0) }
}

/// The axis `(from, to, step)` covering `(lo, hi)`: a step of 1, 2, 2.5 or 5 times a power of
/// ten giving about five intervals, the ends rounded outward to it (Heckbert, "Nice numbers
/// for graph labels", Graphics Gems 1990).
fn axis((lo, hi): (f64, f64)) -> (f64, f64, f64) {
    let span = if hi > lo { hi - lo } else { lo.abs().max(1.0) };
    let raw = span / 5.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = magnitude
        * match raw / magnitude {
            f if f <= 1.0 => 1.0,
            f if f <= 2.0 => 2.0,
            f if f <= 2.5 => 2.5,
            f if f <= 5.0 => 5.0,
            _ => 10.0,
        };
    let from = (lo / step).floor() * step;
    let to = ((hi / step).ceil() * step).max(from + step);
    (from, to, step)
}

/// The tick values `from, from + step, …, to`, each computed from its index so that rounding
/// does not accumulate.
fn ticks(from: f64, to: f64, step: f64) -> impl Iterator<Item = f64> {
    let count = ((to - from) / step).round() as usize;
    (0..=count).map(move |i| from + i as f64 * step)
}

/// A tick label with as many decimals as the step needs (`0.5`, `2.5`, `0.25`, `20`).
fn tick(v: f64, step: f64) -> String {
    let decimals = (0..=6)
        .find(|&d| {
            let scaled = step * 10f64.powi(d);
            (scaled - scaled.round()).abs() < 1e-6 * scaled.max(1.0)
        })
        .unwrap_or(6) as usize;
    // `-0.0` prints as `-0`; a tick at zero is plain `0`.
    let v = if v.abs() < step * 1e-9 { 0.0 } else { v };
    format!("{v:.decimals$}")
}

/// A 3×5 glyph, rows top to bottom; letters are drawn upper case.
fn glyph(c: char) -> [&'static str; 5] {
    match c.to_ascii_uppercase() {
        '0' => ["###", "#.#", "#.#", "#.#", "###"],
        '1' => [".#.", "##.", ".#.", ".#.", "###"],
        '2' => ["###", "..#", "###", "#..", "###"],
        '3' => ["###", "..#", ".##", "..#", "###"],
        '4' => ["#.#", "#.#", "###", "..#", "..#"],
        '5' => ["###", "#..", "###", "..#", "###"],
        '6' => ["###", "#..", "###", "#.#", "###"],
        '7' => ["###", "..#", ".#.", ".#.", ".#."],
        '8' => ["###", "#.#", "###", "#.#", "###"],
        '9' => ["###", "#.#", "###", "..#", "###"],
        'A' => [".#.", "#.#", "###", "#.#", "#.#"],
        'B' => ["##.", "#.#", "##.", "#.#", "##."],
        'C' => [".##", "#..", "#..", "#..", ".##"],
        'D' => ["##.", "#.#", "#.#", "#.#", "##."],
        'E' => ["###", "#..", "##.", "#..", "###"],
        'F' => ["###", "#..", "##.", "#..", "#.."],
        'G' => [".##", "#..", "#.#", "#.#", ".##"],
        'H' => ["#.#", "#.#", "###", "#.#", "#.#"],
        'I' => ["###", ".#.", ".#.", ".#.", "###"],
        'J' => ["..#", "..#", "..#", "#.#", ".#."],
        'K' => ["#.#", "#.#", "##.", "#.#", "#.#"],
        'L' => ["#..", "#..", "#..", "#..", "###"],
        'M' => ["#.#", "###", "###", "#.#", "#.#"],
        'N' => ["##.", "#.#", "#.#", "#.#", "#.#"],
        'O' => [".#.", "#.#", "#.#", "#.#", ".#."],
        'P' => ["##.", "#.#", "##.", "#..", "#.."],
        'Q' => [".#.", "#.#", "#.#", "##.", ".##"],
        'R' => ["##.", "#.#", "##.", "#.#", "#.#"],
        'S' => [".##", "#..", ".#.", "..#", "##."],
        'T' => ["###", ".#.", ".#.", ".#.", ".#."],
        'U' => ["#.#", "#.#", "#.#", "#.#", "###"],
        'V' => ["#.#", "#.#", "#.#", "#.#", ".#."],
        'W' => ["#.#", "#.#", "###", "###", "#.#"],
        'X' => ["#.#", "#.#", ".#.", "#.#", "#.#"],
        'Y' => ["#.#", "#.#", ".#.", ".#.", ".#."],
        'Z' => ["###", "..#", ".#.", "#..", "###"],
        ' ' => ["...", "...", "...", "...", "..."],
        '.' => ["...", "...", "...", "...", ".#."],
        ',' => ["...", "...", "...", ".#.", "#.."],
        '-' => ["...", "...", "###", "...", "..."],
        '_' => ["...", "...", "...", "...", "###"],
        ':' => ["...", ".#.", "...", ".#.", "..."],
        '/' => ["..#", "..#", ".#.", "#..", "#.."],
        '%' => ["#.#", "..#", ".#.", "#..", "#.#"],
        '(' => [".#.", "#..", "#..", "#..", ".#."],
        ')' => [".#.", "..#", "..#", "..#", ".#."],
        '=' => ["...", "###", "...", "###", "..."],
        '+' => ["...", ".#.", "###", ".#.", "..."],
        '@' => [".##", "#.#", "#.#", "#..", ".##"],
        _ => ["###", "..#", ".#.", "...", ".#."],
    }
}

/// An RGB image as a PNG file: signature, IHDR, one zlib IDAT, IEND (PNG spec, ISO 15948).
fn encode_png(pixels: &[[u8; 3]], width: usize, height: usize) -> Vec<u8> {
    let mut raw = Vec::with_capacity(height * (1 + width * 3));
    for row in pixels.chunks(width) {
        raw.push(0); // filter: none
        raw.extend(row.iter().flatten());
    }
    let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    zlib.write_all(&raw).expect("writing to memory");
    let idat = zlib.finish().expect("writing to memory");
    let mut ihdr = Vec::new();
    ihdr.extend((width as u32).to_be_bytes());
    ihdr.extend((height as u32).to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]); // 8-bit, RGB, deflate, adaptive filtering, no interlace
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    for (kind, data) in [(b"IHDR", ihdr.as_slice()), (b"IDAT", &idat), (b"IEND", &[])] {
        out.extend((data.len() as u32).to_be_bytes());
        let start = out.len();
        out.extend(kind);
        out.extend(data);
        let crc = crc32(&out[start..]);
        out.extend(crc.to_be_bytes());
    }
    out
}

/// CRC-32 (IEEE 802.3), as PNG chunks use.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in bytes {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    /// Worked by hand: a step of 1, 2, 2.5 or 5 × 10^k near a fifth of the span, ends rounded
    /// outward.
    #[test]
    fn axes_run_between_round_numbers() {
        let close = |(a, b, c): (f64, f64, f64), (x, y, z): (f64, f64, f64)| {
            (a - x).abs() < 1e-12 && (b - y).abs() < 1e-12 && (c - z).abs() < 1e-12
        };
        // The math_rl accuracy chart: 0.546 … 0.83 → span/5 = 0.057 → step 0.1.
        assert!(close(axis((0.546, 0.83)), (0.5, 0.9, 0.1)));
        // Steps 1 … 100 → 19.8 → 20.
        assert!(close(axis((1.0, 100.0)), (0.0, 100.0, 20.0)));
        // Rewards in [0, 1] → 0.2 → 0.2 exactly, nothing added.
        assert!(close(axis((0.0, 1.0)), (0.0, 1.0, 0.2)));
        // 0.11 … 0.2 → 0.018 → 0.02; −12 … 0 → 2.4 → 2.5.
        assert!(close(axis((0.11, 0.2)), (0.1, 0.2, 0.02)));
        assert!(close(axis((-12.0, 0.0)), (-12.5, 0.0, 2.5)));
        // One value: a unit-wide axis around it.
        assert!(close(axis((3.0, 3.0)), (3.0, 4.0, 1.0)));
        let labels: Vec<String> = ticks(-12.5, 0.0, 2.5).map(|v| tick(v, 2.5)).collect();
        assert_eq!(labels, ["-12.5", "-10.0", "-7.5", "-5.0", "-2.5", "0.0"]);
        let labels: Vec<String> = ticks(0.1, 0.2, 0.02).map(|v| tick(v, 0.02)).collect();
        assert_eq!(labels, ["0.10", "0.12", "0.14", "0.16", "0.18", "0.20"]);
        assert_eq!(tick(40.0, 20.0), "40");
    }

    #[test]
    fn a_chart_is_a_decodable_png() {
        let chart = Chart {
            title: "reward".into(),
            x_label: "step".into(),
            y_label: "reward".into(),
            series: vec![Series {
                name: "reward".into(),
                points: vec![(0.0, 0.1), (1.0, 0.5), (2.0, 0.9)],
            }],
        };
        let png = encode_png(&render(&chart).pixels, WIDTH, HEIGHT);
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        assert_eq!(&png[12..16], b"IHDR");
        assert_eq!(
            u32::from_be_bytes(png[16..20].try_into().unwrap()),
            WIDTH as u32
        );
        // The image data inflates back to every row.
        let idat_len = u32::from_be_bytes(png[33..37].try_into().unwrap()) as usize;
        assert_eq!(&png[37..41], b"IDAT");
        let mut raw = Vec::new();
        std::io::Read::read_to_end(
            &mut flate2::read::ZlibDecoder::new(&png[41..41 + idat_len]),
            &mut raw,
        )
        .unwrap();
        assert_eq!(raw.len(), HEIGHT * (1 + WIDTH * 3));
        // The line is drawn: some pixels have the first series' colour.
        let drawn = raw
            .chunks(1 + WIDTH * 3)
            .any(|row| row[1..].chunks(3).any(|p| p == PALETTE[0]));
        assert!(drawn);
    }
}
