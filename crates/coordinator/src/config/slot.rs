//! Typed access to one field of a section: a value as it arrives (TOML or text) is parsed into its
//! field here and nowhere else, and printed back from it.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use toml::de::DeValue;

use super::keys::KeyKind;

/// Typed access to one field of `T`, with the parsing and range rules of its key.
#[derive(Debug)]
pub(super) enum Slot<T> {
    U64 {
        kind: KeyKind,
        min: u64,
        max: u64,
        get: fn(&T) -> u64,
        set: fn(&mut T, u64),
    },
    OptionalU64 {
        kind: KeyKind,
        min: u64,
        max: u64,
        get: fn(&T) -> Option<u64>,
        set: fn(&mut T, Option<u64>),
    },
    I64 {
        get: fn(&T) -> i64,
        set: fn(&mut T, i64),
    },
    Bool {
        get: fn(&T) -> bool,
        set: fn(&mut T, bool),
    },
    Path {
        get: fn(&T) -> &Path,
        set: fn(&mut T, PathBuf),
    },
    OptionalPath {
        get: fn(&T) -> Option<&Path>,
        set: fn(&mut T, Option<PathBuf>),
    },
    SocketAddr {
        get: fn(&T) -> SocketAddr,
        set: fn(&mut T, SocketAddr),
    },
    /// A string whose form is checked by validation (URLs, addresses), so a bad one is reported
    /// with the rules across keys rather than as a type error.
    Text {
        kind: KeyKind,
        get: fn(&T) -> &str,
        set: fn(&mut T, String),
    },
    /// An optional [`Slot::Text`]; an empty string unsets it.
    OptionalText {
        kind: KeyKind,
        get: fn(&T) -> Option<&str>,
        set: fn(&mut T, Option<String>),
    },
    /// IP addresses: a TOML array of strings, or one comma-separated string from the environment
    /// or a flag (empty: none).
    IpList {
        get: fn(&T) -> &[IpAddr],
        set: fn(&mut T, Vec<IpAddr>),
    },
}

/// Why a value could not be stored in its slot.
pub(super) enum Problem {
    WrongType { expected: &'static str, got: String },
    Invalid(String),
}

/// A value as it arrives: typed from the TOML file, or text from the environment or a flag.
#[derive(Clone, Copy)]
pub(super) enum Input<'a> {
    Toml(&'a DeValue<'a>),
    Text(&'a str),
}

impl<'a> Input<'a> {
    /// The value as the operator wrote it, for "got X" in messages.
    fn describe(self) -> String {
        match self {
            Input::Text(s) => format!("{s:?}"),
            Input::Toml(value) => describe_toml(value),
        }
    }

    fn wrong_type(self, kind: KeyKind) -> Problem {
        Problem::WrongType { expected: kind.expected(), got: self.describe() }
    }

    fn integer(self, kind: KeyKind) -> Result<i64, Problem> {
        match self {
            Input::Toml(DeValue::Integer(int)) => i64::from_str_radix(int.as_str(), int.radix())
                .map_err(|_| Problem::Invalid(format!("{int} does not fit in 64 bits"))),
            Input::Text(text) => text.trim().parse().map_err(|_| self.wrong_type(kind)),
            Input::Toml(_) => Err(self.wrong_type(kind)),
        }
    }

    fn unsigned(self, kind: KeyKind) -> Result<u64, Problem> {
        let value = self.integer(kind)?;
        u64::try_from(value).map_err(|_| Problem::Invalid(format!("must not be negative, got {value}")))
    }

    fn boolean(self) -> Result<bool, Problem> {
        match self {
            Input::Toml(DeValue::Boolean(b)) => Ok(*b),
            Input::Text(text) => match text.trim().to_ascii_lowercase().as_str() {
                "true" | "1" => Ok(true),
                "false" | "0" => Ok(false),
                _ => Err(self.wrong_type(KeyKind::Bool)),
            },
            Input::Toml(_) => Err(self.wrong_type(KeyKind::Bool)),
        }
    }

    /// Addresses from a TOML array of strings, or from one comma-separated string.
    fn ip_list(self) -> Result<Vec<IpAddr>, Problem> {
        let parse = |text: &str| {
            text.trim().parse::<IpAddr>().map_err(|_| {
                Problem::Invalid(format!(
                    "{text:?} is not an IP address: write one address per entry, such as \"10.0.0.5\" or \
                     \"fd00::5\" (no port, no network range)"
                ))
            })
        };
        match self {
            Input::Text(text) => text.split(',').filter(|item| !item.trim().is_empty()).map(parse).collect(),
            Input::Toml(DeValue::Array(items)) => items
                .iter()
                .map(|item| match item.get_ref() {
                    DeValue::String(text) => parse(text),
                    other => Err(Problem::WrongType {
                        expected: KeyKind::IpList.expected(),
                        got: format!("an array holding {}", describe_toml(other)),
                    }),
                })
                .collect(),
            Input::Toml(_) => Err(self.wrong_type(KeyKind::IpList)),
        }
    }

