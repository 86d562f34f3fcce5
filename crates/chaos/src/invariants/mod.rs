//! The invariants of a chaos run, one per file (openraft's `tests-turmoil` is the model): each
//! file's doc states its invariant and the exact check, and its unit tests sit beside it. The
//! runner (`runner.rs`) and the two coordinator modes (`single.rs`, `replicas/`) call them;
//! nothing here names them back, so the invariants can be read and tested alone.
//!
//! | invariant                                  | file                            | mode     | checked                   | on                                   |
//! |--------------------------------------------|---------------------------------|----------|---------------------------|--------------------------------------|
//! | no unsafe re-org                           | [`no_reorg`]                    | both     | every tick and at the end | `sim_invariants`, the ledger         |
//! | no double sequencing                       | [`no_double_sequencing`]        | both     | every tick and at the end | `sim_invariants`, the ledger         |
//! | inspection stops a rogue sequencer         | [`rogue_sequencers_stopped`]    | both     | every tick                | the ledger                           |
//! | production resumes                         | [`production_resumes`]          | both     | every tick                | the ledger, the runner's fault state |
//! | no coordinator panics, hangs or dies       | [`coordinator_alive`]           | both     | every tick, at each stop  | the admin API, the task, a panic hook |
//! | at most one replica acts                   | [`one_acting_replica`]          | replicas | at the end                | ledger `admin_call` entries          |
//! | calls are labelled                         | [`calls_are_labelled`]          | replicas | at the end                | ledger `admin_call` entries          |
//! | nobody acts without a majority             | [`no_action_without_majority`]  | replicas | at the end                | ledger `admin_call` entries          |
//! | zero zombie blocks                         | [`no_zombie_blocks`]            | conductor | at the end               | ledger `block`, `unpublished_commit`, `seen`, `activated`, `admin_call` |
//! | committed before seen                      | [`committed_before_seen`]       | conductor | at the end               | ledger `block`, `unpublished_commit`, `seen` |
//!
//! The first three share one notion: a sequencer started behind the coordinator's back (a
//! `start_sequencer` fault) makes a second sequencer on purpose, so what it causes within its
//! window is counted as injected rather than as a violation. [`safety_violations`] runs the three
//! together.
//!
//! The "mode" column: both coordinator modes (single, replicas), replicas only, or conductor mode
//! (`--conductor`, either coordinator mode: the two conductor invariants read ledger entries only
//! a chain whose op-nodes commit to a conductor has).
//!
//! To add an invariant: a file here with the doc and the check as a function of ledger entries
//! (and the runner's state when it needs it), a row in the table, and its call in
//! `runner.rs` (checked every tick or at the end), or in `replicas/mod.rs` for a replica-only one.

pub mod calls_are_labelled;
pub mod committed_before_seen;
pub mod coordinator_alive;
pub mod no_action_without_majority;
pub mod no_double_sequencing;
pub mod no_reorg;
pub mod no_zombie_blocks;
pub mod one_acting_replica;
pub mod production_resumes;
pub mod rogue_sequencers_stopped;

use op_sim::api::{ChainInvariants, LedgerEntry};

/// Unsafe re-orgs and double sequencing that injected behind-the-back starts do not explain, and
/// behind-the-back sequencers inspection did not stop in time ([`rogue_sequencers_stopped`],
/// [`no_reorg`], [`no_double_sequencing`], in that order). Returns the violations and the number
/// of conflicts and overlaps explained as injected.
///
/// The ledger is only read when the cheap report shows trouble.
pub fn safety_violations(
    report: &ChainInvariants,
    entries: &[LedgerEntry],
    now_ms: u64,
    inspection_bound_ms: u64,
) -> (Vec<String>, u64) {
    if report.is_safe() {
        return (Vec::new(), 0);
    }
    let (windows, mut violations) =
        rogue_sequencers_stopped::check(entries, report.block_time_ms, now_ms, inspection_bound_ms);
    let (reorgs, injected_reorgs) = no_reorg::check(report, entries, &windows);
    let (overlaps, injected_overlaps) = no_double_sequencing::check(report, &windows);
    violations.extend(reorgs);
    violations.extend(overlaps);
    (violations, injected_reorgs + injected_overlaps)
}

/// How long inspection may take to stop a sequencer started behind the coordinator's back, for a
/// chain of `block_time_ms`: three inspection rounds (the runner's coordinators inspect every two
/// block times) plus 2 s of slack.
pub fn inspection_bound_ms(block_time_ms: u64) -> u64 {
    6 * block_time_ms + 2000
}

