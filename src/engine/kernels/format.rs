//! Decoding of GGUF quantized blocks (byte-for-byte the layouts of ggml and candle's `BlockQ4_0`,
//! `BlockQ4_1`, `BlockQ5_0`, `BlockQ5_1`, `BlockQ8_0`, `BlockQ4K`, `BlockQ5K`, `BlockQ6K`) into one
//! unified form: blocks of 32 unsigned integers `u` (4, 5, 6 or 8 bits) with the file's own scales.
//!
//! A weight is `q = u - zero` (`zero`: 8 for Q4_0, 16 for Q5_0, 32 for Q6_K, else 0) times a scale,
//! plus a minimum for the types that have one. The scales stay as the file stores them: f16 `d` (and
//! `m`) per 32 weights for the legacy types; for the K-quants one f16 pair (`d`, `dmin`) per 256 weights
//! and small integer sub-scales per 32 weights, multiplied only in the kernels: `d * sub_scale` has at
//! most 17 significant bits and is exact in f32, so the products equal candle's `to_float` exactly.

use half::f16;

/// Weights per unified block; also the block width of the activation quantizer.
pub const QK: usize = 32;
/// Weights per K-quant super-block.
pub(crate) const QK_K: usize = 256;

/// The GGUF quantized types these kernels read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QType {
    /// 32 weights: f16 scale, 4-bit values offset by 8.
    Q4_0,
    /// 32 weights: f16 scale and f16 minimum, 4-bit values.
    Q4_1,
    /// 32 weights: f16 scale, 5-bit values offset by 16.
    Q5_0,
    /// 32 weights: f16 scale and f16 minimum, 5-bit values.
    Q5_1,
    /// 32 weights: f16 scale, signed 8-bit values.
    Q8_0,
    /// 256 weights: f16 super-scales, eight 6-bit (scale, min) pairs, 4-bit values.
    Q4K,
    /// 256 weights: like Q4K with a fifth bit per value.
    Q5K,
    /// 256 weights: f16 super-scale, sixteen i8 scales, 6-bit values offset by 32.
    Q6K,
}

/// How a type's values are stored after repacking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Width {
    /// Unsigned 4-bit values, two per byte.
    Nib4,
    /// Unsigned 5-bit values: a 4-bit plane and a 1-bit plane.
    Nib5,
    /// Unsigned 6-bit values: a 4-bit plane and a 2-bit plane.
    Nib6,
    /// Signed 8-bit values.
    Int8,
}

impl QType {
    /// Weights per block in the file.
    pub fn block_len(self) -> usize {
        if self.is_k() {
            QK_K
        } else {
            QK
        }
    }

    /// Bytes per block in the file.
    pub fn block_bytes(self) -> usize {
        match self {
            QType::Q4_0 => 18,
            QType::Q4_1 => 20,
            QType::Q5_0 => 22,
            QType::Q5_1 => 24,
            QType::Q8_0 => 34,
            QType::Q4K => 144,
            QType::Q5K => 176,
            QType::Q6K => 210,
        }
    }

    /// The GGUF/ggml name of the type, for messages.
    pub fn name(self) -> &'static str {
        match self {
            QType::Q4_0 => "Q4_0",
            QType::Q4_1 => "Q4_1",
            QType::Q5_0 => "Q5_0",
            QType::Q5_1 => "Q5_1",
            QType::Q8_0 => "Q8_0",
            QType::Q4K => "Q4_K",
            QType::Q5K => "Q5_K",
            QType::Q6K => "Q6_K",
        }
    }

    /// K-quants: 256-weight super-blocks with per-32 integer sub-scales.
    pub(crate) fn is_k(self) -> bool {
        matches!(self, QType::Q4K | QType::Q5K | QType::Q6K)
    }

    pub(crate) fn width(self) -> Width {
        match self {
            QType::Q4_0 | QType::Q4_1 | QType::Q4K => Width::Nib4,
            QType::Q5_0 | QType::Q5_1 | QType::Q5K => Width::Nib5,
            QType::Q6K => Width::Nib6,
            QType::Q8_0 => Width::Int8,
        }
    }

    /// The integer offset subtracted from the stored unsigned values (in the kernels' integer sums,
    /// where it costs one multiply by the activations' block sum, instead of a stored minimum).
    pub(crate) fn zero(self) -> i32 {
        match self {
            QType::Q4_0 => 8,
            QType::Q5_0 => 16,
            QType::Q6K => 32,
            _ => 0,
        }
    }

    /// Whether values carry an additive minimum.
    pub(crate) fn has_min(self) -> bool {
        matches!(self, QType::Q4_1 | QType::Q5_1 | QType::Q4K | QType::Q5K)
    }

    /// Whether each half (16 weights) of a unified block has its own scale (only Q6_K).
    pub(crate) fn halves(self) -> bool {
        self == QType::Q6K
    }

    /// Maps candle's dtype; `None` for types these kernels do not handle.
    pub fn from_ggml(dtype: candle_core::quantized::GgmlDType) -> Option<QType> {
        use candle_core::quantized::GgmlDType as G;
        match dtype {
            G::Q4_0 => Some(QType::Q4_0),
            G::Q4_1 => Some(QType::Q4_1),
            G::Q5_0 => Some(QType::Q5_0),
            G::Q5_1 => Some(QType::Q5_1),
            G::Q8_0 => Some(QType::Q8_0),
            G::Q4K => Some(QType::Q4K),
            G::Q5K => Some(QType::Q5K),
            G::Q6K => Some(QType::Q6K),
            _ => None,
        }
    }
}

