//! The lines of a build's response: newline-delimited JSON objects.
//!
//! A build answers `200 application/x-ndjson` as soon as the context is
//! received, so the status cannot carry the outcome. Every line but the last
//! is `{"log":"..."}`; the last is exactly one of
//! `{"digest":"sha256:...","images":[...]}` or `{"error":"..."}`. A client
//! must read to the end and treat the last line as the result; a response that
//! ends without a final line (the connection dropped) is a failure too.
//!
//! Each line is one JSON object followed by `\n`; newlines inside a message
//! are escaped by JSON, so splitting on `\n` is always safe.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

/// One line of a build's response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Line {
    /// Progress: the engine's build output, push progress, queueing.
    Log { log: String },
    /// Final, success: the pushed manifest's digest and every pushed
    /// repository pinned by it (`<registry>/<path>@sha256:...`).
    Done { digest: String, images: Vec<String> },
    /// Final, failure: what went wrong (the engine's message for a failed
    /// build step).
    Error { error: String },
}

impl Line {
    /// A `{"log"}` line.
    pub fn log(text: impl Into<String>) -> Line {
        Line::Log { log: text.into() }
    }

    /// An `{"error"}` line.
    pub fn error(text: impl Into<String>) -> Line {
        Line::Error { error: text.into() }
    }

    /// Whether this line ends a response.
    pub fn is_final(&self) -> bool {
        !matches!(self, Line::Log { .. })
    }

    /// The line as sent: one JSON object and `\n`.
    pub fn encode(&self) -> Bytes {
        let mut v = serde_json::to_vec(self).expect("a line always serializes");
        v.push(b'\n');
        Bytes::from(v)
    }

    /// Parses one received line (without or with its `\n`).
    pub fn decode(line: &[u8]) -> Result<Line, serde_json::Error> {
        serde_json::from_slice(line)
    }
}

/// The log lines in a chunk of engine output: split on newlines (`\r\n`
/// too), blank lines dropped.
pub fn log_lines(text: &str) -> impl Iterator<Item = Line> + '_ {
    text.lines()
        .map(|l| l.trim_end_matches('\r'))
        .filter(|l| !l.trim().is_empty())
        .map(Line::log)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_encodes_as_one_object_per_line() {
        assert_eq!(Line::log("Step 1/2").encode(), "{\"log\":\"Step 1/2\"}\n");
        assert_eq!(
            Line::Done {
                digest: "sha256:ab".into(),
                images: vec!["r.x/f/a@sha256:ab".into()],
            }
            .encode(),
            "{\"digest\":\"sha256:ab\",\"images\":[\"r.x/f/a@sha256:ab\"]}\n"
        );
        assert_eq!(
            Line::error("build failed").encode(),
            "{\"error\":\"build failed\"}\n"
        );
    }

    #[test]
    fn newlines_inside_a_message_stay_inside_the_line() {
        let l = Line::error("one\ntwo\r\nthree");
        let bytes = l.encode();
        assert_eq!(bytes.iter().filter(|b| **b == b'\n').count(), 1);
        assert_eq!(bytes.last(), Some(&b'\n'));
        assert_eq!(Line::decode(&bytes).unwrap(), l);
    }

    #[test]
    fn lines_decode_back_to_their_kind() {
        for l in [
            Line::log("x"),
            Line::Done {
                digest: "sha256:00".into(),
                images: vec![],
            },
            Line::error("e"),
        ] {
            assert_eq!(Line::decode(&l.encode()).unwrap(), l);
        }
        assert!(!Line::log("x").is_final());
        assert!(Line::error("x").is_final());
        assert!(Line::decode(b"{\"other\":1}").is_err());
    }

    #[test]
    fn engine_output_is_split_into_non_blank_lines() {
        let lines: Vec<Line> = log_lines("Step 1/2 : FROM x\r\n ---> abc\n\n  \nhello\n").collect();
        assert_eq!(
            lines,
            vec![
                Line::log("Step 1/2 : FROM x"),
                Line::log(" ---> abc"),
                Line::log("hello"),
            ]
        );
    }
}
