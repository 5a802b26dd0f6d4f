//! The parse error of one line of a JSON Lines file, for messages that name the file's line
//! themselves: serde_json's own "at line 1 column N" would name a line within the line.

/// `expected value (column 29)`: serde_json's message without its position, and the column.
pub fn problem(e: &serde_json::Error) -> String {
    format!("{} (column {})", message(e), e.column())
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
