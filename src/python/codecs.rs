//! Python's source codecs, as far as unitcoder decodes them: the names a PEP 263 declaration may
//! give, resolved as Python resolves them ([`lookup`]), and decoders that agree with Python's codecs
//! byte for byte ([`decode`]). Latin-1 and ASCII are decoded here; the other code pages through
//! `encoding_rs`'s WHATWG tables, corrected where Python's codec differs from the web's (the tests
//! in `source_tests.rs` compare every byte, and every character of the multi-byte pages, with the
//! `python3` on the PATH).

/// How Python's codec is decoded.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Codec {
    Utf8,
    /// Every byte is the code point of the same value. Not WHATWG's "latin1", which is windows-1252.
    Latin1,
    Ascii,
    Single(SingleByte),
    Multi(MultiByte),
}

/// A single-byte code page: a WHATWG table, with Python's bytes 0x80–0x9F and undefined bytes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SingleByte {
    table: &'static encoding_rs::Encoding,
    c1: C1,
    /// Bytes Python's codec leaves undefined though WHATWG's table maps them (cp1255's 0xCA, a
    /// vowel point Microsoft added later).
    undefined: &'static [u8],
}

/// What Python's codec does with bytes 0x80–0x9F where its table and WHATWG's differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum C1 {
    /// As the WHATWG table says.
    Table,
    /// The C1 control of the same value: WHATWG reads "iso-8859-9" and "iso-8859-11" as the Windows
    /// code pages 1254 and 874, which put letters there.
    Identity,
    /// Python's cp125x leave some bytes undefined (an error) where WHATWG maps them to C1 controls.
    Undefined,
}

/// A multi-byte code page. WHATWG's decoders are the Windows supersets (Shift_JIS is cp932, GBK is
/// cp936, EUC-KR is cp949, Big5 is Big5-HKSCS), so every character Python's codec decodes decodes,
/// but a few symbols come out as the Windows code page has them (Shift_JIS 0x8160 is U+FF5E `～`
/// there, U+301C `〜` in Python's shift_jis): those are put right here, one character at a time.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MultiByte {
    encoding: &'static encoding_rs::Encoding,
    layout: Layout,
    /// The bytes of one character and Python's character for them, where WHATWG's differs.
    differs: &'static [(&'static [u8], char)],
    /// Bytes at or above 0x80 that Python's codec reads as one character on their own.
    single: &'static [(u8, char)],
}

/// How a multi-byte code page's bytes group into characters (the lead byte says how many follow).
#[derive(Debug, Clone, Copy)]
enum Layout {
    /// Shift_JIS: 0xA1–0xDF (half-width katakana) alone, 0x81–0x9F and 0xE0–0xFC lead a pair.
    ShiftJis,
    /// EUC-JP: 0x8F leads a triple (JIS X 0212), 0x8E and 0xA1–0xFE a pair.
    EucJp,
    /// GBK: 0x81–0xFE lead a pair, or four bytes when a digit follows (GB18030's extension).
    Gbk,
    /// Big5, EUC-KR: 0x81–0xFE lead a pair.
    Pairs,
}

impl Layout {
    /// The length of the character starting at `bytes[0]` (at or above 0x80).
    fn char_len(self, bytes: &[u8]) -> usize {
        let (lead, next) = (bytes[0], bytes.get(1).copied().unwrap_or(0));
        match self {
            Layout::ShiftJis if matches!(lead, 0x81..=0x9f | 0xe0..=0xfc) => 2,
            Layout::EucJp if lead == 0x8f => 3,
            Layout::EucJp if matches!(lead, 0x8e | 0xa1..=0xfe) => 2,
            Layout::Gbk if matches!(lead, 0x81..=0xfe) && next.is_ascii_digit() => 4,
            Layout::Gbk | Layout::Pairs if matches!(lead, 0x81..=0xfe) => 2,
            _ => 1,
        }
    }
}

const fn single(table: &'static encoding_rs::Encoding, c1: C1) -> Codec {
    Codec::Single(SingleByte { table, c1, undefined: &[] })
}

const fn multi(
    encoding: &'static encoding_rs::Encoding,
    layout: Layout,
    differs: &'static [(&'static [u8], char)],
) -> Codec {
    Codec::Multi(MultiByte { encoding, layout, differs, single: &[] })
}

