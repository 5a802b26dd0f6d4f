//! The parse error of one line of a JSON Lines file, for messages that name the file's line
//! themselves: serde_json's own "at line 1 column N" would name a line within the line.

/// `expected value (column 29)`: serde_json's message without its position, and the column.
pub fn problem(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let message = text.rfind(" at line ").map_or(text.as_str(), |i| &text[..i]);
    format!("{message} (column {})", e.column())
}
