//! Python's `json.dumps`, for the `tojson` filter of chat templates. HF transformers replaces Jinja's
//! `tojson` with `json.dumps(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False)`, and
//! tool-calling templates (Llama 3.x, Qwen2.5) print tool schemas and call arguments with it, so the
//! prompt text a model was trained on depends on Python's exact layout: `", "` and `": "` separators
//! (`","` between items once `indent` is set), no HTML escaping, Python's float spelling (`1e-05`,
//! `1e+16`) and maps in insertion order.

use minijinja::value::ValueKind;
use minijinja::{Error, ErrorKind, Value};
use std::fmt::Write;

/// The options of `json.dumps` that HF's `tojson` exposes.
#[derive(Debug, Clone, Default)]
pub struct DumpOptions {
    /// Escape every non-ASCII character as `\uXXXX` (Python's `ensure_ascii`).
    pub ensure_ascii: bool,
    /// Pretty-print with this many spaces per level; `None` writes one line.
    pub indent: Option<usize>,
    /// (item separator, key separator); `None` gives Python's defaults for the chosen `indent`.
    pub separators: Option<(String, String)>,
    /// Order map keys (Python's `sort_keys`); otherwise maps keep their insertion order.
    pub sort_keys: bool,
}

/// `value` as `json.dumps(value, **options)` writes it.
pub fn dumps(value: &Value, options: &DumpOptions) -> Result<String, Error> {
    let (item, key) = match &options.separators {
        Some((i, k)) => (i.clone(), k.clone()),
        None if options.indent.is_some() => (",".to_string(), ": ".to_string()),
        None => (", ".to_string(), ": ".to_string()),
    };
    let mut w = Writer { out: String::new(), opts: options, item, key };
    w.value(value, 0)?;
    Ok(w.out)
}

struct Writer<'a> {
    out: String,
    opts: &'a DumpOptions,
    item: String,
    key: String,
}

impl Writer<'_> {
    fn value(&mut self, v: &Value, depth: usize) -> Result<(), Error> {
        match v.kind() {
            ValueKind::Undefined | ValueKind::None => self.out.push_str("null"),
            ValueKind::Bool => self.out.push_str(if v.is_true() { "true" } else { "false" }),
            ValueKind::Number if v.is_integer() => write!(self.out, "{v}").map_err(fmt_err)?,
            ValueKind::Number => {
                let f = f64::try_from(v.clone())?;
                self.out.push_str(&py_float(f));
            }
            ValueKind::String => self.string(v.as_str().unwrap_or_default()),
            ValueKind::Map => {
                let mut keys: Vec<Value> = v.try_iter()?.collect();
                if self.opts.sort_keys {
                    keys.sort();
                }
                let mut entries = Vec::with_capacity(keys.len());
                for k in keys {
                    let item = v.get_item(&k)?;
                    entries.push((k, item));
                }
                self.container('{', '}', depth, entries.len(), |w, i, d| {
                    let (k, item) = &entries[i];
                    match k.as_str() {
                        Some(s) => w.string(s),
                        // Python turns int, float, bool and None keys into strings the same way.
                        None => w.string(&key_text(k)),
                    }
                    w.out.push_str(&w.key.clone());
                    w.value(item, d)
                })?;
            }
            ValueKind::Seq | ValueKind::Iterable => {
                let items: Vec<Value> = v.try_iter()?.collect();
                self.container('[', ']', depth, items.len(), |w, i, d| w.value(&items[i], d))?;
            }
            other => {
                return Err(Error::new(
                    ErrorKind::InvalidOperation,
                    format!("tojson: a value of kind {other} is not JSON serializable"),
                ))
            }
        }
        Ok(())
    }

    /// Writes `len` items between `open` and `close`, with Python's newlines and indentation.
    fn container(
        &mut self,
        open: char,
        close: char,
        depth: usize,
        len: usize,
        mut item: impl FnMut(&mut Self, usize, usize) -> Result<(), Error>,
    ) -> Result<(), Error> {
        self.out.push(open);
        if len == 0 {
            self.out.push(close);
            return Ok(());
        }
        let sep = self.item.clone();
        for i in 0..len {
            if i > 0 {
                self.out.push_str(&sep);
            }
            self.newline(depth + 1);
            item(self, i, depth + 1)?;
        }
        self.newline(depth);
        self.out.push(close);
        Ok(())
    }

    fn newline(&mut self, depth: usize) {
        if let Some(n) = self.opts.indent {
            self.out.push('\n');
            self.out.extend(std::iter::repeat_n(' ', n * depth));
        }
    }

    fn string(&mut self, s: &str) {
        self.out.push('"');
        for c in s.chars() {
            match c {
                '"' => self.out.push_str("\\\""),
                '\\' => self.out.push_str("\\\\"),
                '\n' => self.out.push_str("\\n"),
                '\r' => self.out.push_str("\\r"),
                '\t' => self.out.push_str("\\t"),
                '\u{8}' => self.out.push_str("\\b"),
                '\u{c}' => self.out.push_str("\\f"),
                c if (c as u32) < 0x20 => {
                    let _ = write!(self.out, "\\u{:04x}", c as u32);
                }
                c if self.opts.ensure_ascii && !c.is_ascii() => {
                    let mut units = [0u16; 2];
                    for u in c.encode_utf16(&mut units) {
                        let _ = write!(self.out, "\\u{u:04x}");
                    }
                }
                c => self.out.push(c),
            }
        }
        self.out.push('"');
    }
}

