//! The repacked weight layout that every kernel reads, built once at load.
//!
//! Rows are taken in groups of [`G`] = 8, padded with zero rows to an even number of groups. For each
//! group and each 32-weight block the values of the 8 rows are interleaved in 4-byte runs, so one
//! 256-bit load holds 4 consecutive weights of each of the 8 rows and a broadcast of 4 activation
//! bytes feeds all 8 rows at once; each 32-bit lane of the integer accumulator is then one output row
//! and no horizontal sum is needed. Values of one group-block (the *value planes*, [`Packed::vbytes`]):
//! - 4-bit plane (128 bytes): byte `32p + 4j + k` holds weight `4p + k` of row `j` in its low nibble
//!   and weight `4p + k + 16` in its high nibble (`p` = 0..4).
//! - 5-bit values add a 1-bit plane (32 bytes): byte `4j + k`, bit `p` is bit 4 of weight `4p + k`,
//!   bit `4 + p` that of weight `4p + k + 16`. Each bit then reaches bit 4 of its own byte with one
//!   shift (left by `4 - p`, right by `p`), so no shift crosses into a neighbouring byte.
//! - 6-bit values add a 2-bit plane (64 bytes): byte `4j + k` of its first 32 bytes holds bits 4..6 of
//!   weight `4p + k` at bits `2p..2p + 2`, of its second 32 bytes those of weight `4p + k + 16`.
//! - 8-bit values (256 bytes): byte `32c + 4j + k` holds weight `4c + k` of row `j` (`c` = 0..8).
//!
//! Scales stay as small as the file has them, since decode streams every byte from DRAM:
//! - legacy types, one record per group-block: the value planes, then `d` of the 8 rows as f16, then
//!   (Q4_1, Q5_1) `m` as f16: Q4_0, Q4_1, Q5_0, Q5_1 and Q8_0 take exactly their file size;
//! - K-quants, one record per group and 256-weight super-block: the value planes of its 8 blocks, then
//!   for each block 16 bytes (8 rows of scale, then 8 rows of min, 6-bit each; Q6_K: 8 rows of the i8
//!   scale of each 16-weight half), then the super-block's `d` of the 8 rows as f16 and (Q4_K, Q5_K)
//!   its `dmin`: 4.625 bits per weight for Q4_K, 5.625 for Q5_K, 6.5625 for Q6_K.
//!
//! Groups `2k` and `2k + 1` are stored together, record by record ([`Packed::locate`]): their value
//! planes alternate block by block, then come the scales of the first and of the second, so every
//! kernel reads a pair of groups as one sequential stream. (With the two groups' K-quant records
//! simply one after the other, 1184 bytes apart for Q4_K, decode of a whole model ran 2x slower: two
//! interleaved streams defeat the hardware prefetcher.)

use rayon::prelude::*;

use super::format::{decode_block, f16_to_f32, QType, UBlock, Width, QK};
use super::{KernelError, RawRows};

/// Rows per interleaved group.
pub(crate) const G: usize = 8;

/// File bytes repacked per task at most.
const CHUNK_BYTES: usize = 2 << 20;

/// A weight matrix in the interleaved layout.
pub(crate) struct Packed {
    pub width: Width,
    /// Subtracted from every stored value (see `QType::zero`).
    pub zero: i32,
    pub halves: bool,
    pub has_min: bool,
    /// K-quant scales: per-block integer sub-scales times per-record f16 super-scales.
    pub sup: bool,
    pub rows: usize,
    pub cols: usize,
    /// 32-weight blocks per row.
    pub blocks: usize,
    pub groups: usize,
    /// Blocks per record: 8 for K-quants, 1 otherwise.
    pub nsub: usize,
    /// `groups * blocks / nsub` records of [`Packed::rec`] bytes.
    pub data: Store,
}

/// Zeroed bytes of an anonymous memory map of their own: fresh pages are zero already, while a heap
/// allocation of the same size (below glibc's mmap threshold, which rises to 32 MiB once large
/// blocks have been freed) is cleared twice, by `calloc` and by the kernel.
///
/// Not transparent huge pages: `madvise(MADV_HUGEPAGE)` here made loading the 1.5B model take 2.5 s
/// of kernel time instead of 0.9, nearly all of it clearing 2 MiB pages (measured on the shared 2-core
/// VM, where fresh huge pages seem to come from memory the host has not backed yet).
#[derive(Default)]
pub(crate) struct Store {
    map: Option<memmap2::MmapMut>,
}

impl Store {
    fn zeroed(len: usize) -> Result<Store, KernelError> {
        if len == 0 {
            return Ok(Store::default());
        }
        let map = memmap2::MmapMut::map_anon(len).map_err(|source| KernelError::Map { bytes: len, cause: source })?;
        Ok(Store { map: Some(map) })
    }
}

