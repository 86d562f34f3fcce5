//! Text out of the configuration: the TOML printer, "did you mean" suggestions and the error
//! report.

use super::error::{ConfigError, Origin};
use super::keys::{Binding, KEYS, Section, section_keys, unfilled_cluster, unfilled_replica};
use super::types::Config;
use std::path::PathBuf;

pub(super) fn file_label(file: &Option<PathBuf>) -> String {
    match file {
        Some(path) => path.display().to_string(),
        None => "config".to_owned(),
    }
}

pub(super) fn at(origin: &Option<Origin>) -> String {
    match origin {
        Some(origin) => format!(" [{origin}]"),
        None => String::new(),
    }
}

pub(super) fn at_both(first: &Option<Origin>, second: &Option<Origin>) -> String {
    match (first, second) {
        (Some(a), Some(b)) => format!(" [{a}; {b}]"),
        (a, b) => at(&a.clone().or_else(|| b.clone())),
    }
}

pub(super) fn did_you_mean(suggestions: &[String]) -> String {
    if suggestions.is_empty() {
        String::new()
    } else {
        format!(" (did you mean {}?)", suggestions.join(" or "))
    }
}

pub(super) fn render_errors(errors: &[ConfigError]) -> String {
    let noun = if errors.len() == 1 { "problem" } else { "problems" };
    let mut out = format!("invalid configuration ({} {noun}):", errors.len());
    for error in errors {
        out.push_str("\n  - ");
        out.push_str(&error.to_string());
    }
    out
}

impl Config {
    /// The configuration as TOML, every key explicit, in the order of [`KEYS`]. Loading the output
    /// gives back an equal `Config`.
    pub fn to_toml_string(&self) -> String {
        let mut out = String::new();
        let mut section = "";
        for doc in KEYS {
            let Binding::Global(slot) = &doc.binding else {
                continue;
            };
            let this_section = doc.path.rsplit_once('.').map_or("", |(s, _)| s);
            if this_section != section {
                out.push_str(&format!("\n[{this_section}]\n"));
                section = this_section;
            }
            match slot.render(self) {
                Some(value) => out.push_str(&format!("{} = {value}\n", doc.leaf())),
                None => out.push_str(&format!("# {} is not set\n", doc.leaf())),
            }
        }
        for (chain_name, chain) in &self.chains {
            let chain_key = format!("chains.{}", toml_key(chain_name));
            out.push_str(&format!("\n[{chain_key}]\n"));
            print_section(&mut out, chain);
            for (node_name, node) in &chain.sequencers {
                out.push_str(&format!("\n[{chain_key}.sequencers.{}]\n", toml_key(node_name)));
                print_section(&mut out, node);
            }
        }
        match &self.cluster {
            Some(cluster) => {
                out.push_str("\n[cluster]\n");
                print_section(&mut out, cluster);
                for replica in &cluster.replicas {
                    out.push_str("\n[[cluster.replicas]]\n");
                    print_section(&mut out, replica);
                }
            }
            None => {
                // Commented out, like every unset key: the operator sees what a cluster would take.
                out.push_str(
                    "\n# [cluster] is not set: this coordinator runs alone. With it, the defaults are:\n",
                );
                print_unset_section(&mut out, &unfilled_cluster());
                out.push_str("# [[cluster.replicas]]   (one table per initial voter)\n");
                print_unset_section(&mut out, &unfilled_replica());
            }
        }
        out.trim_start().to_owned()
    }
}

/// The keys of a table that is not set, commented out, with their defaults.
fn print_unset_section<T: Section>(out: &mut String, defaults: &T) {
    for (doc, slot) in section_keys::<T>() {
        let value = slot.render(defaults).filter(|_| !doc.required());
        out.push_str(&format!("# {} = {}\n", doc.leaf(), value.as_deref().unwrap_or("(required)")));
    }
}

/// The keys of one table, one line each; unset optional keys are left out.
fn print_section<T: Section>(out: &mut String, target: &T) {
    for (doc, slot) in section_keys::<T>() {
        if let Some(value) = slot.render(target) {
            out.push_str(&format!("{} = {value}\n", doc.leaf()));
        }
    }
}

/// A name as a TOML key: bare when it can be, quoted otherwise (only configs built in code can
/// have such names; they do not validate, but must still print).
fn toml_key(name: &str) -> String {
    if is_valid_name(name) { name.to_owned() } else { toml::Value::String(name.to_owned()).to_string() }
}

pub(super) fn is_valid_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Runs every layer, collecting all problems; the returned config is meaningful only when the
/// The candidates closest to `unknown` by edit distance, if close enough to be a typo.
pub(super) fn closest<'c>(unknown: &str, candidates: impl Iterator<Item = &'c str>) -> Vec<String> {
    let allowed = (unknown.len() / 3).clamp(1, 3);
    let mut best: Option<(usize, Vec<String>)> = None;
    for candidate in candidates {
        let distance = edit_distance(unknown, candidate);
        if distance == 0 || distance > allowed {
            continue;
        }
        match &mut best {
            Some((d, list)) if *d == distance => list.push(candidate.to_owned()),
            Some((d, _)) if *d < distance => {}
            _ => best = Some((distance, vec![candidate.to_owned()])),
        }
    }
    best.map(|(_, list)| list).unwrap_or_default()
}

/// Levenshtein distance over characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        previous = current;
    }
    previous[b.len()]
}