fn fmt_err(e: std::fmt::Error) -> Error {
    Error::new(ErrorKind::InvalidOperation, e.to_string())
}

/// How Python's `json.dumps` writes a non-string map key.
fn key_text(k: &Value) -> String {
    match k.kind() {
        ValueKind::None | ValueKind::Undefined => "null".to_string(),
        ValueKind::Bool => (if k.is_true() { "true" } else { "false" }).to_string(),
        ValueKind::Number if !k.is_integer() => py_float(f64::try_from(k.clone()).unwrap_or(f64::NAN)),
        _ => k.to_string(),
    }
}

/// Python's `repr(float)`: the shortest digits that round-trip, positional for exponents -5 < e < 16
/// (always with a `.0` or a fraction), else `d.ddde±XX`; `NaN`, `Infinity`, `-Infinity` as `json.dumps`.
pub fn py_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".to_string();
    }
    if f.is_infinite() {
        return if f > 0.0 { "Infinity" } else { "-Infinity" }.to_string();
    }
    // Rust's `{:e}` gives the same shortest round-trip digits as Python's repr, as `d.ddde-5`.
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-5 < exp) && (exp < 16) {
        let s = format!("{f}");
        if s.contains('.') {
            s
        } else {
            format!("{s}.0")
        }
    } else {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(json: &str) -> Value {
        Value::from_serialize(serde_json::from_str::<serde_json::Value>(json).unwrap())
    }

    #[test]
    fn floats_are_spelled_like_python_repr() {
        let cases = [
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1.0, "1.0"),
            (21.5, "21.5"),
            (0.1, "0.1"),
            (1e-4, "0.0001"),
            (1e-5, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (123456789012345.0, "123456789012345.0"),
            (1e16, "1e+16"),
            (1.234e100, "1.234e+100"),
            (f64::INFINITY, "Infinity"),
        ];
        for (f, want) in cases {
            assert_eq!(py_float(f), want, "{f}");
        }
    }

    #[test]
    fn layout_matches_json_dumps_defaults_and_indent() {
        let x = v(r#"{"a": [1, 2.5, true, null], "b": {}, "c": [], "d": "x<'&>\"\n\u0001ü"}"#);
        let flat = dumps(&x, &DumpOptions::default()).unwrap();
        assert_eq!(flat, r#"{"a": [1, 2.5, true, null], "b": {}, "c": [], "d": "x<'&>\"\n\u0001ü"}"#);
        let pretty = dumps(&x, &DumpOptions { indent: Some(2), ..Default::default() }).unwrap();
        let want = "{\n  \"a\": [\n    1,\n    2.5,\n    true,\n    null\n  ],\n  \"b\": {},\n  \"c\": [],\n  \
                    \"d\": \"x<'&>\\\"\\n\\u0001ü\"\n}";
        assert_eq!(pretty, want);
        let ascii = dumps(&Value::from("ü😀"), &DumpOptions { ensure_ascii: true, ..Default::default() }).unwrap();
        assert_eq!(ascii, r#""\u00fc\ud83d\ude00""#);
        let compact = DumpOptions { separators: Some((",".into(), ":".into())), ..Default::default() };
        assert_eq!(dumps(&v(r#"{"k": [1, 2]}"#), &compact).unwrap(), r#"{"k":[1,2]}"#);
    }

    #[test]
    fn maps_keep_insertion_order_unless_sorted() {
        let env = minijinja::Environment::new();
        let m = env.compile_expression("{'z': 1, 'a': 2}").unwrap().eval(()).unwrap();
        assert_eq!(dumps(&m, &DumpOptions::default()).unwrap(), r#"{"z": 1, "a": 2}"#);
        let sorted = DumpOptions { sort_keys: true, ..Default::default() };
        assert_eq!(dumps(&m, &sorted).unwrap(), r#"{"a": 2, "z": 1}"#);
    }
}
