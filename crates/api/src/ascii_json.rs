//! Compact, single-line, ASCII-only JSON: non-ASCII characters are written as `\uXXXX`
//! escapes, because mesoshttp cuts RecordIO records by decoded character count.

use serde::Serialize;
use serde_json::ser::Formatter;
use std::io;

/// serde_json's compact formatter (the trait defaults), escaping every non-ASCII character.
struct AsciiFormatter;

impl Formatter for AsciiFormatter {
    fn write_string_fragment<W: ?Sized + io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        if fragment.is_ascii() {
            return writer.write_all(fragment.as_bytes());
        }
        let mut buf = [0u16; 2];
        for ch in fragment.chars() {
            if ch.is_ascii() {
                writer.write_all(&[ch as u8])?;
            } else {
                for unit in ch.encode_utf16(&mut buf) {
                    write!(writer, "\\u{unit:04x}")?;
                }
            }
        }
        Ok(())
    }
}

/// Serialises `value` as compact ASCII JSON bytes.
pub fn to_ascii_json_bytes<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, AsciiFormatter);
    // Our wire types only hold strings, numbers, bools, maps with string keys and
    // sequences, which serde_json always serialises.
    if value.serialize(&mut ser).is_err() {
        out.clear();
        out.extend_from_slice(b"null");
    }
    out
}

/// Serialises `value` as a compact ASCII JSON string.
pub fn to_ascii_json<T: Serialize + ?Sized>(value: &T) -> String {
    // The formatter only ever writes ASCII, so the bytes are valid UTF-8.
    String::from_utf8(to_ascii_json_bytes(value)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(value: serde_json::Value, expected: &str) {
        assert_eq!(to_ascii_json(&value), expected);
    }

    #[test]
    fn escapes_non_ascii_and_stays_on_one_line() {
        check(json!({"a": "x"}), r#"{"a":"x"}"#);
        check(json!({"a": "é"}), r#"{"a":"\u00e9"}"#);
        check(json!({"a": "😀"}), r#"{"a":"\ud83d\ude00"}"#);
        check(json!({"a": "line\nbreak"}), r#"{"a":"line\nbreak"}"#);
        check(json!({"n": 15.0}), r#"{"n":15.0}"#);
    }

    #[test]
    fn escaped_output_round_trips() {
        let v = json!({"k": "naïve ☃ 😀 \u{1}"});
        let s = to_ascii_json(&v);
        assert!(s.is_ascii());
        assert_eq!(serde_json::from_str::<serde_json::Value>(&s).unwrap(), v);
    }
}
