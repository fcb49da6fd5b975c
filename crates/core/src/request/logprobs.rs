//! Log-probabilities of generated tokens: the model's own distribution (the log-softmax of its
//! logits, before temperature, penalties, logit bias and grammar change them), which is what
//! llama-cpp-python reports as OpenAI's `logprobs`.

use crate::llama::{Model, Token};
use crate::util::error::Result;

/// A token, its log-probability and its text.
#[derive(Clone, Debug, PartialEq)]
pub struct TokenLogprob {
    pub token: Token,
    /// Natural logarithm of the token's probability under the model.
    pub logprob: f32,
    /// The token's bytes as generation prints them (possibly part of a UTF-8 character).
    pub piece: Vec<u8>,
}

/// One generated token, and the model's most likely tokens at its place, most likely first.
#[derive(Clone, Debug, PartialEq)]
pub struct TokenChoice {
    pub sampled: TokenLogprob,
    pub top: Vec<TokenLogprob>,
}

/// The choice of `token` from `logits` (one per vocabulary entry), with the `n_top` most
/// likely tokens (ties: the lower id first).
pub(crate) fn choice(model: &Model, logits: &[f32], token: Token, n_top: usize) -> Result<TokenChoice> {
    let log_sum = log_sum_exp(logits);
    let entry = |token: Token| -> Result<TokenLogprob> {
        let mut piece = Vec::new();
        model.token_piece(token, &mut piece)?;
        Ok(TokenLogprob { token, logprob: (logits[token as usize] as f64 - log_sum) as f32, piece })
    };
    let top = most_likely(logits, n_top).into_iter().map(entry).collect::<Result<Vec<_>>>()?;
    Ok(TokenChoice { sampled: entry(token)?, top })
}

/// log(sum(exp(logits))), computed without overflow.
fn log_sum_exp(logits: &[f32]) -> f64 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    if max == f64::NEG_INFINITY {
        return max;
    }
    max + logits.iter().map(|&l| (l as f64 - max).exp()).sum::<f64>().ln()
}

/// The ids of the `n` largest logits, largest first (ties: the lower id first).
fn most_likely(logits: &[f32], n: usize) -> Vec<Token> {
    let order = |a: &usize, b: &usize| logits[*b].total_cmp(&logits[*a]).then(a.cmp(b));
    let mut ids: Vec<usize> = (0..logits.len()).collect();
    let n = n.min(ids.len());
    if n > 0 && n < ids.len() {
        ids.select_nth_unstable_by(n - 1, order);
    }
    ids.truncate(n);
    ids.sort_unstable_by(order);
    ids.into_iter().map(|i| i as Token).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_logits_in_order_with_ties_by_id() {
        let logits = [0.5, 2.0, -1.0, 2.0, 0.0];
        assert_eq!(most_likely(&logits, 3), vec![1, 3, 0]);
        assert_eq!(most_likely(&logits, 0), Vec::<i32>::new());
        assert_eq!(most_likely(&logits, 99), vec![1, 3, 0, 4, 2]);
    }

    #[test]
    fn log_sum_exp_is_stable() {
        let logits = [1000.0f32, 1000.0];
        assert!((log_sum_exp(&logits) - (1000.0 + 2f64.ln())).abs() < 1e-9);
        let p: f64 = [0.0f32, 1.0, 2.0].iter().map(|&l| (l as f64 - log_sum_exp(&[0.0, 1.0, 2.0])).exp()).sum();
        assert!((p - 1.0).abs() < 1e-12);
    }
}
