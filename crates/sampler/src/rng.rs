//! One random stream per completion, so a completion never depends on its batch mates.

/// SplitMix64 (Steele, Lea & Flood 2014): tiny, fast, and good enough to drive sampling;
/// seeded per (seed, prompt index, sample index).
#[derive(Debug, Clone)]
pub struct Stream(u64);

impl Stream {
    pub fn new(seed: u64, prompt: usize, sample: usize) -> Self {
        let mut stream = Stream(seed);
        // Mix the coordinates in one at a time so nearby (prompt, sample) pairs diverge.
        let a = stream.next_u64() ^ (prompt as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        stream.0 = a;
        let b = stream.next_u64() ^ (sample as u64).wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
        Stream(b)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1), with 24 bits (an f32's precision).
    pub fn uniform(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }
}