    fn string(self, kind: KeyKind) -> Result<&'a str, Problem> {
        match self {
            Input::Toml(DeValue::String(s)) => Ok(s.as_ref()),
            Input::Text(text) => Ok(text),
            Input::Toml(_) => Err(self.wrong_type(kind)),
        }
    }
}

pub(super) fn describe_toml(value: &DeValue<'_>) -> String {
    match value {
        DeValue::String(s) => format!("{:?}", s.as_ref()),
        DeValue::Integer(i) => i.to_string(),
        DeValue::Float(f) => f.to_string(),
        DeValue::Boolean(b) => b.to_string(),
        DeValue::Datetime(d) => d.to_string(),
        DeValue::Array(_) => "an array".to_owned(),
        DeValue::Table(_) => "a table".to_owned(),
    }
}

impl<T> Slot<T> {
    pub(super) fn kind(&self) -> KeyKind {
        match self {
            Slot::U64 { kind, .. }
            | Slot::OptionalU64 { kind, .. }
            | Slot::Text { kind, .. }
            | Slot::OptionalText { kind, .. } => *kind,
            Slot::I64 { .. } => KeyKind::Integer,
            Slot::Bool { .. } => KeyKind::Bool,
            Slot::Path { .. } | Slot::OptionalPath { .. } => KeyKind::Path,
            Slot::SocketAddr { .. } => KeyKind::SocketAddr,
            Slot::IpList { .. } => KeyKind::IpList,
        }
    }

    pub(super) fn bounds(&self) -> Option<(u64, u64)> {
        match self {
            Slot::U64 { min, max, .. } | Slot::OptionalU64 { min, max, .. } => Some((*min, *max)),
            _ => None,
        }
    }

    /// The current value as a TOML literal, `None` when unset.
    pub(super) fn render(&self, target: &T) -> Option<String> {
        let string = |s: &str| toml::Value::String(s.to_owned()).to_string();
        Some(match self {
            Slot::U64 { get, .. } => get(target).to_string(),
            Slot::OptionalU64 { get, .. } => get(target)?.to_string(),
            Slot::I64 { get, .. } => get(target).to_string(),
            Slot::Bool { get, .. } => get(target).to_string(),
            Slot::Path { get, .. } => string(&get(target).to_string_lossy()),
            Slot::OptionalPath { get, .. } => string(&get(target)?.to_string_lossy()),
            Slot::SocketAddr { get, .. } => string(&get(target).to_string()),
            Slot::Text { get, .. } => string(get(target)),
            Slot::OptionalText { get, .. } => string(get(target)?),
            Slot::IpList { get, .. } => toml::Value::Array(
                get(target).iter().map(|address| toml::Value::String(address.to_string())).collect(),
            )
            .to_string(),
        })
    }

    /// The current value if this is a bounded integer slot, for range validation.
    pub(super) fn bounded_value(&self, target: &T) -> Option<(u64, u64, u64)> {
        match self {
            Slot::U64 { min, max, get, .. } => Some((get(target), *min, *max)),
            Slot::OptionalU64 { min, max, get, .. } => Some((get(target)?, *min, *max)),
            _ => None,
        }
    }

    /// Parses `input` as this slot's type and stores it. Ranges are checked later by validation,
    /// so values set in code are held to the same rules.
    pub(super) fn assign(&self, target: &mut T, input: Input<'_>) -> Result<(), Problem> {
        let kind = self.kind();
        match self {
            Slot::U64 { set, .. } => set(target, input.unsigned(kind)?),
            Slot::OptionalU64 { set, .. } => match input {
                Input::Text(text) if text.trim().is_empty() => set(target, None),
                _ => set(target, Some(input.unsigned(kind)?)),
            },
            Slot::I64 { set, .. } => set(target, input.integer(kind)?),
            Slot::Bool { set, .. } => set(target, input.boolean()?),
            Slot::Path { set, .. } => set(target, PathBuf::from(input.string(kind)?)),
            Slot::OptionalPath { set, .. } => {
                let text = input.string(kind)?;
                set(target, (!text.is_empty()).then(|| PathBuf::from(text)));
            }
            Slot::SocketAddr { set, .. } => {
                let text = input.string(kind)?;
                let addr = text.trim().parse().map_err(|_| input.wrong_type(kind))?;
                set(target, addr);
            }
            Slot::Text { set, .. } => set(target, input.string(kind)?.to_owned()),
            Slot::OptionalText { set, .. } => {
                let text = input.string(kind)?;
                set(target, (!text.trim().is_empty()).then(|| text.to_owned()));
            }
            Slot::IpList { set, .. } => set(target, input.ip_list()?),
        }
        Ok(())
    }
}
