use loramix_rng::Rng;
use serde::{Deserialize, Serialize};

/// Settings of the gradient-free weight search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchConfig {
    /// Objective evaluations in all (each is one forward pass over the k-shot set).
    pub budget: usize,
    /// Candidates per generation.
    pub population: usize,
    /// Initial step size of the mutations.
    pub sigma: f32,
    /// `l1 * sum |w_i|` is added to the objective (LoraHub uses 0.05).
    pub l1: f32,
    /// Weights are kept in `[-bound, bound]` (LoraHub uses 1.5).
    pub bound: f32,
    pub seed: u64,
}

impl Default for SearchConfig {
    fn default() -> Self {
        Self {
            budget: 40,
            population: 8,
            sigma: 0.3,
            l1: 0.05,
            bound: 1.5,
            seed: 0,
        }
    }
}

/// The best weights found and how the search went.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchResult {
    pub weights: Vec<f32>,
    /// Objective (loss plus L1 term) of `weights`.
    pub objective: f32,
    pub evaluations: usize,
    /// Best objective after each generation.
    pub history: Vec<f32>,
}

/// Search module weights minimising `loss(weights) + l1 * |weights|_1` with a
/// (mu/mu_w, lambda) evolution strategy, as LoraHub does with its evolutionary optimiser.
///
/// Starts at the uniform composition `1/N`, so the result is never worse than uniform on the
/// objective; a candidate as good as the best replaces it. A non-finite loss counts as infinitely bad. Deterministic for a seed.
pub fn search_weights(
    n_modules: usize,
    config: &SearchConfig,
    mut loss: impl FnMut(&[f32]) -> f32,
) -> SearchResult {
    let mut objective = |w: &[f32]| {
        let value = loss(w) + config.l1 * w.iter().map(|x| x.abs()).sum::<f32>();
        if value.is_finite() {
            value
        } else {
            f32::INFINITY
        }
    };
    let mut rng = Rng::new(config.seed);
    let mut mean = vec![1.0 / n_modules as f32; n_modules];
    let mut best = (mean.clone(), objective(&mean));
    let mut evaluations = 1;
    let mut sigma = config.sigma;
    let mut history = Vec::new();
    let population = config.population.max(2);
    // Log-decreasing recombination weights over the better half.
    let parents = population / 2;
    let ranks: Vec<f32> = (0..parents)
        .map(|i| ((parents as f32 + 0.5).ln() - ((i + 1) as f32).ln()).max(0.0))
        .collect();

    while evaluations < config.budget {
        let size = population.min(config.budget - evaluations);
        let mut generation: Vec<(Vec<f32>, f32)> = (0..size)
            .map(|_| {
                let candidate: Vec<f32> = mean
                    .iter()
                    .map(|m| (m + sigma * rng.normal()).clamp(-config.bound, config.bound))
                    .collect();
                let value = objective(&candidate);
                (candidate, value)
            })
            .collect();
        evaluations += size;
        generation.sort_by(|a, b| a.1.total_cmp(&b.1));
        // A tie moves too: on a flat objective the search is free to leave uniform.
        if generation[0].1 <= best.1 {
            best = generation[0].clone();
            sigma *= 1.2;
        } else {
            sigma *= 0.8;
        }
        let used = &ranks[..parents.min(generation.len())];
        let used_sum: f32 = used.iter().sum();
        mean = (0..n_modules)
            .map(|j| {
                generation
                    .iter()
                    .zip(used)
                    .map(|((w, _), r)| w[j] * r)
                    .sum::<f32>()
                    / used_sum
            })
            .collect();
        history.push(best.1);
    }
    SearchResult {
        weights: best.0,
        objective: best.1,
        evaluations,
        history,
    }
}