/// Python's JIS X 0208 (shift_jis, euc_jp) against WHATWG's cp932 table, by row and cell.
const JIS_SJIS: &[(&[u8], char)] = &[
    (b"\x81\x60", '\u{301c}'),
    (b"\x81\x61", '\u{2016}'),
    (b"\x81\x7c", '\u{2212}'),
    (b"\x81\x91", '\u{a2}'),
    (b"\x81\x92", '\u{a3}'),
    (b"\x81\xca", '\u{ac}'),
];
const JIS_EUC: &[(&[u8], char)] = &[
    (b"\xa1\xc1", '\u{301c}'),
    (b"\xa1\xc2", '\u{2016}'),
    (b"\xa1\xdd", '\u{2212}'),
    (b"\xa1\xf1", '\u{a2}'),
    (b"\xa1\xf2", '\u{a3}'),
    (b"\xa2\xcc", '\u{ac}'),
    (b"\x8f\xa2\xb7", '~'),
];
/// Python's gb2312 keeps GB 2312's own middle dot and dash (GBK changed them).
const GB2312: &[(&[u8], char)] = &[(b"\xa1\xa4", '\u{30fb}'), (b"\xa1\xaa", '\u{2015}')];
/// Python's big5hkscs keeps Big5's symbols where WHATWG has the HKSCS-2008 / cp950 ones.
const BIG5HKSCS: &[(&[u8], char)] = &[
    (b"\xa1\x45", '\u{2022}'),
    (b"\xa1\x4e", '\u{ff64}'),
    (b"\xa1\xc2", '\u{203e}'),
    (b"\xa1\xe3", '\u{223c}'),
    (b"\xa1\xf2", '\u{2641}'),
    (b"\xa1\xf3", '\u{2609}'),
    (b"\xa2\x41", '\u{ff0f}'),
    (b"\xa2\x42", '\u{ff3c}'),
    (b"\xa2\x44", '\u{a5}'),
    (b"\xa2\x46", '\u{a2}'),
    (b"\xa2\x47", '\u{a3}'),
];
/// Python's cp932 reads these lone bytes as Microsoft's table has them (private-use characters).
const CP932_SINGLE: &[(u8, char)] =
    &[(0x80, '\u{80}'), (0xa0, '\u{f8f0}'), (0xfd, '\u{f8f1}'), (0xfe, '\u{f8f2}'), (0xff, '\u{f8f3}')];

