//! 95% intervals: over seeds (Student's t) and for one run's accuracy (Wilson's score interval).

use serde::{Deserialize, Serialize};

/// A mean and its 95% interval (`None` bounds with fewer than two values).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    pub mean: f64,
    pub low: Option<f64>,
    pub high: Option<f64>,
    /// How many values the mean is over.
    pub n: usize,
}

impl Interval {
    /// Half the interval's width.
    pub fn half_width(&self) -> Option<f64> {
        Some((self.high? - self.low?) / 2.0)
    }
}

/// Student's t quantile at 0.975 for `df` degrees of freedom: the table's values up to 30
/// (Fisher & Yates), then the Cornish–Fisher expansion z + (z³ + z)/(4·df) +
/// (5z⁵ + 16z³ + 3z)/(96·df²), off by less than 0.001 there.
pub fn t_975(df: usize) -> f64 {
    const TABLE: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042,
    ];
    const Z: f64 = 1.959_964;
    match df {
        0 => f64::NAN,
        1..=30 => TABLE[df - 1],
        _ => {
            let df = df as f64;
            Z + (Z.powi(3) + Z) / (4.0 * df)
                + (5.0 * Z.powi(5) + 16.0 * Z.powi(3) + 3.0 * Z) / (96.0 * df * df)
        }
    }
}

/// The mean of `values` ± t₀.₉₇₅(n − 1) · s / √n, s the sample standard deviation.
pub fn mean_interval(values: &[f64]) -> Interval {
    let n = values.len();
    let mean = values.iter().sum::<f64>() / n as f64;
    if n < 2 {
        return Interval {
            mean,
            low: None,
            high: None,
            n,
        };
    }
    let variance = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    let half = t_975(n - 1) * (variance / n as f64).sqrt();
    Interval {
        mean,
        low: Some(mean - half),
        high: Some(mean + half),
        n,
    }
}

/// Wilson's 95% score interval for an accuracy `p` measured on `n` problems (Wilson 1927):
/// (p + z²/2n ± z·√(p(1−p)/n + z²/4n²)) / (1 + z²/n). Unlike p ± z·√(p(1−p)/n) it stays inside
/// [0, 1] and is not empty at p = 0 or 1.
pub fn wilson(p: f64, n: usize) -> Interval {
    const Z: f64 = 1.959_964;
    let n_f = n as f64;
    let z2 = Z * Z;
    let center = (p + z2 / (2.0 * n_f)) / (1.0 + z2 / n_f);
    let half = Z / (1.0 + z2 / n_f) * (p * (1.0 - p) / n_f + z2 / (4.0 * n_f * n_f)).sqrt();
    Interval {
        mean: p,
        low: Some(center - half),
        high: Some(center + half),
        n,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-4, "{a} vs {b}");
    }

    #[test]
    fn over_seeds_by_hand() {
        // 0.70, 0.80, 0.75: mean 0.75, s = 0.05, t(2) = 4.303 → ± 4.303 · 0.05 / √3 = 0.12422.
        let i = mean_interval(&[0.70, 0.80, 0.75]);
        close(i.mean, 0.75);
        close(i.low.unwrap(), 0.625_78);
        close(i.high.unwrap(), 0.874_22);
        assert_eq!(i.n, 3);
        let one = mean_interval(&[0.6]);
        assert_eq!((one.mean, one.low, one.high), (0.6, None, None));
    }

    #[test]
    fn wilson_by_hand() {
        // 45 of 50: the textbook [0.7864, 0.9565]; 50 of 100: [0.4038, 0.5962].
        let i = wilson(0.9, 50);
        close(i.low.unwrap(), 0.786_40);
        close(i.high.unwrap(), 0.956_52);
        let i = wilson(0.5, 100);
        close(i.low.unwrap(), 0.403_83);
        close(i.high.unwrap(), 0.596_17);
        // Never outside [0, 1], and not empty at the edges.
        let zero = wilson(0.0, 20);
        assert!(zero.low.unwrap().abs() < 1e-12 && zero.high.unwrap() > 0.1);
    }

    #[test]
    fn t_quantiles_join_the_normal() {
        assert_eq!(t_975(1), 12.706);
        assert_eq!(t_975(30), 2.042);
        // Past the table: 2.0395 at 31, 2.0211 at 40, 1.9840 at 100 (tables).
        assert!((t_975(31) - 2.0395).abs() < 0.001);
        assert!((t_975(40) - 2.0211).abs() < 0.001);
        assert!((t_975(100) - 1.9840).abs() < 0.001);
    }
}
