//! The one error of event parsing.

/// Why an event was refused: the field at fault, as a JSON path (`run.runId`,
/// `inputs[3].namespace`, `body` for the document itself), and what is wrong with it.
///
/// Every refusal is the sender's fault (HTTP 400 / gRPC `INVALID_ARGUMENT`); the message is
/// lowercase, without trailing punctuation, and quotes at most a short prefix of the bad value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct EventError {
    /// JSON path of the field at fault, so a client can fix the event without reading logs.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl EventError {
    pub(crate) fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        EventError { field: field.into(), message: message.into() }
    }
}

/// At most this many characters of a refused value are quoted back in an error, so a hostile
/// body cannot make its error as large as itself.
const QUOTE_CHARS: usize = 64;

/// `value` in double quotes, cut to [`QUOTE_CHARS`] characters (`…` marks a cut).
pub(crate) fn quote(value: &str) -> String {
    let mut chars = value.chars();
    let head: String = chars.by_ref().take(QUOTE_CHARS).collect();
    let more = if chars.next().is_some() { "…" } else { "" };
    format!("{head:?}{more}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_field_then_message() {
        assert_eq!(EventError::new("run.runId", "missing").to_string(), "run.runId: missing");
    }

    #[test]
    fn quotes_are_cut() {
        assert_eq!(quote("abc"), "\"abc\"");
        let long = "x".repeat(1000);
        assert_eq!(quote(&long), format!("\"{}\"…", "x".repeat(QUOTE_CHARS)));
    }
}
