//! Golden tests of the simulator's control contract: ledger entries in the exact JSON shapes
//! outside tools read (see `tests/fixtures/`), and the fault kinds' wire names.

use op_sim_api::{FaultKind, FaultParams, FaultTarget, IsolateMode, LedgerEntry, SeenVia};
use serde_json::Value;

const ADMIN_CALL: &str = include_str!("fixtures/admin_call.json");
const CALLER_ISOLATION: &str = include_str!("fixtures/caller_isolation.json");
const FAULT: &str = include_str!("fixtures/fault.json");

fn decode(json: &str) -> LedgerEntry {
    serde_json::from_str(json).expect("fixture decodes into a LedgerEntry")
}

/// Encoding the decoded entry gives the fixture back, key for key.
fn assert_round_trip(json: &str) {
    let encoded = serde_json::to_value(decode(json)).expect("encodes");
    let fixture: Value = serde_json::from_str(json).expect("valid JSON");
    assert_eq!(encoded, fixture);
}

#[test]
fn an_admin_call_names_the_replica_and_term_that_sent_it() {
    let entry = decode(ADMIN_CALL);
    assert_eq!(
        entry,
        LedgerEntry::AdminCall {
            chain: "devnet".into(),
            node: "seq-1".into(),
            method: "admin_startSequencer".into(),
            replica: Some(2),
            term: Some(5),
            accepted: true,
            t_ms: 12345,
            answered_ms: Some(12346),
        }
    );
    assert_eq!(entry.t_ms(), 12345);
    assert_eq!(entry.chain(), "devnet");
    assert_round_trip(ADMIN_CALL);
}

#[test]
fn an_admin_call_without_the_headers_decodes_with_null_replica_and_term() {
    let json = r#"{"event":"admin_call","chain":"devnet","node":"seq-0","method":"admin_stopSequencer","accepted":false,"t_ms":7}"#;
    let LedgerEntry::AdminCall { replica, term, answered_ms, .. } = decode(json) else {
        panic!("not an admin call");
    };
    assert_eq!((replica, term, answered_ms), (None, None, None));
}

#[test]
fn a_caller_isolation_carries_its_mode_and_a_heal_carries_none() {
    assert_eq!(
        decode(CALLER_ISOLATION),
        LedgerEntry::CallerIsolation {
            chain: "devnet".into(),
            replica: 1,
            mode: Some(IsolateMode::Blackhole),
            t_ms: 2000
        }
    );
    assert_round_trip(CALLER_ISOLATION);
    let healed = r#"{"event":"caller_isolation","chain":"devnet","replica":1,"mode":null,"t_ms":2500}"#;
    assert!(matches!(decode(healed), LedgerEntry::CallerIsolation { mode: None, .. }));
}

#[test]
fn a_fault_entry_keeps_only_the_parameters_that_were_given() {
    assert_eq!(
        decode(FAULT),
        LedgerEntry::Fault {
            chain: "devnet".into(),
            node: "seq-0".into(),
            kind: FaultKind::Hang,
            params: FaultParams {
                target: Some(FaultTarget::OpNode),
                seal_on_resume: Some(false),
                ..FaultParams::default()
            },
            t_ms: 800,
        }
    );
    assert_round_trip(FAULT);
}

#[test]
fn fault_params_refuse_unknown_keys() {
    let refused = serde_json::from_str::<FaultParams>(r#"{"latency":5}"#).expect_err("unknown key");
    assert!(refused.to_string().contains("unknown field `latency`"), "{refused}");
}

/// Every variant, by an exhaustive match: adding a fault kind fails to compile here until it is
/// listed, and the test then checks `ALL`, `as_str`, `FromStr` and serde agree on it.
fn every_kind() -> Vec<FaultKind> {
    let listed = |kind: FaultKind| match kind {
        FaultKind::Crash
        | FaultKind::Hang
        | FaultKind::Slow
        | FaultKind::Malformed
        | FaultKind::Isolate
        | FaultKind::Stall
        | FaultKind::ExecutionLag
        | FaultKind::StartSequencer
        | FaultKind::StopSequencer
        | FaultKind::ConductorDelay
        | FaultKind::ConductorDrop => kind,
    };
    [
        FaultKind::Crash,
        FaultKind::Hang,
        FaultKind::Slow,
        FaultKind::Malformed,
        FaultKind::Isolate,
        FaultKind::Stall,
        FaultKind::ExecutionLag,
        FaultKind::StartSequencer,
        FaultKind::StopSequencer,
        FaultKind::ConductorDelay,
        FaultKind::ConductorDrop,
    ]
    .into_iter()
    .map(listed)
    .collect()
}

#[test]
fn every_fault_kind_is_listed_once_and_its_wire_name_is_its_serde_name() {
    assert_eq!(FaultKind::ALL.to_vec(), every_kind());
    for kind in FaultKind::ALL {
        let serde_name = serde_json::to_value(kind).expect("encodes");
        assert_eq!(serde_name, Value::String(kind.as_str().to_owned()));
        assert_eq!(kind.as_str().parse::<FaultKind>(), Ok(kind));
        assert_eq!(kind.to_string(), kind.as_str());
    }
    let unknown = "banana".parse::<FaultKind>().expect_err("unknown kind");
    assert!(unknown.contains("expected one of crash, hang, slow"), "{unknown}");
}

const HASH: &str = "0x2a00000000000000000000000000000000000000000000000000000000000000";
const PARENT: &str = "0x2900000000000000000000000000000000000000000000000000000000000000";

#[test]
fn a_block_of_an_older_ledger_decodes_without_a_commit_time_and_a_committed_one_carries_it() {
    let old = format!(
        r#"{{"event":"block","chain":"devnet","producer":"seq-0","number":42,"hash":"{HASH}","parent":"{PARENT}","t_ms":12345}}"#
    );
    assert!(matches!(decode(&old), LedgerEntry::Block { commit_sent_ms: None, .. }));
    assert_round_trip(&old);
    let committed = old.replace(r#""t_ms":12345}"#, r#""t_ms":12345,"commit_sent_ms":12340}"#);
    assert!(matches!(
        decode(&committed),
        LedgerEntry::Block { commit_sent_ms: Some(12340), t_ms: 12345, .. }
    ));
    assert_round_trip(&committed);
}

#[test]
fn a_sighting_and_an_unpublished_commit_keep_their_shapes() {
    let seen = format!(
        r#"{{"event":"seen","chain":"devnet","node":"seq-2","producer":"seq-0","number":42,"hash":"{HASH}","via":"replay","t_ms":12350}}"#
    );
    let entry = decode(&seen);
    assert!(matches!(&entry, LedgerEntry::Seen { via: SeenVia::Replay, number: 42, .. }), "{entry:?}");
    assert_eq!((entry.t_ms(), entry.chain()), (12350, "devnet"));
    assert_round_trip(&seen);
    let unpublished = format!(
        r#"{{"event":"unpublished_commit","chain":"devnet","node":"seq-0","number":42,"hash":"{HASH}","parent":"{PARENT}","commit_sent_ms":12340,"t_ms":12345}}"#
    );
    assert!(matches!(decode(&unpublished), LedgerEntry::UnpublishedCommit { commit_sent_ms: 12340, .. }));
    assert_round_trip(&unpublished);
}
