//! The repacked weight layout that every kernel reads, built once at load.
//!
//! Rows are taken in groups of [`G`] = 8, padded with zero rows to an even number of groups. For each
//! group and each 32-weight block the values of the 8 rows are interleaved in 4-byte runs, so one
//! 256-bit load holds 4 consecutive weights of each of the 8 rows and a broadcast of 4 activation
//! bytes feeds all 8 rows at once; each 32-bit lane of the integer accumulator is then one output row
//! and no horizontal sum is needed. Records of groups `2k` and `2k + 1` alternate block by block
//! ([`Packed::rec_index`]), so every kernel reads a pair of groups as one sequential stream.
//! - 4-bit values (128 bytes per group and block): byte `32p + 4j + k` holds weight `4p + k` of row
//!   `j` in its low nibble and weight `4p + k + 16` in its high nibble (`p` = 0..4).
//! - 8-bit values (256 bytes): byte `32c + 4j + k` holds weight `4c + k` of row `j` (`c` = 0..8).
//!
//! Each group-block record continues with the scales of its 8 rows: `d`, then (Q6_K only) `d` of
//! their second halves, then (types with a minimum) `m`. Values and scales in one record keep the stream
//! single. Scales are f16 when every value is exactly an f16 (Q4_0, Q4_1, Q8_0:
//! the file's own scales) and f32 otherwise (K-quants), so Q4_1 and Q8_0 take exactly their file size.

use half::f16;

use super::format::{decode_block, QType, UBlock, Width, QK};

/// Rows per interleaved group.
pub(crate) const G: usize = 8;

/// A weight matrix in the interleaved layout.
pub(crate) struct Packed {
    pub width: Width,
    pub halves: bool,
    pub has_min: bool,
    /// Scales stored as f16 (else f32).
    pub f16: bool,
    pub rows: usize,
    pub cols: usize,
    pub blocks: usize,
    pub groups: usize,
    /// `groups * blocks` records of [`Packed::rec`] bytes.
    pub data: Vec<u8>,
}

impl Packed {
    /// Bytes of values per group and block.
    pub fn wbytes(&self) -> usize {
        match self.width {
            Width::Nib4 => 128,
            Width::Int8 => 256,
        }
    }

    /// Scale vectors (of 8) per group and block.
    pub fn nscale(&self) -> usize {
        1 + self.halves as usize + self.has_min as usize
    }

    /// Bytes per group-block record.
    pub fn rec(&self) -> usize {
        self.wbytes() + self.nscale() * G * if self.f16 { 2 } else { 4 }
    }

    /// Repacks `rows` rows of raw GGUF blocks; the caller has checked the byte length.
    pub fn build(qtype: QType, rows: usize, cols: usize, bytes: &[u8]) -> Packed {
        let blocks = cols / QK;
        // An even number of groups: the 512-bit kernel takes them in pairs.
        let groups = 2 * rows.div_ceil(2 * G);
        let mut p = Packed {
            width: qtype.width(),
            halves: qtype.halves(),
            has_min: qtype.has_min(),
            f16: true,
            rows,
            cols,
            blocks,
            groups,
            data: Vec::new(),
        };
        let (nscale, wbytes) = (p.nscale(), p.wbytes());
        let mut values = vec![0u8; groups * blocks * wbytes];
        let mut scales = vec![0.0f32; groups * blocks * nscale * G];
        let row_bytes = cols / qtype.block_len() * qtype.block_bytes();
        let mut ub: Vec<UBlock> = Vec::with_capacity(blocks);
        for r in 0..rows {
            ub.clear();
            for fb in bytes[r * row_bytes..(r + 1) * row_bytes].chunks_exact(qtype.block_bytes()) {
                decode_block(qtype, fb, &mut ub);
            }
            let (g, j) = (r / G, r % G);
            for (b, u) in ub.iter().enumerate() {
                let gb = p.rec_index(g, b);
                let w = &mut values[gb * wbytes..(gb + 1) * wbytes];
                for (i, &q) in u.q.iter().enumerate() {
                    match p.width {
                        Width::Nib4 => {
                            let (p4, k, hi) = ((i % 16) / 4, i % 4, i >= 16);
                            let at = 32 * p4 + 4 * j + k;
                            w[at] |= if hi { (q as u8) << 4 } else { q as u8 & 0xF };
                        }
                        Width::Int8 => w[32 * (i / 4) + 4 * j + i % 4] = q as u8,
                    }
                }
                let s = &mut scales[gb * nscale * G..(gb + 1) * nscale * G];
                s[j] = u.d[0];
                if p.halves {
                    s[G + j] = u.d[1];
                }
                if p.has_min {
                    s[(nscale - 1) * G + j] = u.m;
                }
            }
        }
        // Bitwise round trip: f16 storage only when it loses nothing (-0.0 and NaN included).
        p.f16 = scales.iter().all(|v| f16::from_f32(*v).to_f32().to_bits() == v.to_bits());
        p.data.reserve_exact(groups * blocks * p.rec());
        for (w, s) in values.chunks_exact(wbytes).zip(scales.chunks_exact(nscale * G)) {
            p.data.extend_from_slice(w);
            for v in s {
                if p.f16 {
                    p.data.extend_from_slice(&f16::from_f32(*v).to_bits().to_le_bytes());
                } else {
                    p.data.extend_from_slice(&v.to_le_bytes());
                }
            }
        }
        p
    }

    /// The record of group `g`, block `b`: the records of groups `2k` and `2k + 1` alternate block
    /// by block, so a pair of groups is one contiguous stream for the 512-bit kernel.
    #[inline]
    pub fn rec_index(&self, g: usize, b: usize) -> usize {
        ((g / 2) * self.blocks + b) * 2 + g % 2
    }

    /// Scale vector `s` (0: d, 1: d of the second half if any, then m if any) of row `j` in
    /// group-block `gb`.
    pub fn scale(&self, gb: usize, s: usize, j: usize) -> f32 {
        let at = gb * self.rec() + self.wbytes();
        let idx = s * G + j;
        if self.f16 {
            let b = &self.data[at + 2 * idx..];
            f16::from_bits(u16::from_le_bytes([b[0], b[1]])).to_f32()
        } else {
            let b = &self.data[at + 4 * idx..];
            f32::from_le_bytes([b[0], b[1], b[2], b[3]])
        }
    }

    /// The minimum of row `j` in group-block `gb` (0 for types without one).
    pub fn min(&self, gb: usize, j: usize) -> f32 {
        if self.has_min {
            self.scale(gb, self.nscale() - 1, j)
        } else {
            0.0
        }
    }

    /// Value `i` (0..32) of row `j` in group-block `gb`.
    pub fn value(&self, gb: usize, j: usize, i: usize) -> i32 {
        let w = &self.data[gb * self.rec()..];
        match self.width {
            Width::Nib4 => {
                let byte = w[32 * ((i % 16) / 4) + 4 * j + i % 4];
                (if i >= 16 { byte >> 4 } else { byte & 0xF }) as i32
            }
            Width::Int8 => w[32 * (i / 4) + 4 * j + i % 4] as i8 as i32,
        }
    }

    /// Bytes held by the repacked matrix.
    pub fn size_in_bytes(&self) -> usize {
        self.data.len()
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
