//! Human text shared by every crate that writes for people (errors, events, logs, tables), so a
//! count, a missing value, a list and an echoed request string read the same everywhere.
//!
//! | helper          | writes                                   | instead of                    |
//! |-----------------|------------------------------------------|-------------------------------|
//! | [`count`]       | `1 missed slot`, `2 missed slots`        | `1 missed slots`              |
//! | [`or_none`]     | `seq-0`, `none`                          | `Some("seq-0")`, `None`       |
//! | [`list`]        | `seq-0, seq-1`, `none`                   | `["seq-0", "seq-1"]`, `{}`    |
//! | [`Echo`]        | `"devn…" (921600 bytes)`                 | a 900 KB name repeated whole  |

use std::fmt::{self, Display, Formatter};

/// `n` and a regular English noun, pluralised with `s` unless `n` is 1: `count(1, "missed slot")`
/// is `1 missed slot`, `count(0, "block")` is `0 blocks`.
pub fn count(n: impl Into<u64>, noun: &str) -> String {
    let n = n.into();
    if n == 1 { format!("1 {noun}") } else { format!("{n} {noun}s") }
}

/// The value, or `none` when there is none.
pub fn or_none<T: Display>(value: Option<T>) -> String {
    value.map_or_else(|| "none".to_owned(), |value| value.to_string())
}

/// The items joined with `, `, or `none` for an empty list.
pub fn list<T: Display>(items: impl IntoIterator<Item = T>) -> String {
    let joined = items.into_iter().map(|item| item.to_string()).collect::<Vec<_>>().join(", ");
    if joined.is_empty() { "none".to_owned() } else { joined }
}

/// How many characters of a user-supplied string an error repeats.
pub const ECHO_MAX_CHARS: usize = 32;

/// A string from a request, as an error repeats it: quoted, with control characters escaped (a
/// name cannot forge a log line), and cut to [`ECHO_MAX_CHARS`] characters plus its length when
/// longer, so a huge request does not come back as a huge error or log line.
#[derive(Debug, Clone, Copy)]
pub struct Echo<'a>(pub &'a str);

impl Display for Echo<'_> {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        let text = self.0;
        match text.char_indices().nth(ECHO_MAX_CHARS) {
            None => write!(f, "\"{}\"", text.escape_debug()),
            Some((cut, _)) => write!(f, "\"{}…\" ({} bytes)", text[..cut].escape_debug(), text.len()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{ECHO_MAX_CHARS, Echo, count, list, or_none};

    #[test]
    fn a_count_of_one_is_singular_and_every_other_count_plural() {
        assert_eq!(count(0u64, "missed slot"), "0 missed slots");
        assert_eq!(count(1u64, "missed slot"), "1 missed slot");
        assert_eq!(count(2u32, "missed slot"), "2 missed slots");
    }

    #[test]
    fn a_missing_value_and_an_empty_list_read_none() {
        assert_eq!(or_none(Some("seq-0")), "seq-0");
        assert_eq!(or_none(None::<u64>), "none");
        assert_eq!(list(["seq-0", "seq-1"]), "seq-0, seq-1");
        assert_eq!(list(Vec::<String>::new()), "none");
    }

    #[test]
    fn a_short_string_is_echoed_whole_and_a_long_one_as_a_prefix_and_its_length() {
        assert_eq!(Echo("devnet").to_string(), "\"devnet\"");
        assert_eq!(Echo("a\nb").to_string(), "\"a\\nb\"");
        let huge = "x".repeat(900 * 1024);
        let echoed = Echo(&huge).to_string();
        assert_eq!(echoed, format!("\"{}…\" (921600 bytes)", "x".repeat(ECHO_MAX_CHARS)));
        // Cut on a character boundary, never inside a multi-byte character.
        let wide = "é".repeat(100);
        assert_eq!(Echo(&wide).to_string(), format!("\"{}…\" (200 bytes)", "é".repeat(ECHO_MAX_CHARS)));
    }
}
