//! Parsers of what the iris binaries print for people and scripts: the
//! client's acknowledgement line and the listener's summary line. The one
//! copy that the tests, the demo and the benchmarks share.

use std::collections::BTreeMap;

/// Parses `sent N flowers to ADDR; M acknowledged` into `(N, M)`.
pub fn parse_acknowledgement(line: &str) -> Option<(u64, u64)> {
    let rest = line.trim().strip_prefix("sent ")?;
    let (sent, rest) = rest.split_once(' ')?;
    let (_, acked) = rest.rsplit_once("; ")?;
    let acked = acked.strip_suffix(" acknowledged")?;
    Some((sent.parse().ok()?, acked.trim().parse().ok()?))
}

/// The listener's `summary: connections=C rejected=R flowers=F setosa=A
/// versicolor=B virginica=D` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    /// The line from `summary:` on.
    pub line: String,
    /// Its `key=value` fields.
    pub fields: BTreeMap<String, u64>,
}

impl Summary {
    /// Parses the part of `line` from `summary:` on, if it has one.
    pub fn parse(line: &str) -> Option<Summary> {
        let at = line.find("summary:")?;
        let line = line[at..].trim_end().to_owned();
        let fields = line["summary:".len()..]
            .split_whitespace()
            .filter_map(|field| {
                let (key, value) = field.split_once('=')?;
                Some((
                    key.to_owned(),
                    value.trim_end_matches([',', ';']).parse().ok()?,
                ))
            })
            .collect();
        Some(Summary { line, fields })
    }

    /// The value of `key`, if the line has it.
    pub fn value(&self, key: &str) -> Option<u64> {
        self.fields.get(key).copied()
    }

    /// The value of `key`; panics if the line has none.
    pub fn get(&self, key: &str) -> u64 {
        *self
            .fields
            .get(key)
            .unwrap_or_else(|| panic!("no {key}= in {:?}", self.line))
    }
}

/// The `M` of the first `sent N flowers to ADDR; M acknowledged` line in a
/// client's stdout.
pub fn acknowledged(stdout: &str) -> Option<u64> {
    stdout
        .lines()
        .find_map(parse_acknowledgement)
        .map(|(_, acked)| acked)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_acknowledgements() {
        assert_eq!(
            parse_acknowledgement("sent 1000 flowers to 127.0.0.1:4567; 999 acknowledged"),
            Some((1000, 999))
        );
        assert_eq!(
            parse_acknowledgement("sent 1 flowers to /tmp/a; b/iris.sock; 1 acknowledged"),
            Some((1, 1))
        );
        assert_eq!(parse_acknowledgement("Area: 1.0"), None);
    }

    #[test]
    fn parses_summaries() {
        let summary = Summary::parse(
            "2026-11-25T17:00:00Z  INFO summary: connections=3 rejected=1 flowers=150 setosa=50 versicolor=50 virginica=50",
        )
        .expect("a summary");
        assert_eq!(summary.get("connections"), 3);
        assert_eq!(summary.get("rejected"), 1);
        assert_eq!(summary.get("flowers"), 150);
        assert_eq!(summary.get("virginica"), 50);
        assert!(Summary::parse("listening on 127.0.0.1:1").is_none());
    }

    #[test]
    fn finds_the_acknowledged_count_in_a_clients_stdout() {
        assert_eq!(
            acknowledged("sent 5 flowers to /tmp/x; 3 acknowledged\n"),
            Some(3)
        );
        assert_eq!(acknowledged("nothing"), None);
        let summary = Summary::parse("INFO summary: flowers=3").expect("a summary");
        assert_eq!(summary.value("flowers"), Some(3));
        assert_eq!(summary.value("rejected"), None);
    }
}