impl std::ops::Deref for Store {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        self.map.as_deref().unwrap_or(&[])
    }
}

impl std::ops::DerefMut for Store {
    fn deref_mut(&mut self) -> &mut [u8] {
        self.map.as_deref_mut().unwrap_or(&mut [])
    }
}

/// The float scales of one block of 8 rows, as the kernels form them.
pub(crate) struct BlockScales {
    /// The scale of the first half (of the whole block unless `halves`).
    pub d0: [f32; G],
    /// The scale of the second half (Q6_K only).
    pub d1: [f32; G],
    /// Legacy types: the minimum, added times the activations' `ds`; K-quants: `dmin * min`,
    /// subtracted (bit for bit the same as adding its negation).
    pub m: [f32; G],
}

impl Packed {
    /// Bytes of value planes per group and block.
    pub fn vbytes(&self) -> usize {
        match self.width {
            Width::Nib4 => 128,
            Width::Nib5 => 160,
            Width::Nib6 => 192,
            Width::Int8 => 256,
        }
    }

    /// Where the scales start in a record.
    #[inline]
    pub fn area(&self) -> usize {
        self.nsub * self.vbytes()
    }

    /// Bytes of scales per record.
    #[inline]
    pub fn sbytes(&self) -> usize {
        16 * (1 + self.has_min as usize) + if self.sup { 16 * self.nsub } else { 0 }
    }

    /// Bytes per record.
    #[inline]
    pub fn rec(&self) -> usize {
        self.area() + self.sbytes()
    }

    /// Records per group.
    #[inline]
    pub fn nrec(&self) -> usize {
        self.blocks / self.nsub
    }

    /// Repacks the `rows` rows of raw GGUF blocks that `src` holds. Pairs of groups are independent,
    /// so tasks of whole pairs (up to [`CHUNK_BYTES`] of file rows each) run in parallel on the
    /// current rayon pool, and each tells `src` when its rows are done, so a memory-mapped file
    /// never has more than a few chunks of its pages mapped besides the repacked matrix.
    pub fn build(qtype: QType, rows: usize, cols: usize, src: &dyn RawRows) -> Result<Packed, KernelError> {
        let sup = qtype.is_k();
        let mut p = Packed {
            width: qtype.width(),
            zero: qtype.zero(),
            halves: qtype.halves(),
            has_min: qtype.has_min(),
            sup,
            rows,
            cols,
            blocks: cols / QK,
            // An even number of groups: the 512-bit kernel takes them in pairs.
            groups: 2 * rows.div_ceil(2 * G),
            nsub: if sup { qtype.block_len() / QK } else { 1 },
            data: Store::default(),
        };
        let pair = 2 * p.nrec() * p.rec();
        let pairs = p.groups / 2;
        // Zeroed, so padding rows hold zero scales.
        let mut data = Store::zeroed(pairs * pair)?;
        let row_bytes = cols / qtype.block_len() * qtype.block_bytes();
        // Several tasks per thread, so small matrices still use every core.
        let per_task = (CHUNK_BYTES / (2 * G * row_bytes).max(1))
            .clamp(1, pairs.div_ceil(4 * rayon::current_num_threads()).max(1));
        if pair > 0 {
            let p = &p;
            data.par_chunks_mut(per_task * pair).enumerate().try_for_each_init(
                || vec![UBlock::default(); p.blocks],
                |ub, (t, out)| {
                    let (r0, r1) = (t * per_task * 2 * G, ((t + 1) * per_task * 2 * G).min(rows));
                    for r in r0..r1 {
                        let row = src.row(r);
                        if row.len() != row_bytes {
                            let qtype = qtype.name();
                            return Err(KernelError::RowLength { qtype, row: r, expected: row_bytes, got: row.len() });
                        }
                        let k = (r - r0) / (2 * G);
                        p.place_row(qtype, row, r % (2 * G), ub, &mut out[k * pair..(k + 1) * pair]);
                    }
                    src.done(r0, r1);
                    Ok(())
                },
            )?;
            // Again for the whole matrix: pages at the border of two tasks that the slower one
            // mapped back in (the kernel maps file pages 64 KiB around a fault) after the faster one
            // had let them go.
            src.done(0, rows);
        }
        p.data = data;
        Ok(p)
    }

