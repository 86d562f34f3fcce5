//! Fault parameters: which apply to which fault kind, how their modes are spelled, and how a
//! second fault of a kind widens the first. Named errors for every bad combination.

use crate::error::SimError;
use op_sim_api::{FaultKind, FaultParams, FaultTarget, IsolateMode, MalformedMode};

pub(crate) fn merge_params(old: Option<&FaultParams>, mut new: FaultParams) -> FaultParams {
    // A second crash or hang of the other process widens the target instead of replacing it.
    if let (Some(old), Some(new_target)) = (old, new.target)
        && old.target.unwrap_or_default() != new_target
    {
        new.target = Some(FaultTarget::Both);
    }
    new
}

pub(crate) fn parse_malformed(mode: Option<&str>) -> Result<MalformedMode, SimError> {
    match mode {
        None | Some("invalid_json") => Ok(MalformedMode::InvalidJson),
        Some("wrong_types") => Ok(MalformedMode::WrongTypes),
        Some("huge_body") => Ok(MalformedMode::HugeBody),
        Some(other) => Err(SimError::BadFault(format!(
            "malformed: unknown mode {other:?}; expected invalid_json, wrong_types or huge_body"
        ))),
    }
}

/// The mode of an `isolate` or `conductor_drop` fault (`kind`, for the error).
pub(crate) fn parse_isolate(kind: FaultKind, mode: Option<&str>) -> Result<IsolateMode, SimError> {
    match mode {
        None | Some("refuse") => Ok(IsolateMode::Refuse),
        Some("blackhole") => Ok(IsolateMode::Blackhole),
        Some(other) => {
            Err(SimError::BadFault(format!("{kind}: unknown mode {other:?}; expected refuse or blackhole")))
        }
    }
}

/// Rejects parameters that do not apply to `kind`, naming the offending one.
pub(crate) fn validate_params(kind: FaultKind, params: &FaultParams) -> Result<(), SimError> {
    let given = [
        ("target", params.target.is_some()),
        ("latency_ms", params.latency_ms.is_some()),
        ("mode", params.mode.is_some()),
        ("size_bytes", params.size_bytes.is_some()),
        ("seal_on_resume", params.seal_on_resume.is_some()),
    ];
    let allowed: &[&str] = match kind {
        FaultKind::Crash => &["target"],
        FaultKind::Hang => &["target", "seal_on_resume"],
        FaultKind::Slow => &["target", "latency_ms"],
        FaultKind::Malformed => &["target", "mode", "size_bytes"],
        FaultKind::Isolate | FaultKind::ConductorDrop => &["mode"],
        FaultKind::ConductorDelay => &["latency_ms"],
        FaultKind::Stall | FaultKind::ExecutionLag | FaultKind::StartSequencer | FaultKind::StopSequencer => {
            &[]
        }
    };
    for (name, present) in given {
        if present && !allowed.contains(&name) {
            let accepted = if allowed.is_empty() { "none".to_owned() } else { allowed.join(", ") };
            return Err(SimError::BadFault(format!(
                "{kind}: parameter {name} does not apply (accepted: {accepted})"
            )));
        }
    }
    match kind {
        FaultKind::Slow if params.latency_ms.is_none() => {
            Err(SimError::BadFault("slow: latency_ms is required".into()))
        }
        FaultKind::Malformed => {
            let mode = parse_malformed(params.mode.as_deref())?;
            if params.size_bytes.is_some() && mode != MalformedMode::HugeBody {
                return Err(SimError::BadFault(
                    "malformed: size_bytes applies only to mode huge_body".into(),
                ));
            }
            Ok(())
        }
        FaultKind::ConductorDelay if params.latency_ms.is_none() => {
            Err(SimError::BadFault("conductor_delay: latency_ms is required".into()))
        }
        FaultKind::Isolate | FaultKind::ConductorDrop => {
            parse_isolate(kind, params.mode.as_deref()).map(|_| ())
        }
        _ => Ok(()),
    }
}
