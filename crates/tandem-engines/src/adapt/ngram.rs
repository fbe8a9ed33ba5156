//! An interpolated Kneser-Ney n-gram language model over token ids.
//!
//! The model is kept as its raw n-gram counts (what the artifact stores); [`NgramLm::from_counts`]
//! derives the smoothed tables. The lowest order interpolates with a uniform distribution over
//! the whole vocabulary, so every token has a finite log-probability.

use std::collections::HashMap;

/// Raw n-gram counts: `counts[k - 1]` maps each n-gram of order `k` to how often it occurs.
pub type Counts = Vec<HashMap<Vec<u32>, u32>>;

/// Counts every n-gram of order 1..=`order` in `seqs`. Each sequence starts with the
/// beginning-of-sentence token, which is never predicted (no unigram `[bos]`).
pub fn count(seqs: &[Vec<u32>], order: usize) -> Counts {
    let mut counts: Counts = vec![HashMap::new(); order];
    for seq in seqs {
        for end in 1..seq.len() {
            for k in 1..=order.min(end + 1) {
                let gram = &seq[end + 1 - k..=end];
                *counts[k - 1].entry(gram.to_vec()).or_insert(0) += 1;
            }
        }
    }
    counts
}

/// Smoothed statistics of one context: `P(w | h) = alpha(w) + gamma * P_lower(w | h')`.
#[derive(Debug, Clone)]
struct Context {
    gamma: f32,
    /// `(token, alpha)`, sorted by token.
    succ: Vec<(u32, f32)>,
}

/// An interpolated Kneser-Ney language model, ready to score.
#[derive(Debug, Clone)]
pub struct NgramLm {
    order: usize,
    bos: u32,
    /// `P_1(w)` for every token.
    unigram: Vec<f32>,
    /// `ln P_1(w)` for every token.
    log_unigram: Vec<f32>,
    /// `contexts[k - 2]`: contexts of length `k - 1` for order `k` (k >= 2).
    contexts: Vec<HashMap<Vec<u32>, Context>>,
    counts: Counts,
}

/// The absolute discount of one order from its count-of-counts (Ney's estimate).
fn discount<'a>(values: impl Iterator<Item = &'a u32>) -> f32 {
    let (mut n1, mut n2) = (0u64, 0u64);
    for &c in values {
        match c {
            1 => n1 += 1,
            2 => n2 += 1,
            _ => {}
        }
    }
    if n1 == 0 {
        return 0.5;
    }
    (n1 as f32 / (n1 + 2 * n2) as f32).clamp(0.1, 0.9)
}

impl NgramLm {
    /// Builds the smoothed model from raw counts. `n_vocab` is the size of the token space
    /// (tokens `>= n_vocab` must not occur in `counts`).
    pub fn from_counts(counts: Counts, n_vocab: usize, bos: u32) -> Self {
        let order = counts.len().max(1);
        // Kneser-Ney: every order below the highest counts distinct left contexts, except
        // n-grams that start a sentence (they have no left context) which keep raw counts.
        let mut effective: Vec<HashMap<Vec<u32>, u32>> = Vec::with_capacity(order);
        for k in 1..=order {
            if k == order {
                effective.push(counts.get(k - 1).cloned().unwrap_or_default());
                continue;
            }
            let mut m: HashMap<Vec<u32>, u32> = HashMap::new();
            if let Some(higher) = counts.get(k) {
                for gram in higher.keys() {
                    *m.entry(gram[1..].to_vec()).or_insert(0) += 1;
                }
            }
            if let Some(raw) = counts.get(k - 1) {
                for (gram, &c) in raw {
                    if gram.first() == Some(&bos) {
                        m.insert(gram.clone(), c);
                    }
                }
            }
            effective.push(m);
        }

        let uniform = 1.0 / n_vocab.max(1) as f32;
        let mut unigram = vec![uniform; n_vocab];
        if let Some(uni) = effective.first() {
            let total: u64 = uni.values().map(|&c| u64::from(c)).sum();
            if total > 0 {
                let d = discount(uni.values());
                let gamma = d * uni.len() as f32 / total as f32;
                for p in unigram.iter_mut() {
                    *p = gamma * uniform;
                }
                for (gram, &c) in uni {
                    if let Some(p) = gram.first().and_then(|&t| unigram.get_mut(t as usize)) {
                        *p += (c as f32 - d).max(0.0) / total as f32;
                    }
                }
            }
        }
        let log_unigram = unigram
            .iter()
            .map(|p| p.max(f32::MIN_POSITIVE).ln())
            .collect();

        let mut contexts = Vec::with_capacity(order.saturating_sub(1));
        for table in effective.iter().skip(1) {
            let d = discount(table.values());
            let mut grouped: HashMap<Vec<u32>, Vec<(u32, u32)>> = HashMap::new();
            for (gram, &c) in table {
                if let Some((&last, ctx)) = gram.split_last() {
                    grouped.entry(ctx.to_vec()).or_default().push((last, c));
                }
            }
            let mut level = HashMap::with_capacity(grouped.len());
            for (ctx, mut succ) in grouped {
                succ.sort_unstable();
                let total: u64 = succ.iter().map(|&(_, c)| u64::from(c)).sum();
                if total == 0 {
                    continue;
                }
                let total = total as f32;
                let gamma = d * succ.len() as f32 / total;
                let succ = succ
                    .into_iter()
                    .map(|(t, c)| (t, (c as f32 - d).max(0.0) / total))
                    .collect();
                level.insert(ctx, Context { gamma, succ });
            }
            contexts.push(level);
        }
        Self {
            order,
            bos,
            unigram,
            log_unigram,
            contexts,
            counts,
        }
    }

