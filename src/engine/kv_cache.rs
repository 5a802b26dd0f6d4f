//! The preallocated key/value cache and the left-padding layout of a batch.
//!
//! Every row of a batch shares one column axis: prompts are left-padded to the longest, so column `c`
//! of row `r` holds the token at position `c - pad[r]`. The cache holds `[batch, kv_heads, capacity,
//! head_dim]` per layer and each step writes its columns in place (`slice_set`), so decoding never
//! concatenates (on the CPU the buffers are plain f16 vectors that the fused forward writes and the
//! attention kernel reads directly). [`Padding`] turns the pads into per-row rotary positions and additive attention masks;
//! [`KvCache::select`] drops finished rows (or repeats rows to fan one prefill out to n samples).

use candle_core::{DType, Device, Tensor};
use half::f16;
use half::slice::HalfFloatSliceExt;

/// Per-layer key and value storage, written in place.
pub struct KvCache {
    store: Store,
    len: usize,
    capacity: usize,
}

/// CPU caches are plain f16 buffers the fused forward reads and writes directly; other devices keep
/// candle tensors.
enum Store {
    Host(HostKv),
    Tensors { keys: Vec<Tensor>, values: Vec<Tensor> },
}

/// The CPU cache: per layer one `[batch, kv_heads, capacity, head_dim]` f16 buffer each for keys and
/// values. f16, as llama.cpp's default cache: decode reads the whole cache every step, so at long
/// contexts its bytes rival the weights'; rounding keys and values to 11 significant bits changes
/// logits far less than the int8 activations of the quantized products do.
pub struct HostKv {
    pub batch: usize,
    pub kv_heads: usize,
    pub head_dim: usize,
    pub capacity: usize,
    pub keys: Vec<Vec<f16>>,
    pub values: Vec<Vec<f16>>,
}

impl KvCache {
    /// Zeroed cache for `layers` layers of `[batch, kv_heads, capacity, head_dim]`: f16 buffers on the
    /// CPU (whatever `dtype`), `dtype` tensors elsewhere.
    pub fn new(
        layers: usize,
        batch: usize,
        kv_heads: usize,
        capacity: usize,
        head_dim: usize,
        dtype: DType,
        device: &Device,
    ) -> candle_core::Result<Self> {
        let store = if device.is_cpu() {
            let n = batch * kv_heads * capacity * head_dim;
            Store::Host(HostKv {
                batch,
                kv_heads,
                head_dim,
                capacity,
                keys: (0..layers).map(|_| vec![f16::ZERO; n]).collect(),
                values: (0..layers).map(|_| vec![f16::ZERO; n]).collect(),
            })
        } else {
            let shape = (batch, kv_heads, capacity, head_dim);
            let mut keys = Vec::with_capacity(layers);
            let mut values = Vec::with_capacity(layers);
            for _ in 0..layers {
                keys.push(Tensor::zeros(shape, dtype, device)?);
                values.push(Tensor::zeros(shape, dtype, device)?);
            }
            Store::Tensors { keys, values }
        };
        Ok(KvCache { store, len: 0, capacity })
    }

    /// Columns filled so far (identical for every row).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing has been written yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The number of columns preallocated.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The number of rows.
    pub fn batch(&self) -> usize {
        match &self.store {
            Store::Host(h) => h.batch,
            Store::Tensors { keys, .. } => keys.first().map(|k| k.dims()[0]).unwrap_or(0),
        }
    }

    /// The CPU buffers, for the fused forward (`None` for a cache on another device).
    pub fn host_mut(&mut self) -> Option<&mut HostKv> {
        match &mut self.store {
            Store::Host(h) => Some(h),
            Store::Tensors { .. } => None,
        }
    }

    /// Writes this step's `k`/`v` (`[batch, kv_heads, t, head_dim]`) for `layer` after the filled
    /// columns and returns views of everything filled including them (f32 copies of the f16 buffers,
    /// for a CPU cache).
    /// Call [`advance`](Self::advance) once all layers have appended.
    pub fn append(&mut self, layer: usize, k: &Tensor, v: &Tensor) -> candle_core::Result<(Tensor, Tensor)> {
        let t = k.dim(2)?;
        if self.len + t > self.capacity {
            candle_core::bail!("KV cache full: {} + {t} columns exceed the capacity {}", self.len, self.capacity)
        }
        let (len, cap) = (self.len, self.capacity);
        match &mut self.store {
            Store::Host(h) => {
                if layer >= h.keys.len() {
                    candle_core::bail!("KV cache has no layer {layer}")
                }
                let hd = h.head_dim;
                let read = |x: &Tensor| -> candle_core::Result<Vec<f32>> {
                    x.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()
                };
                let (kx, vx) = (read(k)?, read(v)?);
                let mut views = Vec::with_capacity(2);
                for (buf, new) in [(&mut h.keys[layer], kx), (&mut h.values[layer], vx)] {
                    let mut filled = Vec::with_capacity(h.batch * h.kv_heads * (len + t) * hd);
                    for (bh, src) in new.chunks_exact(t * hd).enumerate() {
                        let at = bh * cap * hd;
                        buf[at + len * hd..at + (len + t) * hd].convert_from_f32_slice(src);
                        filled.extend(buf[at..at + (len + t) * hd].iter().map(|v| v.to_f32()));
                    }
                    views.push(Tensor::from_vec(filled, (h.batch, h.kv_heads, len + t, hd), k.device())?);
                }
                let v = views.pop();
                match (views.pop(), v) {
                    (Some(k), Some(v)) => Ok((k, v)),
                    _ => candle_core::bail!("KV cache views missing"),
                }
            }
            Store::Tensors { keys, values } => {
                let (kc, vc) = match (keys.get(layer), values.get(layer)) {
                    (Some(kc), Some(vc)) => (kc, vc),
                    _ => candle_core::bail!("KV cache has no layer {layer}"),
                };
                kc.slice_set(&k.to_dtype(kc.dtype())?.contiguous()?, 2, len)?;
                vc.slice_set(&v.to_dtype(vc.dtype())?.contiguous()?, 2, len)?;
                Ok((kc.narrow(2, 0, len + t)?, vc.narrow(2, 0, len + t)?))
            }
        }
    }