/// Python's codecs that unitcoder decodes: the name `codecs.lookup` reports, every alias of Python's
/// `encodings.aliases` for it (normalized: lower case, `_` for punctuation), and the decoder.
pub(crate) const CODECS: &[(&str, &[&str], Codec)] = {
    use encoding_rs as e;
    &[
        ("utf-8", &["utf_8", "u8", "utf", "utf8", "utf8_ucs2", "utf8_ucs4", "cp65001"], Codec::Utf8),
        (
            "iso8859-1",
            &[
                "latin_1",
                "8859",
                "cp819",
                "csisolatin1",
                "ibm819",
                "iso8859",
                "iso8859_1",
                "iso_8859_1",
                "iso_8859_1_1987",
                "iso_ir_100",
                "l1",
                "latin",
                "latin1",
            ],
            Codec::Latin1,
        ),
        (
            "ascii",
            &[
                "ascii",
                "646",
                "ansi_x3.4_1968",
                "ansi_x3.4_1986",
                "ansi_x3_4_1968",
                "cp367",
                "csascii",
                "ibm367",
                "iso646_us",
                "iso_646.irv_1991",
                "iso_ir_6",
                "us",
                "us_ascii",
            ],
            Codec::Ascii,
        ),
        (
            "iso8859-2",
            &["iso8859_2", "csisolatin2", "iso_8859_2", "iso_8859_2_1987", "iso_ir_101", "l2", "latin2"],
            single(e::ISO_8859_2, C1::Table),
        ),
        (
            "iso8859-3",
            &["iso8859_3", "csisolatin3", "iso_8859_3", "iso_8859_3_1988", "iso_ir_109", "l3", "latin3"],
            single(e::ISO_8859_3, C1::Table),
        ),
        (
            "iso8859-4",
            &["iso8859_4", "csisolatin4", "iso_8859_4", "iso_8859_4_1988", "iso_ir_110", "l4", "latin4"],
            single(e::ISO_8859_4, C1::Table),
        ),
        (
            "iso8859-5",
            &["iso8859_5", "csisolatincyrillic", "cyrillic", "iso_8859_5", "iso_8859_5_1988", "iso_ir_144"],
            single(e::ISO_8859_5, C1::Table),
        ),
        (
            "iso8859-6",
            &[
                "iso8859_6",
                "arabic",
                "asmo_708",
                "csisolatinarabic",
                "ecma_114",
                "iso_8859_6",
                "iso_8859_6_1987",
                "iso_ir_127",
            ],
            single(e::ISO_8859_6, C1::Table),
        ),
        (
            "iso8859-7",
            &[
                "iso8859_7",
                "csisolatingreek",
                "ecma_118",
                "elot_928",
                "greek",
                "greek8",
                "iso_8859_7",
                "iso_8859_7_1987",
                "iso_ir_126",
            ],
            single(e::ISO_8859_7, C1::Table),
        ),
        (
            "iso8859-8",
            &["iso8859_8", "csisolatinhebrew", "hebrew", "iso_8859_8", "iso_8859_8_1988", "iso_ir_138"],
            single(e::ISO_8859_8, C1::Table),
        ),
        (
            "iso8859-9",
            &["iso8859_9", "csisolatin5", "iso_8859_9", "iso_8859_9_1989", "iso_ir_148", "l5", "latin5"],
            single(e::WINDOWS_1254, C1::Identity),
        ),
        (
            "iso8859-10",
            &["iso8859_10", "csisolatin6", "iso_8859_10", "iso_8859_10_1992", "iso_ir_157", "l6", "latin6"],
            single(e::ISO_8859_10, C1::Table),
        ),
        (
            "iso8859-11",
            &["iso8859_11", "iso_8859_11", "iso_8859_11_2001", "thai"],
            single(e::WINDOWS_874, C1::Identity),
        ),
        ("iso8859-13", &["iso8859_13", "iso_8859_13", "l7", "latin7"], single(e::ISO_8859_13, C1::Table)),
        (
            "iso8859-14",
            &["iso8859_14", "iso_8859_14", "iso_8859_14_1998", "iso_celtic", "iso_ir_199", "l8", "latin8"],
            single(e::ISO_8859_14, C1::Table),
        ),
        ("iso8859-15", &["iso8859_15", "iso_8859_15", "l9", "latin9"], single(e::ISO_8859_15, C1::Table)),
        (
            "iso8859-16",
            &["iso8859_16", "iso_8859_16", "iso_8859_16_2001", "iso_ir_226", "l10", "latin10"],
            single(e::ISO_8859_16, C1::Table),
        ),
        ("cp1250", &["cp1250", "1250", "windows_1250"], single(e::WINDOWS_1250, C1::Undefined)),
        ("cp1251", &["cp1251", "1251", "windows_1251"], single(e::WINDOWS_1251, C1::Undefined)),
        ("cp1252", &["cp1252", "1252", "windows_1252"], single(e::WINDOWS_1252, C1::Undefined)),
        ("cp1253", &["cp1253", "1253", "windows_1253"], single(e::WINDOWS_1253, C1::Undefined)),
        ("cp1254", &["cp1254", "1254", "windows_1254"], single(e::WINDOWS_1254, C1::Undefined)),
        (
            "cp1255",
            &["cp1255", "1255", "windows_1255"],
            Codec::Single(SingleByte { table: e::WINDOWS_1255, c1: C1::Undefined, undefined: &[0xca] }),
        ),
        ("cp1256", &["cp1256", "1256", "windows_1256"], single(e::WINDOWS_1256, C1::Undefined)),
        ("cp1257", &["cp1257", "1257", "windows_1257"], single(e::WINDOWS_1257, C1::Undefined)),
        ("cp1258", &["cp1258", "1258", "windows_1258"], single(e::WINDOWS_1258, C1::Undefined)),
        ("cp874", &["cp874"], single(e::WINDOWS_874, C1::Undefined)),
        ("koi8-r", &["koi8_r", "cskoi8r"], single(e::KOI8_R, C1::Table)),
        ("cp866", &["cp866", "866", "csibm866", "ibm866"], single(e::IBM866, C1::Table)),
        ("mac-roman", &["mac_roman", "macintosh", "macroman"], single(e::MACINTOSH, C1::Table)),
        ("gbk", &["gbk", "936", "cp936", "ms936"], multi(e::GBK, Layout::Gbk, &[])),
        (
            "gb2312",
            &[
                "gb2312",
                "chinese",
                "csiso58gb231280",
                "euc_cn",
                "euccn",
                "eucgb2312_cn",
                "gb2312_1980",
                "gb2312_80",
                "iso_ir_58",
            ],
            multi(e::GBK, Layout::Gbk, GB2312),
        ),
        ("big5hkscs", &["big5hkscs", "big5_hkscs", "hkscs"], multi(e::BIG5, Layout::Pairs, BIG5HKSCS)),
        ("euc_jp", &["euc_jp", "eucjp", "u_jis", "ujis"], multi(e::EUC_JP, Layout::EucJp, JIS_EUC)),
        (
            "shift_jis",
            &["shift_jis", "csshiftjis", "s_jis", "shiftjis", "sjis"],
            multi(e::SHIFT_JIS, Layout::ShiftJis, JIS_SJIS),
        ),
        (
            "cp932",
            &["cp932", "932", "ms932", "ms_kanji", "mskanji"],
            Codec::Multi(MultiByte {
                encoding: e::SHIFT_JIS,
                layout: Layout::ShiftJis,
                differs: &[],
                single: CP932_SINGLE,
            }),
        ),
        (
            "euc_kr",
            &["euc_kr", "euckr", "korean", "ks_c_5601", "ks_c_5601_1987", "ks_x_1001", "ksc5601", "ksx1001"],
            multi(e::EUC_KR, Layout::Pairs, &[]),
        ),
        ("cp949", &["cp949", "949", "ms949", "uhc"], multi(e::EUC_KR, Layout::Pairs, &[])),
    ]
};