    /// The model's order (the longest n-gram).
    pub fn order(&self) -> usize {
        self.order
    }

    /// The size of the token space.
    pub fn n_vocab(&self) -> usize {
        self.unigram.len()
    }

    /// The raw counts the model was built from.
    pub fn counts(&self) -> &Counts {
        &self.counts
    }

    /// The contexts that apply after `history` (tokens decoded so far, without the
    /// beginning-of-sentence token), from order 2 upwards.
    fn active(&self, history: &[u32]) -> Vec<&Context> {
        let mut full = Vec::with_capacity(self.order);
        full.push(self.bos);
        let keep = self.order.saturating_sub(1).min(history.len());
        full.extend_from_slice(&history[history.len() - keep..]);
        let mut active = Vec::new();
        for (i, level) in self.contexts.iter().enumerate() {
            let len = i + 1;
            if len > full.len() {
                break;
            }
            match level.get(&full[full.len() - len..]) {
                Some(c) => active.push(c),
                None => break,
            }
        }
        active
    }

    /// `ln P(token | history)`.
    pub fn log_prob(&self, history: &[u32], token: u32) -> f32 {
        self.log_prob_in(&self.active(history), token)
    }

    fn log_prob_in(&self, active: &[&Context], token: u32) -> f32 {
        let Some(&p1) = self.unigram.get(token as usize) else {
            return f32::NEG_INFINITY;
        };
        let mut p = p1;
        for ctx in active {
            let alpha = ctx
                .succ
                .binary_search_by_key(&token, |&(t, _)| t)
                .map(|i| ctx.succ[i].1)
                .unwrap_or(0.0);
            p = alpha + ctx.gamma * p;
        }
        p.max(f32::MIN_POSITIVE).ln()
    }

    /// `ln P(token | history)` for a token never seen after any context of `history`, given
    /// the `log_gamma` that [`NgramLm::add_log_probs`] returned for that history.
    pub fn backed_off_log_prob(&self, log_gamma: f32, token: u32) -> f32 {
        self.log_unigram
            .get(token as usize)
            .map_or(f32::NEG_INFINITY, |lu| log_gamma + lu)
    }

    /// Adds `weight * ln P(w | history)` to `scores[w]` for every token `w < scores.len()`
    /// (at most the vocabulary), and returns the history's total back-off weight (log).
    /// Cost: one pass over `scores` plus the few tokens seen after the active contexts.
    ///
    /// Each log-probability is first raised to at least `floor`: below it, the model has no
    /// opinion (an unseen word costs the same whatever it is), so the recognizer decides.
    pub fn add_log_probs(
        &self,
        history: &[u32],
        weight: f32,
        floor: f32,
        scores: &mut [f32],
    ) -> f32 {
        let active = self.active(history);
        let log_gamma: f32 = active
            .iter()
            .map(|c| c.gamma.max(f32::MIN_POSITIVE).ln())
            .sum();
        let n = scores.len().min(self.log_unigram.len());
        for (s, &lu) in scores[..n].iter_mut().zip(&self.log_unigram[..n]) {
            *s += weight * (log_gamma + lu).max(floor);
        }
        // Tokens seen after an active context: replace the backed-off estimate with the exact one.
        let mut seen: Vec<u32> = active
            .iter()
            .flat_map(|c| c.succ.iter().map(|&(t, _)| t))
            .filter(|&t| (t as usize) < n)
            .collect();
        seen.sort_unstable();
        seen.dedup();
        for t in seen {
            let i = t as usize;
            let backed_off = (log_gamma + self.log_unigram[i]).max(floor);
            let exact = self.log_prob_in(&active, t).max(floor);
            scores[i] += weight * (exact - backed_off);
        }
        log_gamma
    }
}
