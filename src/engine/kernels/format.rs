//! Decoding of GGUF quantized blocks (byte-for-byte the layouts of ggml and candle's `BlockQ4_0`,
//! `BlockQ4_1`, `BlockQ8_0`, `BlockQ4K`, `BlockQ5K`, `BlockQ6K`) into one unified form: blocks of 32
//! small integers `q` with `value = d[half] * q + m`, where `half` picks the scale of each 16 weights.
//!
//! Every supported format maps to this form without loss: the products `d * sub_scale` of the K-quants
//! have at most 17 significant bits and are exact in f32, so the repacked matrix dequantizes to exactly
//! the floats candle's own `to_float` produces.

use half::f16;

/// Weights per unified block; also the block width of the activation quantizer.
pub const QK: usize = 32;
/// Weights per K-quant super-block.
const QK_K: usize = 256;

/// The GGUF quantized types these kernels read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QType {
    /// 32 weights: f16 scale, 4-bit values offset by 8.
    Q4_0,
    /// 32 weights: f16 scale and f16 minimum, 4-bit values.
    Q4_1,
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
    /// Signed 8-bit values.
    Int8,
}

impl QType {
    /// Weights per block in the file.
    pub fn block_len(self) -> usize {
        match self {
            QType::Q4_0 | QType::Q4_1 | QType::Q8_0 => QK,
            QType::Q4K | QType::Q5K | QType::Q6K => QK_K,
        }
    }

    /// Bytes per block in the file.
    pub fn block_bytes(self) -> usize {
        match self {
            QType::Q4_0 => 18,
            QType::Q4_1 => 20,
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
            QType::Q8_0 => "Q8_0",
            QType::Q4K => "Q4_K",
            QType::Q5K => "Q5_K",
            QType::Q6K => "Q6_K",
        }
    }

    pub(crate) fn width(self) -> Width {
        match self {
            QType::Q4_0 | QType::Q4_1 | QType::Q4K => Width::Nib4,
            QType::Q8_0 | QType::Q5K | QType::Q6K => Width::Int8,
        }
    }

    /// Whether values carry an additive minimum (Q4_0's offset of 8 counts as one).
    pub(crate) fn has_min(self) -> bool {
        !matches!(self, QType::Q8_0 | QType::Q6K)
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
            G::Q8_0 => Some(QType::Q8_0),
            G::Q4K => Some(QType::Q4K),
            G::Q5K => Some(QType::Q5K),
            G::Q6K => Some(QType::Q6K),
            _ => None,
        }
    }
}

/// One unified block: `value[i] = d[i / 16] * q[i] + m`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct UBlock {
    pub q: [i8; QK],
    pub d: [f32; 2],
    pub m: f32,
}

fn f16_at(b: &[u8], at: usize) -> f32 {
    f16::from_bits(u16::from_le_bytes([b[at], b[at + 1]])).to_f32()
}

/// The 6-bit (scale, min) pair `j` of a Q4_K/Q5_K block (ggml's `get_scale_min_k4`).
fn scale_min_k4(j: usize, s: &[u8]) -> (u8, u8) {
    if j < 4 {
        (s[j] & 63, s[j + 4] & 63)
    } else {
        ((s[j + 4] & 0xF) | ((s[j - 4] >> 6) << 4), (s[j + 4] >> 4) | ((s[j] >> 6) << 4))
    }
}

/// Decodes one file block (`qtype.block_bytes()` bytes) into `block_len / 32` unified blocks.
pub(crate) fn decode_block(qtype: QType, b: &[u8], out: &mut Vec<UBlock>) {
    let zero = UBlock { q: [0; QK], d: [0.0; 2], m: 0.0 };
    match qtype {
        QType::Q4_0 | QType::Q4_1 => {
            let d = f16_at(b, 0);
            let (m, qs) = if qtype == QType::Q4_0 {
                // (q - 8) * d == d * q + (-8 * d) exactly: both products are exact in f32.
                (-8.0 * d, &b[2..18])
            } else {
                (f16_at(b, 2), &b[4..20])
            };
            let mut u = UBlock { d: [d, d], m, ..zero };
            for (j, &byte) in qs.iter().enumerate() {
                u.q[j] = (byte & 0xF) as i8;
                u.q[j + 16] = (byte >> 4) as i8;
            }
            out.push(u);
        }
        QType::Q8_0 => {
            let d = f16_at(b, 0);
            let mut u = UBlock { d: [d, d], ..zero };
            for (q, &byte) in u.q.iter_mut().zip(&b[2..34]) {
                *q = byte as i8;
            }
            out.push(u);
        }
        QType::Q4K | QType::Q5K => {
            let (d, dmin, scales) = (f16_at(b, 0), f16_at(b, 2), &b[4..16]);
            let (qh, qs) = if qtype == QType::Q5K { (Some(&b[16..48]), &b[48..176]) } else { (None, &b[16..144]) };
            // Each 64 weights: 32 low nibbles (sub-block 2c), then 32 high nibbles (2c + 1).
            for c in 0..4 {
                for half in 0..2 {
                    let sub = 2 * c + half;
                    let (sc, mn) = scale_min_k4(sub, scales);
                    let ds = d * sc as f32;
                    let mut u = UBlock { d: [ds, ds], m: -(dmin * mn as f32), ..zero };
                    for l in 0..QK {
                        let byte = qs[32 * c + l];
                        let mut v = if half == 0 { byte & 0xF } else { byte >> 4 };
                        if let Some(qh) = qh {
                            v |= ((qh[l] >> sub) & 1) << 4;
                        }
                        u.q[l] = v as i8;
                    }
                    out.push(u);
                }
            }
        }
        QType::Q6K => {
            let (ql, qh, sc, d) = (&b[0..128], &b[128..192], &b[192..208], f16_at(b, 208));
            let start = out.len();
            out.extend(std::iter::repeat_n(zero, QK_K / QK));
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
                        let e = 128 * n + 32 * k + l;
                        out[start + e / QK].q[e % QK] = v as i8 - 32;
                    }
                }
            }
            for (i, u) in out[start..].iter_mut().enumerate() {
                u.d = [d * (sc[2 * i] as i8) as f32, d * (sc[2 * i + 1] as i8) as f32];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q4_0_block_decodes_with_offset_as_minimum() {
        let mut b = vec![0u8; 18];
        b[0..2].copy_from_slice(&f16::from_f32(0.5).to_bits().to_le_bytes());
        b[2] = 0x3F; // low nibble 15 (weight 0), high nibble 3 (weight 16)
        let mut out = Vec::new();
        decode_block(QType::Q4_0, &b, &mut out);
        let u = out[0];
        assert_eq!((u.q[0], u.q[16], u.d[0], u.m), (15, 3, 0.5, -4.0));
        assert_eq!(u.d[0] * u.q[0] as f32 + u.m, 3.5);
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