    /// Marks `t` more columns as filled.
    pub fn advance(&mut self, t: usize) {
        self.len += t;
    }

    /// Keeps the rows `rows` (in that order, repeats allowed): drops finished rows so they stop costing
    /// work, or fans one prompt's prefill out to its n samples.
    pub fn select(&mut self, rows: &[u32]) -> candle_core::Result<()> {
        match &mut self.store {
            Store::Host(h) => {
                let per_row = h.kv_heads * self.capacity * h.head_dim;
                if let Some(&r) = rows.iter().find(|&&r| r as usize >= h.batch) {
                    candle_core::bail!("KV cache has no row {r} (batch {})", h.batch)
                }
                for buf in h.keys.iter_mut().chain(h.values.iter_mut()) {
                    let mut next = Vec::with_capacity(rows.len() * per_row);
                    for &r in rows {
                        next.extend_from_slice(&buf[r as usize * per_row..(r as usize + 1) * per_row]);
                    }
                    *buf = next;
                }
                h.batch = rows.len();
            }
            Store::Tensors { keys, values } => {
                let Some(first) = keys.first() else {
                    return Ok(());
                };
                let idx = Tensor::new(rows, first.device())?;
                for t in keys.iter_mut().chain(values.iter_mut()) {
                    *t = t.index_select(&idx, 0)?;
                }
            }
        }
        Ok(())
    }
}

impl HostKv {
    /// Writes column `col` of row `b`, KV head `kv` of `layer`: `k` and `v` are `head_dim` floats,
    /// rounded to f16.
    #[inline]
    pub fn write(&mut self, layer: usize, b: usize, kv: usize, col: usize, k: &[f32], v: &[f32]) {
        let at = ((b * self.kv_heads + kv) * self.capacity + col) * self.head_dim;
        self.keys[layer][at..at + self.head_dim].convert_from_f32_slice(k);
        self.values[layer][at..at + self.head_dim].convert_from_f32_slice(v);
    }
}

/// The left padding of each row of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Padding {
    pads: Vec<usize>,
}

impl Padding {
    /// Left-pads token lists to the longest one; returns the padding and the padded `[b * width]`
    /// row-major token ids (pads use `pad_id`, which is never attended to).
    pub fn left_pad(rows: &[Vec<u32>], pad_id: u32) -> (Self, Vec<u32>, usize) {
        let width = rows.iter().map(Vec::len).max().unwrap_or(0);
        let mut ids = Vec::with_capacity(rows.len() * width);
        let mut pads = Vec::with_capacity(rows.len());
        for r in rows {
            let pad = width - r.len();
            pads.push(pad);
            ids.extend(std::iter::repeat_n(pad_id, pad));
            ids.extend_from_slice(r);
        }
        (Padding { pads }, ids, width)
    }

    /// Padding from explicit pad counts.
    pub fn new(pads: Vec<usize>) -> Self {
        Padding { pads }
    }

    /// The pad count of every row.
    pub fn pads(&self) -> &[usize] {
        &self.pads
    }

    /// Keeps rows `rows` (same semantics as [`KvCache::select`]).
    pub fn select(&self, rows: &[u32]) -> Self {
        Padding { pads: rows.iter().map(|&r| self.pads[r as usize]).collect() }
    }

    /// Rotary positions `[b * t]` for the `t` columns starting at column `offset`: column minus the
    /// row's padding (pad columns get position 0; their outputs are never used).
    pub fn positions(&self, offset: usize, t: usize) -> Vec<u32> {
        let mut out = Vec::with_capacity(self.pads.len() * t);
        for &pad in &self.pads {
            for c in offset..offset + t {
                out.push(c.saturating_sub(pad) as u32);
            }
        }
        out
    }

    /// Additive mask `[b * t * (offset + t)]` for queries at columns `offset..offset + t` over keys
    /// `0..offset + t`: causal, and blind to the row's pad columns. A pad query attends only to itself
    /// so its softmax has a finite row (an all -inf row would put NaN into the cache).
    pub fn mask(&self, offset: usize, t: usize) -> Vec<f32> {
        self.mask_window(offset, t, usize::MAX)
    }

