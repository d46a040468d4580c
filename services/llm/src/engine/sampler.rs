//! Choosing the next token from the logits: penalties, then greedy or
//! temperature sampling restricted by top-k and top-p. With a seed the
//! choice is reproducible: the generator is our own SplitMix64, so it does
//! not change with a dependency's version.

use std::collections::HashMap;

/// How a request wants its tokens chosen.
#[derive(Debug, Clone, PartialEq)]
pub struct SamplingParams {
    /// 0 chooses the most likely token; higher flattens the distribution.
    pub temperature: f32,
    /// Keep the smallest set of tokens whose probability reaches this (1 = all).
    pub top_p: f32,
    /// Keep only this many most likely tokens (0 = all).
    pub top_k: usize,
    /// Divides (or multiplies, when negative) the logits of recent tokens
    /// (1 = off), as llama.cpp's `repeat_penalty`.
    pub repeat_penalty: f32,
    /// How many recent tokens the penalties look at.
    pub repeat_last_n: usize,
    /// OpenAI's: subtracted once from every token already generated.
    pub presence_penalty: f32,
    /// OpenAI's: subtracted per occurrence.
    pub frequency_penalty: f32,
    /// Added to the logits of these tokens.
    pub logit_bias: HashMap<u32, f32>,
    /// Reproducible sampling.
    pub seed: Option<u64>,
}

impl Default for SamplingParams {
    fn default() -> Self {
        Self {
            temperature: 0.8,
            top_p: 0.95,
            top_k: 40,
            repeat_penalty: 1.0,
            repeat_last_n: 64,
            presence_penalty: 0.0,
            frequency_penalty: 0.0,
            logit_bias: HashMap::new(),
            seed: None,
        }
    }
}

/// SplitMix64: small, fast, and good enough to draw from a distribution.
#[derive(Debug, Clone)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A seed when the request gives none.
fn fresh_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    h.finish()
}

/// Chooses tokens for one sequence.
#[derive(Debug, Clone)]
pub struct Sampler {
    params: SamplingParams,
    rng: SplitMix64,
}

impl Sampler {
    /// A sampler for `params`.
    pub fn new(params: SamplingParams) -> Self {
        let seed = params.seed.unwrap_or_else(fresh_seed);
        Self {
            params,
            rng: SplitMix64(seed),
        }
    }

    /// The next token after `generated` (the tokens this sequence has
    /// produced so far, for the penalties). `logits` is modified.
    pub fn sample(&mut self, logits: &mut [f32], recent: &[u32], generated: &[u32]) -> u32 {
        self.penalize(logits, recent, generated);
        let p = &self.params;
        if p.temperature <= 0.0 {
            return argmax(logits);
        }
        let mut candidates: Vec<(u32, f32)> = logits
            .iter()
            .enumerate()
            .filter(|(_, l)| l.is_finite())
            .map(|(i, &l)| (i as u32, l))
            .collect();
        if candidates.is_empty() {
            return argmax(logits);
        }
        let keep = if p.top_k == 0 {
            candidates.len()
        } else {
            p.top_k.min(candidates.len())
        };
        if keep < candidates.len() {
            candidates.select_nth_unstable_by(keep - 1, |a, b| b.1.total_cmp(&a.1));
            candidates.truncate(keep);
        }
        candidates.sort_unstable_by(|a, b| b.1.total_cmp(&a.1));
        // Softmax at the temperature, in f64 for long tails.
        let max = f64::from(candidates[0].1);
        let t = f64::from(p.temperature);
        let mut probs: Vec<f64> = candidates
            .iter()
            .map(|&(_, l)| ((f64::from(l) - max) / t).exp())
            .collect();
        let total: f64 = probs.iter().sum();
        probs.iter_mut().for_each(|q| *q /= total);
        // Nucleus: the shortest head whose mass reaches top_p.
        if p.top_p < 1.0 {
            let mut mass = 0.0;
            let mut cut = probs.len();
            for (i, q) in probs.iter().enumerate() {
                mass += q;
                if mass >= f64::from(p.top_p) {
                    cut = i + 1;
                    break;
                }
            }
            probs.truncate(cut);
        }
        let total: f64 = probs.iter().sum();
        let mut draw = self.rng.next_f64() * total;
        for (i, q) in probs.iter().enumerate() {
            draw -= q;
            if draw < 0.0 {
                return candidates[i].0;
            }
        }
        candidates[probs.len() - 1].0
    }