/// Ledger fixtures of the safety invariants' tests.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::rogue_sequencers_stopped::BEHIND_BACK;
    use alloy_primitives::B256;
    use op_sim::api::{ChainInvariants, ConflictingBlocks, LedgerEntry, SeenVia};
    use opc_wire::BlockId;

    pub(crate) const BLOCK_MS: u64 = 250;
    pub(crate) const BOUND_MS: u64 = 3500;

    pub(crate) fn hash(n: u64, branch: u8) -> B256 {
        let mut bytes = [branch; 32];
        bytes[..8].copy_from_slice(&n.to_be_bytes());
        B256::from(bytes)
    }

    pub(crate) fn block(producer: &str, number: u64, branch: u8, t_ms: u64) -> LedgerEntry {
        LedgerEntry::Block {
            chain: "devnet".into(),
            producer: producer.into(),
            number,
            hash: hash(number, branch),
            parent: hash(number - 1, branch),
            t_ms,
            commit_sent_ms: None,
        }
    }

    /// A block of `producer` committed (its commit sent 10 ms before) and published at `t_ms`.
    pub(crate) fn committed(producer: &str, number: u64, branch: u8, t_ms: u64) -> LedgerEntry {
        match block(producer, number, branch, t_ms) {
            LedgerEntry::Block { chain, producer, number, hash, parent, t_ms, .. } => LedgerEntry::Block {
                chain,
                producer,
                number,
                hash,
                parent,
                t_ms,
                commit_sent_ms: Some(t_ms - 10),
            },
            other => other,
        }
    }

    /// The first sighting of `producer`'s block by `node`, over p2p.
    pub(crate) fn seen(node: &str, producer: &str, number: u64, branch: u8, t_ms: u64) -> LedgerEntry {
        LedgerEntry::Seen {
            chain: "devnet".into(),
            node: node.into(),
            producer: producer.into(),
            number,
            hash: hash(number, branch),
            via: SeenVia::P2p,
            t_ms,
        }
    }

    /// `node` activated by the coordinator's `admin_startSequencer` at block `number`.
    pub(crate) fn started(node: &str, number: u64, t_ms: u64) -> LedgerEntry {
        LedgerEntry::Activated {
            chain: "devnet".into(),
            node: node.into(),
            head: BlockId { hash: hash(number, 0), number },
            cause: "admin_startSequencer".into(),
            t_ms,
        }
    }

    pub(crate) fn behind_back_start(node: &str, number: u64, t_ms: u64) -> LedgerEntry {
        LedgerEntry::Activated {
            chain: "devnet".into(),
            node: node.into(),
            head: BlockId { hash: hash(number, 0), number },
            cause: format!("started {BEHIND_BACK}"),
            t_ms,
        }
    }

    pub(crate) fn start_call(node: &str, t_ms: u64) -> LedgerEntry {
        LedgerEntry::AdminCall {
            chain: "devnet".into(),
            node: node.into(),
            method: "admin_startSequencer".into(),
            replica: None,
            term: None,
            // Already running: the coordinator adopts the node instead.
            accepted: false,
            t_ms,
            answered_ms: Some(t_ms),
        }
    }

    /// A report with one conflict at height 5 between branch 0 (seq-0) and branch 1 (seq-2).
    pub(crate) fn unsafe_report() -> ChainInvariants {
        ChainInvariants {
            chain: "devnet".into(),
            blocks_sealed: 40,
            unsafe_reorgs: vec![ConflictingBlocks {
                number: 5,
                blocks: vec![("seq-0".into(), hash(5, 0)), ("seq-2".into(), hash(5, 1))],
            }],
            double_sequencing: Vec::new(),
            node_reorgs: 0,
            longest_gap_ms: 0,
            longest_gap_ended_at: None,
            missed_slots: 0,
            block_time_ms: BLOCK_MS,
            last_block_ms: None,
        }
    }

    /// seq-1 is started behind the back at 10 000 ms and seals 30 blocks; the conflict at height 5
    /// (sealed long before) is unexplained either way.
    pub(crate) fn run_of_seq_1(adopted_at: Option<u64>) -> Vec<LedgerEntry> {
        let mut entries = vec![
            block("seq-0", 5, 0, 1000),
            block("seq-2", 5, 1, 1100),
            behind_back_start("seq-1", 40, 10_000),
        ];
        entries.extend(adopted_at.map(|at| start_call("seq-1", at)));
        entries.extend((41..71).map(|n| block("seq-1", n, 0, 10_000 + (n - 40) * BLOCK_MS)));
        entries
    }
}