    /// [`mask`](Self::mask) that also hides keys `window` or more columns before the query (sliding-window
    /// attention; within a row, columns and positions differ by the same padding).
    pub fn mask_window(&self, offset: usize, t: usize, window: usize) -> Vec<f32> {
        let len = offset + t;
        let mut out = Vec::with_capacity(self.pads.len() * t * len);
        for &pad in &self.pads {
            for q in offset..offset + t {
                for k in 0..len {
                    let visible = if q < pad { k == q } else { k >= pad && k <= q && q - k < window };
                    out.push(if visible { 0.0 } else { f32::NEG_INFINITY });
                }
            }
        }
        out
    }

    /// [`positions`](Self::positions) and [`mask`](Self::mask) as tensors on `device`:
    /// `[b, t]` u32 and `[b, 1, t, offset + t]` f32.
    pub fn tensors(&self, offset: usize, t: usize, device: &Device) -> candle_core::Result<(Tensor, Tensor)> {
        let b = self.pads.len();
        let pos = Tensor::from_vec(self.positions(offset, t), (b, t), device)?;
        let mask = Tensor::from_vec(self.mask(offset, t), (b, 1, t, offset + t), device)?;
        Ok((pos, mask))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const X: f32 = f32::NEG_INFINITY;

    #[test]
    fn left_pad_aligns_rows_to_the_right() {
        let (p, ids, w) = Padding::left_pad(&[vec![5, 6, 7], vec![9]], 0);
        assert_eq!(w, 3);
        assert_eq!(p.pads(), &[0, 2]);
        assert_eq!(ids, vec![5, 6, 7, 0, 0, 9]);
    }

    #[test]
    fn window_masks_hide_keys_a_window_back() {
        // Row 0 unpadded, row 1 padded by two; queries at columns 2 and 3 see at most two keys.
        let m = Padding::new(vec![0, 2]).mask_window(2, 2, 2);
        #[rustfmt::skip]
        assert_eq!(m, vec![
            X, 0.0, 0.0, X,   X, X, 0.0, 0.0,
            X, X, 0.0, X,     X, X, 0.0, 0.0,
        ]);
    }

    #[test]
    fn positions_start_at_zero_after_the_padding() {
        let p = Padding::new(vec![0, 2]);
        assert_eq!(p.positions(0, 3), vec![0, 1, 2, 0, 0, 0]);
        assert_eq!(p.positions(3, 1), vec![3, 1]);
    }

    #[test]
    fn prefill_mask_is_causal_and_hides_padding() {
        let p = Padding::new(vec![0, 2]);
        let m = p.mask(0, 3);
        // row 0: plain causal
        assert_eq!(&m[0..9], &[0.0, X, X, 0.0, 0.0, X, 0.0, 0.0, 0.0]);
        // row 1: pad queries see only themselves; the real query sees only column 2
        assert_eq!(&m[9..18], &[0.0, X, X, X, 0.0, X, X, X, 0.0]);
    }

    #[test]
    fn decode_mask_sees_all_real_columns() {
        let p = Padding::new(vec![0, 2]);
        let m = p.mask(3, 1);
        assert_eq!(m, vec![0.0, 0.0, 0.0, 0.0, X, X, 0.0, 0.0]);
    }

    #[test]
    fn cache_writes_in_place_and_selects_rows() {
        let dev = Device::Cpu;
        let mut c = KvCache::new(1, 2, 1, 4, 2, DType::F32, &dev).unwrap();
        let k = Tensor::new(&[[[[1f32, 1.], [2., 2.]]], [[[3., 3.], [4., 4.]]]], &dev).unwrap();
        let (ka, _) = c.append(0, &k, &k).unwrap();
        assert_eq!(ka.dims(), &[2, 1, 2, 2]);
        c.advance(2);
        let k2 = Tensor::new(&[[[[5f32, 5.]]], [[[6., 6.]]]], &dev).unwrap();
        let (ka, _) = c.append(0, &k2, &k2).unwrap();
        c.advance(1);
        let flat: Vec<f32> = ka.flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(flat, vec![1., 1., 2., 2., 5., 5., 3., 3., 4., 4., 6., 6.]);
        // the full buffer keeps its capacity: nothing was concatenated
        assert_eq!(c.capacity(), 4);
        c.select(&[1]).unwrap();
        assert_eq!(c.batch(), 1);
        let (ka, _) = c
            .append(
                0,
                &Tensor::new(&[[[[7f32, 7.]]]], &dev).unwrap(),
                &Tensor::zeros((1, 1, 1, 2), DType::F32, &dev).unwrap(),
            )
            .unwrap();
        let flat: Vec<f32> = ka.flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(flat, vec![3., 3., 4., 4., 6., 6., 7., 7.]);
        assert!(c
            .append(
                0,
                &Tensor::zeros((1, 1, 2, 2), DType::F32, &dev).unwrap(),
                &Tensor::zeros((1, 1, 2, 2), DType::F32, &dev).unwrap()
            )
            .is_err());
    }
}