    fn penalize(&self, logits: &mut [f32], recent: &[u32], generated: &[u32]) {
        let p = &self.params;
        for (&token, &bias) in &p.logit_bias {
            if let Some(l) = logits.get_mut(token as usize) {
                *l += bias;
            }
        }
        if p.repeat_penalty != 1.0 && p.repeat_last_n > 0 {
            let window = &recent[recent.len().saturating_sub(p.repeat_last_n)..];
            let mut seen = std::collections::HashSet::new();
            for &t in window {
                if seen.insert(t)
                    && let Some(l) = logits.get_mut(t as usize)
                {
                    *l = if *l > 0.0 {
                        *l / p.repeat_penalty
                    } else {
                        *l * p.repeat_penalty
                    };
                }
            }
        }
        if p.presence_penalty != 0.0 || p.frequency_penalty != 0.0 {
            let mut counts: HashMap<u32, u32> = HashMap::new();
            for &t in generated {
                *counts.entry(t).or_default() += 1;
            }
            for (t, n) in counts {
                if let Some(l) = logits.get_mut(t as usize) {
                    *l -= p.presence_penalty + p.frequency_penalty * n as f32;
                }
            }
        }
    }
}

/// The index of the largest logit (the first of equals).
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, l) in logits.iter().enumerate() {
        if *l > logits[best] {
            best = i;
        }
    }
    best as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn logits() -> Vec<f32> {
        vec![1.0, 3.0, 2.5, -1.0, 0.5]
    }

    #[test]
    fn zero_temperature_is_greedy() {
        let mut s = Sampler::new(SamplingParams {
            temperature: 0.0,
            ..Default::default()
        });
        assert_eq!(s.sample(&mut logits(), &[], &[]), 1);
    }

    #[test]
    fn a_seed_repeats_and_top_k_restricts() {
        let params = SamplingParams {
            temperature: 1.5,
            top_k: 2,
            top_p: 1.0,
            seed: Some(7),
            ..Default::default()
        };
        let draw = |params: &SamplingParams| {
            let mut s = Sampler::new(params.clone());
            (0..200)
                .map(|_| s.sample(&mut logits(), &[], &[]))
                .collect::<Vec<_>>()
        };
        let a = draw(&params);
        assert_eq!(a, draw(&params), "same seed, same tokens");
        assert!(a.iter().all(|t| *t == 1 || *t == 2), "only the top 2");
        assert!(a.contains(&1) && a.contains(&2), "both drawn");
        let other = draw(&SamplingParams {
            seed: Some(8),
            ..params
        });
        assert_ne!(a, other);
    }

    #[test]
    fn top_p_keeps_the_head() {
        let mut s = Sampler::new(SamplingParams {
            temperature: 1.0,
            top_k: 0,
            top_p: 0.5,
            seed: Some(1),
            ..Default::default()
        });
        // Token 1 alone has more than half the mass.
        let mut big = vec![0.0, 5.0, 1.0, 0.0];
        for _ in 0..50 {
            assert_eq!(s.sample(&mut big.clone(), &[], &[]), 1);
        }
        big[2] = 5.0;
        let drawn: Vec<u32> = (0..50)
            .map(|_| s.sample(&mut big.clone(), &[], &[]))
            .collect();
        assert!(drawn.iter().all(|t| *t == 1 || *t == 2));
    }

    #[test]
    fn penalties_and_bias_move_the_choice() {
        let greedy = SamplingParams {
            temperature: 0.0,
            ..Default::default()
        };
        let mut s = Sampler::new(SamplingParams {
            repeat_penalty: 2.0,
            ..greedy.clone()
        });
        assert_eq!(s.sample(&mut logits(), &[1], &[]), 2, "3.0 / 2 < 2.5");
        let mut s = Sampler::new(SamplingParams {
            frequency_penalty: 0.3,
            ..greedy.clone()
        });
        assert_eq!(s.sample(&mut logits(), &[], &[1, 1]), 2, "3.0 - 0.6 < 2.5");
        let mut s = Sampler::new(SamplingParams {
            logit_bias: HashMap::from([(4, 10.0)]),
            ..greedy
        });
        assert_eq!(s.sample(&mut logits(), &[], &[]), 4);
    }
}