/// The codec Python uses for a declared name: `codecs.lookup`'s name for it, and how to decode it;
/// `None` for a name Python does not know or a codec unitcoder does not decode.
pub(crate) fn lookup(declared: &str) -> Option<(&'static str, Codec)> {
    // The tokenizer's get_normal_name: its two fast paths, tried on the first 12 characters.
    let head: String = declared.chars().take(12).map(|c| if c == '_' { '-' } else { c.to_ascii_lowercase() }).collect();
    let fast = |names: &[&str]| names.iter().any(|n| head == *n || head.starts_with(&format!("{n}-")));
    let name = if fast(&["utf-8"]) {
        "utf_8".to_string()
    } else if fast(&["latin-1", "iso-8859-1", "iso-latin-1"]) {
        "latin_1".to_string()
    } else {
        normalize_encoding(&declared.to_ascii_lowercase())
    };
    let dotless = name.replace('.', "_");
    CODECS
        .iter()
        .find(|(_, aliases, _)| aliases.iter().any(|a| *a == name || *a == dotless))
        .map(|&(canonical, _, codec)| (canonical, codec))
}

/// `encodings.normalize_encoding`: every run of characters other than ASCII letters, digits and
/// `.` becomes one `_`, none at either end.
fn normalize_encoding(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut punct = false;
    for c in name.chars() {
        if c.is_ascii_alphanumeric() || c == '.' {
            if punct && !out.is_empty() {
                out.push('_');
            }
            out.push(c);
            punct = false;
        } else {
            punct = true;
        }
    }
    out
}

/// Decodes `body` with `codec`; the error is the offset of the first byte that does not decode.
pub(crate) fn decode(codec: Codec, body: &[u8]) -> Result<String, usize> {
    match codec {
        Codec::Utf8 => std::str::from_utf8(body).map(str::to_string).map_err(|e| e.valid_up_to()),
        Codec::Latin1 => Ok(body.iter().map(|&b| char::from(b)).collect()),
        Codec::Ascii => match body.iter().position(|b| !b.is_ascii()) {
            Some(i) => Err(i),
            None => Ok(body.iter().map(|&b| char::from(b)).collect()),
        },
        Codec::Single(page) => {
            let high: Vec<Option<char>> = (0x80..=0xffu8).map(|b| page.decode_high(b)).collect();
            body.iter()
                .enumerate()
                .map(|(i, &b)| if b < 0x80 { Some(char::from(b)) } else { high[usize::from(b - 0x80)] }.ok_or(i))
                .collect()
        }
        Codec::Multi(page) => page.decode(body),
    }
}

impl SingleByte {
    /// What one byte at or above 0x80 is, as Python's codec has it.
    fn decode_high(&self, b: u8) -> Option<char> {
        if self.undefined.contains(&b) {
            return None;
        }
        if self.c1 == C1::Identity && (0x80..0xa0).contains(&b) {
            return Some(char::from(b));
        }
        let byte = [b];
        let decoded = self.table.decode_without_bom_handling_and_without_replacement(&byte)?;
        let c = decoded.chars().next()?;
        (self.c1 != C1::Undefined || !('\u{80}'..'\u{a0}').contains(&c)).then_some(c)
    }
}

impl MultiByte {
    /// Decodes one character at a time (so that Python's differences can be put in by their bytes),
    /// stopping at the first that does not decode.
    fn decode(&self, body: &[u8]) -> Result<String, usize> {
        let mut out = String::with_capacity(body.len() + body.len() / 2);
        let mut i = 0;
        while i < body.len() {
            let b = body[i];
            if b < 0x80 {
                out.push(char::from(b));
                i += 1;
                continue;
            }
            if let Some(&(_, c)) = self.single.iter().find(|(s, _)| *s == b) {
                out.push(c);
                i += 1;
                continue;
            }
            let end = (i + self.layout.char_len(&body[i..])).min(body.len());
            let bytes = &body[i..end];
            match self.differs.iter().find(|(s, _)| *s == bytes) {
                Some(&(_, c)) => out.push(c),
                None => {
                    out.push_str(&self.encoding.decode_without_bom_handling_and_without_replacement(bytes).ok_or(i)?)
                }
            }
            i = end;
        }
        Ok(out)
    }
}