    /// Decodes one row's file blocks and writes them into the records of its pair of groups (`chunk`),
    /// as row `jj` (0..16) of the pair.
    fn place_row(&self, qtype: QType, row: &[u8], jj: usize, ub: &mut [UBlock], chunk: &mut [u8]) {
        let (h, j) = (jj / G, jj % G);
        let (rec, vb, area, per) = (self.rec(), self.vbytes(), self.area(), qtype.block_len() / QK);
        let scales = |r: usize| 2 * r * rec + 2 * area + h * self.sbytes();
        for (f, fb) in row.chunks_exact(qtype.block_bytes()).enumerate() {
            let sup = decode_block(qtype, fb, &mut ub[f * per..(f + 1) * per]);
            if self.sup {
                let r = &mut chunk[scales(f) + 16 * self.nsub..];
                r[2 * j..2 * j + 2].copy_from_slice(&sup[0].to_le_bytes());
                if self.has_min {
                    r[16 + 2 * j..16 + 2 * j + 2].copy_from_slice(&sup[1].to_le_bytes());
                }
            }
        }
        for (b, u) in ub.iter().enumerate() {
            let (ri, s) = (b / self.nsub, b % self.nsub);
            let at = 2 * ri * rec + (2 * s + h) * vb;
            place_values(self.width, &mut chunk[at..at + vb], j, &u.u);
            let sc = &mut chunk[scales(ri)..];
            if self.sup {
                sc[16 * s + j] = u.sc[0];
                sc[16 * s + 8 + j] = u.sc[1];
            } else {
                sc[2 * j..2 * j + 2].copy_from_slice(&u.d.to_le_bytes());
                if self.has_min {
                    sc[16 + 2 * j..16 + 2 * j + 2].copy_from_slice(&u.m.to_le_bytes());
                }
            }
        }
    }

    /// Cache lines to prefetch while a pair record starting at `pr` is read: the next pair
    /// record's scales. A K-quant record's scales follow its 2 KiB or more of values, beyond where
    /// the hardware prefetcher has reached when the record's first block needs them, and waiting
    /// on them cost a fifth of decode time on Qwen2.5-Coder-1.5B (Q4_K/Q6_K). Legacy records keep
    /// their scales right after one block's values: nothing to do. Addresses past the last record
    /// are harmless, since a prefetch never faults.
    #[inline(always)]
    pub fn scale_prefetches(&self, pr: *const u8) -> impl Iterator<Item = *const u8> {
        let next = pr.wrapping_add(2 * self.rec() + 2 * self.area());
        // Whole cache lines, from the one holding the first byte to the one holding the last.
        let (first, end) = (next as usize & !63, next as usize + 2 * self.sbytes());
        let lines = if self.nsub > 1 { (end - first).div_ceil(64) } else { 0 };
        let start = next.wrapping_sub(next as usize - first);
        (0..lines).map(move |k| start.wrapping_add(64 * k))
    }

    /// Byte offset of record `r` (blocks `r * nsub..`) of the pair of groups holding group `g`: the
    /// value planes of its blocks, group `2k` then `2k + 1` for each block ([`Packed::vbytes`] each),
    /// then the scales of group `2k` and those of group `2k + 1` ([`Packed::sbytes`] each).
    #[inline]
    pub fn pair_rec(&self, g: usize, r: usize) -> usize {
        ((g / 2) * self.nrec() + r) * 2 * self.rec()
    }

    /// Byte offsets of block `b` of group `g`: its value planes and its record's scales; and the
    /// block's index in its record.
    pub fn locate(&self, g: usize, b: usize) -> (usize, usize, usize) {
        let (r, s, h) = (b / self.nsub, b % self.nsub, g % 2);
        let pr = self.pair_rec(g, r);
        (pr + (2 * s + h) * self.vbytes(), pr + 2 * self.area() + h * self.sbytes(), s)
    }

    /// The scales of block `s` of the record whose scales start at byte `off`, formed as the kernels
    /// form them.
    pub fn block_scales(&self, off: usize, s: usize) -> BlockScales {
        let r = &self.data[off..off + self.sbytes()];
        let f16 = |at: usize| f16_to_f32(u16::from_le_bytes([r[at], r[at + 1]]));
        let mut out = BlockScales { d0: [0.0; G], d1: [0.0; G], m: [0.0; G] };
        for j in 0..G {
            if self.sup {
                let (a, b) = (r[16 * s + j], r[16 * s + 8 + j]);
                let d = f16(16 * self.nsub + 2 * j);
                if self.halves {
                    out.d0[j] = d * a as i8 as f32;
                    out.d1[j] = d * b as i8 as f32;
                } else {
                    out.d0[j] = d * a as f32;
                    out.m[j] = f16(16 * self.nsub + 16 + 2 * j) * b as f32;
                }
            } else {
                out.d0[j] = f16(2 * j);
                out.m[j] = if self.has_min { f16(16 + 2 * j) } else { 0.0 };
            }
        }
        out
    }

