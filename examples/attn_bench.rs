//! Speed of the engine's decode attention kernel (`unitcoder::engine::kernels::attention`) on the default
//! model's shape (9 heads, 3 KV heads, head_dim 64, 30 layers, each with its own cache so reads come
//! from memory as in a real step), one query row per layer, for several context lengths: microseconds
//! per layer and the cache bytes read per second.
//!
//! Run: `cargo run --release --example attn_bench -- [threads]` (default 2). Best of several runs,
//! because the machine is shared.

use std::time::{Duration, Instant};

use unitcoder::engine::kernels::attention::{attention, AttnShape};

fn main() {
    let threads: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(2);
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("pool");
    let (layers, heads, kv_heads, hd) = (30, 9, 3, 64);
    for ctx in [64usize, 320, 700, 2000] {
        let capacity = ctx + 1;
        let n = kv_heads * capacity * hd;
        let keys: Vec<Vec<half::f16>> = (0..layers)
            .map(|l| (0..n).map(|i| half::f16::from_f32(((i * 31 + l) % 97) as f32 / 97.0 - 0.5)).collect())
            .collect();
        let values = keys.clone();
        let q: Vec<f32> = (0..heads * hd).map(|i| (i % 13) as f32 / 13.0 - 0.5).collect();
        let mut out = vec![0.0; heads * hd];
        let s = AttnShape {
            batch: 1,
            t: 1,
            heads,
            kv_heads,
            head_dim: hd,
            offset: ctx,
            capacity,
            q_stride: heads * hd,
            window: usize::MAX,
        };
        let mut best = Duration::MAX;
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(2) {
            let t = Instant::now();
            pool.install(|| {
                for l in 0..layers {
                    attention(&q, &keys[l], &values[l], &[0], &s, &mut out);
                }
            });
            best = best.min(t.elapsed());
        }
        let per_layer = best.as_secs_f64() / layers as f64;
        let bytes = 2.0 * ((ctx + 1) * kv_heads * hd * 2) as f64;
        println!(
            "ctx {ctx:>5}: {:>7.1} us/layer, {:>6.2} ms/token (30 layers), {:>5.1} GB/s of cache",
            per_layer * 1e6,
            per_layer * 30.0 * 1e3,
            bytes / per_layer / 1e9
        );
    }
}
