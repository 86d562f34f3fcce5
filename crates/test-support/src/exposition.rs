//! The Prometheus text format as a scrape returns it, parsed: samples with their labels, and each
//! family's `# TYPE` and `# HELP`.

use std::collections::{BTreeMap, BTreeSet};

/// True for a character of a metric or label name.
pub fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

/// The labels and value of one sample.
pub type Sample = (BTreeMap<String, String>, f64);

/// One scrape in the Prometheus text format.
#[derive(Debug, Default)]
pub struct Exposition {
    /// The scrape as received.
    pub text: String,
    /// Series name → samples (labels, value).
    pub samples: BTreeMap<String, Vec<Sample>>,
    /// Family name → `# TYPE`.
    pub types: BTreeMap<String, String>,
    /// Family name → `# HELP`.
    pub help: BTreeMap<String, String>,
}

impl Exposition {
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut exposition = Self { text: text.to_owned(), ..Self::default() };
        for line in text.lines() {
            exposition.add_line(line)?;
        }
        Ok(exposition)
    }

    /// Adds one line of the text format.
    pub fn add_line(&mut self, line: &str) -> Result<(), String> {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (family, help) = rest.split_once(' ').unwrap_or((rest, ""));
            self.help.insert(family.to_owned(), help.to_owned());
            return Ok(());
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (family, kind) = rest.split_once(' ').ok_or_else(|| format!("bad TYPE line {line:?}"))?;
            self.types.insert(family.to_owned(), kind.trim().to_owned());
            return Ok(());
        }
        if line.is_empty() || line.starts_with('#') {
            return Ok(());
        }
        let name: String = line.chars().take_while(|c| is_ident_char(*c)).collect();
        let mut rest = &line[name.len()..];
        let mut labels = BTreeMap::new();
        if let Some(inner) = rest.strip_prefix('{') {
            let mut chars = inner.char_indices().peekable();
            let end = loop {
                while chars.next_if(|(_, c)| *c == ',' || c.is_whitespace()).is_some() {}
                let (at, first) = chars.next().ok_or_else(|| format!("unterminated labels in {line:?}"))?;
                if first == '}' {
                    break at + 1;
                }
                let mut label = String::from(first);
                loop {
                    match chars.next() {
                        Some((_, '=')) => break,
                        Some((_, c)) => label.push(c),
                        None => return Err(format!("bad label in {line:?}")),
                    }
                }
                if chars.next().map(|(_, c)| c) != Some('"') {
                    return Err(format!("unquoted label value in {line:?}"));
                }
                let mut value = String::new();
                loop {
                    match chars.next().map(|(_, c)| c) {
                        Some('"') => break,
                        Some('\\') => match chars.next().map(|(_, c)| c) {
                            Some('n') => value.push('\n'),
                            Some(c) => value.push(c),
                            None => return Err(format!("bad escape in {line:?}")),
                        },
                        Some(c) => value.push(c),
                        None => return Err(format!("unterminated label value in {line:?}")),
                    }
                }
                labels.insert(label.trim().to_owned(), value);
            };
            rest = &inner[end..];
        }
        let value = rest.split_whitespace().next().ok_or_else(|| format!("no value in {line:?}"))?;
        let value = match value {
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            "NaN" => f64::NAN,
            v => v.parse().map_err(|err| format!("value of {line:?}: {err}"))?,
        };
        self.samples.entry(name).or_default().push((labels, value));
        Ok(())
    }

    /// Label names of a series.
    pub fn labels(&self, series: &str) -> Option<BTreeSet<String>> {
        let samples = self.samples.get(series)?;
        Some(samples.iter().flat_map(|(labels, _)| labels.keys().cloned()).collect())
    }

    /// Values a series has for `label`.
    pub fn values(&self, series: &str, label: &str) -> BTreeSet<&str> {
        self.samples
            .get(series)
            .into_iter()
            .flatten()
            .filter_map(|(labels, _)| labels.get(label).map(String::as_str))
            .collect()
    }

    /// The family (`# TYPE` name) of a series: itself, or a histogram's for `_bucket` etc.
    pub fn family<'a>(&self, series: &'a str) -> Option<&'a str> {
        if self.types.contains_key(series) {
            return Some(series);
        }
        ["_bucket", "_sum", "_count"].iter().find_map(|suffix| {
            let family = series.strip_suffix(suffix)?;
            matches!(self.types.get(family).map(String::as_str), Some("histogram" | "summary"))
                .then_some(family)
        })
    }

    /// True when `series` has a sample with all of `labels`.
    pub fn has(&self, series: &str, labels: &[(&str, &str)]) -> bool {
        self.samples
            .get(series)
            .into_iter()
            .flatten()
            .any(|(have, _)| labels.iter().all(|(k, v)| have.get(*k).map(String::as_str) == Some(*v)))
    }

    /// Sum of the samples of `series` with all of `labels`.
    pub fn sum(&self, series: &str, labels: &[(&str, &str)]) -> f64 {
        self.samples
            .get(series)
            .into_iter()
            .flatten()
            .filter(|(have, _)| labels.iter().all(|(k, v)| have.get(*k).map(String::as_str) == Some(*v)))
            .map(|(_, value)| value)
            .sum()
    }
}
