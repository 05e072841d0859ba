//! SplitMix64 (Steele, Lea & Flood 2014, "Fast splittable pseudorandom number generators"):
//! a few lines with no dependency, so a seed means the same numbers on every machine and
//! every version of the dependencies.

/// A seeded stream of 64-bit numbers.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

/// The odd constant each key is multiplied by before it is mixed in (from SplitMix's
/// `mixGamma` family: odd, with well-spread bits).
const KEY_MULTIPLIER: u64 = 0xD6E8_FEB8_6659_FD93;
/// The golden-ratio increment of the original SplitMix64.
const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

impl SplitMix64 {
    /// The stream whose state starts at `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    /// A stream for `seed` and a path of `keys` (a purpose, a prompt index, a sample index…):
    /// each key in turn replaces the state by the stream's next number xor the key times an odd
    /// constant, so streams of neighbouring keys are unrelated and a completion's stream does
    /// not depend on its batch mates.
    pub fn keyed(seed: u64, keys: &[u64]) -> Self {
        let mut state = seed;
        for &key in keys {
            state = SplitMix64(state).next_u64() ^ key.wrapping_mul(KEY_MULTIPLIER);
        }
        SplitMix64(state)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(GAMMA);
        mix(self.0)
    }

    /// Uniform in `0..n` (Lemire's multiply-shift; the bias is below 2⁻³² for `n < 2³²`).
    pub fn below(&mut self, n: u64) -> u64 {
        debug_assert!(n > 0);
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// One of `items`, uniformly.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// Fisher–Yates shuffle.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }

    /// Uniform in [0, 1) with 24 random bits (an f32's precision, so every value is exact).
    pub fn uniform_f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }
}

/// SplitMix64's finaliser: a bijective 64-bit mix, also used as a hash of integers.
pub fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A stable 64-bit hash of bytes (FNV-1a, then [`mix`]): the same on every machine and
/// release, unlike `std`'s `DefaultHasher`, so what is derived from it (a row's split) never
/// drifts.
pub fn stable_hash(bytes: &[u8], seed: u64) -> u64 {
    let mut h = 0xCBF2_9CE4_8422_2325u64 ^ seed;
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01B3);
    }
    mix(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_reference_sequence() {
        // Seed 1234567's first outputs as Rosetta Code's "Pseudo-random numbers/Splitmix64"
        // lists them (from Vigna's C reference).
        let mut rng = SplitMix64::new(1234567);
        let expected = [
            6457827717110365317u64,
            3203168211198807973,
            9817491932198370423,
            4593380528125082431,
            16408922859458223821,
        ];
        for want in expected {
            assert_eq!(rng.next_u64(), want);
        }
    }

    #[test]
    fn keys_separate_streams_and_repeat_exactly() {
        let first = |keys: &[u64]| SplitMix64::keyed(7, keys).next_u64();
        assert_eq!(first(&[1, 2]), first(&[1, 2]));
        assert_ne!(first(&[1, 2]), first(&[2, 1]));
        assert_ne!(first(&[1, 2]), first(&[1, 3]));
        assert_ne!(first(&[0]), first(&[]));
        assert_ne!(
            SplitMix64::keyed(7, &[1]).next_u64(),
            SplitMix64::keyed(8, &[1]).next_u64()
        );
    }

    #[test]
    fn draws_stay_in_range_and_cover_it() {
        let mut rng = SplitMix64::new(3);
        let mut seen = [0usize; 6];
        for _ in 0..6000 {
            let v = rng.range(10, 15);
            assert!((10..=15).contains(&v));
            seen[(v - 10) as usize] += 1;
        }
        // Each of the 6 values about 1000 times (a 5σ band is ±150).
        assert!(seen.iter().all(|&n| (850..1150).contains(&n)), "{seen:?}");
        for _ in 0..1000 {
            let u = rng.uniform_f32();
            assert!((0.0..1.0).contains(&u));
        }
    }

    #[test]
    fn shuffle_is_a_permutation() {
        let mut items: Vec<u32> = (0..100).collect();
        SplitMix64::new(9).shuffle(&mut items);
        assert_ne!(items, (0..100).collect::<Vec<_>>());
        items.sort();
        assert_eq!(items, (0..100).collect::<Vec<_>>());
    }
}