    /// The signed value `q` (stored value minus `zero`) of weight `i` (0..32) of row `j` in the block
    /// whose value planes start at byte `off`.
    pub fn value(&self, off: usize, j: usize, i: usize) -> i32 {
        let w = &self.data[off..];
        let (p, k, hi) = ((i % 16) / 4, i % 4, i >= 16);
        let nib = w[32 * p + 4 * j + k];
        let nib = if hi { nib >> 4 } else { nib & 0xF } as i32;
        let u = match self.width {
            Width::Int8 => return w[32 * (i / 4) + 4 * j + k] as i8 as i32,
            Width::Nib4 => nib,
            Width::Nib5 => nib | ((w[128 + 4 * j + k] as i32 >> (p + 4 * hi as usize)) & 1) << 4,
            Width::Nib6 => nib | ((w[128 + 32 * hi as usize + 4 * j + k] as i32 >> (2 * p)) & 3) << 4,
        };
        u - self.zero
    }

    /// Bytes held by the repacked matrix.
    pub fn size_in_bytes(&self) -> usize {
        self.data.len()
    }
}

/// Writes the 32 values `u` of row `j` into a group-block's value planes `w`. Eight values at a time
/// as a `u64` (byte `i` of a word is value `i`): repacking a model is mostly this function.
fn place_values(width: Width, w: &mut [u8], j: usize, u: &[u8; QK]) {
    let j4 = 4 * j;
    if width == Width::Int8 {
        for c in 0..8 {
            w[32 * c + j4..32 * c + j4 + 4].copy_from_slice(&u[4 * c..4 * c + 4]);
        }
        return;
    }
    const NIB: u64 = 0x0F0F_0F0F_0F0F_0F0F;
    let word = |at: usize| u64::from_le_bytes(u[at..at + 8].try_into().unwrap_or_default());
    // Values 0..8 and 8..16 (first half), 16..24 and 24..32 (second half).
    let v = [word(0), word(8), word(16), word(24)];
    for h in 0..2 {
        // Byte i: value 8h + i in the low nibble, value 8h + i + 16 in the high one; bytes 0..4 are
        // step p = 2h, bytes 4..8 step 2h + 1.
        let b = ((v[h] & NIB) | ((v[2 + h] & NIB) << 4)).to_le_bytes();
        w[64 * h + j4..64 * h + j4 + 4].copy_from_slice(&b[..4]);
        w[64 * h + 32 + j4..64 * h + 32 + j4 + 4].copy_from_slice(&b[4..]);
    }
    // The high bits of each value (bits 4 and up) gathered per k: byte k of `steps(x, y, m, s)` holds
    // those of values k, k + 4 (from `x`), k + 8, k + 12 (from `y`) at bits 0, s, 2s, 3s.
    let steps = |x: u64, y: u64, m: u64, s: u32| -> u32 {
        let (x, y) = ((x >> 4) & m, (y >> 4) & m);
        (x as u32) | ((x >> 32) as u32) << s | (y as u32) << (2 * s) | ((y >> 32) as u32) << (3 * s)
    };
    match width {
        Width::Nib5 => {
            let m = 0x0101_0101_0101_0101;
            let bits = steps(v[0], v[1], m, 1) | steps(v[2], v[3], m, 1) << 4;
            w[128 + j4..128 + j4 + 4].copy_from_slice(&bits.to_le_bytes());
        }
        Width::Nib6 => {
            let m = 0x0303_0303_0303_0303;
            w[128 + j4..128 + j4 + 4].copy_from_slice(&steps(v[0], v[1], m, 2).to_le_bytes());
            w[160 + j4..160 + j4 + 4].copy_from_slice(&steps(v[2], v[3], m, 2).to_le_bytes());
        }
        _ => {}
    }
}

/// Where a kernel writes: row-major `[m, rows]` floats shared by threads that write disjoint
/// column ranges (their own row groups).
#[derive(Clone, Copy)]
pub(crate) struct OutPtr {
    pub ptr: *mut f32,
    pub rows: usize,
}

// SAFETY: threads given the same `OutPtr` write disjoint elements (distinct row groups), and the
// buffer outlives the parallel section that uses it.
unsafe impl Send for OutPtr {}
unsafe impl Sync for OutPtr {}

impl OutPtr {
    /// Writes the 8 results of group `g` for activation row `i`, dropping padded rows.
    ///
    /// # Safety
    /// `i` must be below `m` of the buffer and no other thread may write group `g`.
    #[inline]
    pub unsafe fn store(self, i: usize, g: usize, vals: &[f32; G]) {
        let n = self.rows.saturating_sub(g * G).min(G);
        let dst = self.ptr.add(i * self.rows + g * G);
        std::ptr::copy_nonoverlapping(vals.as_ptr(), dst, n);
    }
}
