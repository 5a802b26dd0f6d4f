//! The parse error of one line of a JSON Lines file, for messages that name the file's line
//! themselves: serde_json's own "at line 1 column N" would name a line within the line.

/// `invalid JSON: expected value (column 29)`: serde_json's message without its position, and the column.
pub fn problem(e: &serde_json::Error) -> String {
    // serde's syntax messages ("expected ident") do not say the text is not JSON at all.
    let what = match e.classify() {
        serde_json::error::Category::Syntax | serde_json::error::Category::Eof => "invalid JSON: ",
        _ => "",
    };
    format!("{what}{} (column {})", message(e), e.column())
}

/// serde_json's message without its position: for a value parsed on its own (a field of a record),
/// whose "line 1 column N" counts within the value.
pub fn message(e: &serde_json::Error) -> String {
    let text = e.to_string();
    text.rfind(" at line ").map_or(text.as_str(), |i| &text[..i]).to_string()
}

/// JSON's name for the kind of `v` (`a string`, `null`...), for messages about a value of the
/// wrong type.
pub fn kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// `value`, a JSON object, read as `T`. A value of the wrong type is named by its field: the first
/// field that fails to read on its own (serde's own message names only the type it expected).
pub fn from_object<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> Result<T, String> {
    let whole = match serde_json::from_value::<T>(value.clone()) {
        Ok(t) => return Ok(t),
        Err(e) => message(&e),
    };
    if let serde_json::Value::Object(fields) = value {
        for (k, v) in fields {
            let alone = serde_json::Value::Object([(k.clone(), v)].into_iter().collect());
            if let Err(one) = serde_json::from_value::<T>(alone) {
                let one = message(&one);
                // Alone, a field can only fail for itself: not for being unknown or for the others' absence.
                if !one.starts_with("unknown field") && !one.starts_with("missing field") {
                    return Err(format!("field `{k}`: {one}"));
                }
            }
        }
    }
    Err(whole)
}

#[cfg(test)]
mod tests {
    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Line {
        id: String,
        n: Option<u32>,
    }

    #[test]
    fn a_wrong_value_is_named_by_its_field() {
        let read = |v: serde_json::Value| super::from_object::<Line>(v).map(|_| ()).unwrap_err();
        assert_eq!(
            read(serde_json::json!({"id": "a", "n": "x"})),
            "field `n`: invalid type: string \"x\", expected u32"
        );
        assert_eq!(read(serde_json::json!({"n": 1})), "missing field `id`");
        assert!(super::from_object::<Line>(serde_json::json!({"id": "a", "other": 1})).is_ok());
    }
}