/// One unified block of one row.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(crate) struct UBlock {
    /// Unsigned values (Q8_0: the signed bytes as they are).
    pub u: [u8; QK],
    /// Legacy types: the f16 bits of `d` and of `m` (0 when the type has no minimum).
    pub d: u16,
    pub m: u16,
    /// K-quants: Q4_K/Q5_K the 6-bit (scale, min); Q6_K the i8 scales of the two halves.
    pub sc: [u8; 2],
}

fn f16_bits(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

/// f16 bits as f32.
pub(crate) fn f16_to_f32(bits: u16) -> f32 {
    f16::from_bits(bits).to_f32()
}

/// The 6-bit (scale, min) pair `j` of a Q4_K/Q5_K block (ggml's `get_scale_min_k4`).
fn scale_min_k4(j: usize, s: &[u8]) -> (u8, u8) {
    if j < 4 {
        (s[j] & 63, s[j + 4] & 63)
    } else {
        ((s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4), (s[j + 4] >> 4) | ((s[j] >> 6) << 4))
    }
}

/// Decodes one file block (`qtype.block_bytes()` bytes) into `out` (`block_len / 32` unified blocks);
/// returns the K-quants' super-block scales as f16 bits (`d`, `dmin`), zeros for legacy types.
pub(crate) fn decode_block(qtype: QType, b: &[u8], out: &mut [UBlock]) -> [u16; 2] {
    match qtype {
        QType::Q4_0 | QType::Q4_1 | QType::Q5_0 | QType::Q5_1 => {
            let u = &mut out[0];
            u.d = f16_bits(b, 0);
            let with_min = qtype.has_min();
            u.m = if with_min { f16_bits(b, 2) } else { 0 };
            let at = 2 + 2 * with_min as usize;
            let (qh, qs) = match qtype {
                QType::Q5_0 | QType::Q5_1 => {
                    (u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]), &b[at + 4..at + 20])
                }
                _ => (0, &b[at..at + 16]),
            };
            for (j, &byte) in qs.iter().enumerate() {
                u.u[j] = (byte & 0xF) | (((qh >> j) & 1) << 4) as u8;
                u.u[j + 16] = (byte >> 4) | (((qh >> (j + 16)) & 1) << 4) as u8;
            }
            [0, 0]
        }
        QType::Q8_0 => {
            let u = &mut out[0];
            u.d = f16_bits(b, 0);
            u.m = 0;
            u.u.copy_from_slice(&b[2..34]);
            [0, 0]
        }
        QType::Q4K | QType::Q5K => {
            let scales = &b[4..16];
            let (qh, qs) = if qtype == QType::Q5K { (Some(&b[16..48]), &b[48..176]) } else { (None, &b[16..144]) };
            // Each 64 weights: 32 low nibbles (sub-block 2c), then 32 high nibbles (2c + 1).
            for (sub, u) in out.iter_mut().enumerate().take(8) {
                let (c, half) = (sub / 2, sub % 2);
                let (sc, mn) = scale_min_k4(sub, scales);
                u.sc = [sc, mn];
                for l in 0..QK {
                    let byte = qs[32 * c + l];
                    let mut v = if half == 0 { byte & 0xF } else { byte >> 4 };
                    if let Some(qh) = qh {
                        v |= ((qh[l] >> sub) & 1) << 4;
                    }
                    u.u[l] = v;
                }
            }
            [f16_bits(b, 0), f16_bits(b, 2)]
        }
        QType::Q6K => {
            let (ql, qh, sc) = (&b[0..128], &b[128..192], &b[192..208]);
            for n in 0..2 {
                let (ql, qh) = (&ql[64 * n..], &qh[32 * n..]);
                for l in 0..QK {
                    let q = [
                        (ql[l] & 0xF) | ((qh[l] & 3) << 4),
                        (ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4),
                        (ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4),
                        (ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4),
                    ];
                    for (k, &v) in q.iter().enumerate() {
                        out[4 * n + k].u[l] = v;
                    }
                }
            }
            for (i, u) in out.iter_mut().enumerate().take(8) {
                u.sc = [sc[2 * i], sc[2 * i + 1]];
            }
            [f16_bits(b, 208), 0]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q5_0_block_takes_its_fifth_bits_from_qh() {
        let mut b = vec![0u8; 22];
        b[0..2].copy_from_slice(&f16::from_f32(0.5).to_bits().to_le_bytes());
        b[2..6].copy_from_slice(&(1u32 | 1 << 17).to_le_bytes()); // weight 0 and weight 17
        b[6] = 0x3F; // low nibble 15 (weight 0), high nibble 3 (weight 16)
        let mut out = [UBlock::default()];
        decode_block(QType::Q5_0, &b, &mut out);
        let u = out[0];
        assert_eq!((u.u[0], u.u[16], u.u[17], u.u[1]), (31, 3, 16, 0));
        assert_eq!(f16_to_f32(u.d) * (u.u[0] as i32 - QType::Q5_0.zero()) as f32, 7.5);
    }

    #[test]
    fn k4_scale_pairs_unpack_high_bits() {
        let mut s = [0u8; 12];
        s[0] = 0b1100_0001; // j=0 scale 1, and bits 4..5 of scale 4
        s[4] = 0b0100_0010; // j=0 min 2, bits 4..5 of min 4
        s[8] = 0x5A; // j=4 low nibbles: scale 0xA, min 0x5
        assert_eq!(scale_min_k4(0, &s), (1, 2));
        assert_eq!(scale_min_k4(4, &s), (0x3A, 0x15));
    }
}
