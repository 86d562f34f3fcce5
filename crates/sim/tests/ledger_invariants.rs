//! The ground-truth ledger and the invariant checker: a clean run is clean, and violations a test
//! causes on purpose are caught.

mod common;

use alloy_primitives::B256;
use anyhow::{Context as _, Result, ensure};
use common::{Fixture, config, wait_for};
use op_sim::api::{ChainInvariants, FaultKind, FaultParams, LedgerEntry};
use op_sim::check_invariants;
use opc_wire::{BlockId, api::OpAdminApiClient};

fn report(fixture: &Fixture) -> Result<ChainInvariants> {
    fixture.sim.invariants().into_iter().next().context("no chain in the report")
}

#[tokio::test]
async fn a_single_active_sequencer_runs_without_reorgs_double_sequencing_or_missed_slots() -> Result<()> {
    let fixture = Fixture::start(config(3, 50)).await?;
    let report = wait_for("20 sealed blocks", async || {
        let report = report(&fixture).map_err(|err| err.to_string())?;
        if report.blocks_sealed >= 20 { Ok(report) } else { Err(format!("{report:?}")) }
    })
    .await?;
    ensure!(report.is_safe(), "violations in a clean run: {report:?}");
    ensure!(report.node_reorgs == 0, "followers re-orged: {report:?}");
    // Timers on a loaded machine may slip a slot now and then, never many.
    ensure!(report.missed_slots <= 2, "missed slots: {report:?}");
    ensure!(report.longest_gap_ms < 4 * 50, "longest gap: {report:?}");
    ensure!(report.block_time_ms == 50 && report.chain == "devnet");
    Ok(())
}

#[tokio::test]
async fn a_clean_handover_by_stop_and_start_is_neither_a_reorg_nor_double_sequencing() -> Result<()> {
    let fixture = Fixture::start(config(2, 50)).await?;
    fixture.wait_for_height("seq-0", 3).await?;
    let head = fixture.op_node("seq-0")?.admin_stop_sequencer().await?;
    fixture.wait_for_head_over_rpc("seq-1", head).await?;
    fixture.op_node("seq-1")?.admin_start_sequencer(head).await?;
    wait_for("seq-1 to seal 3 blocks", async || {
        let count = fixture.sealed_by("seq-1").len();
        if count >= 3 { Ok(()) } else { Err(format!("{count} sealed")) }
    })
    .await?;
    let report = report(&fixture)?;
    ensure!(report.is_safe() && report.node_reorgs == 0, "a clean hand-over was flagged: {report:?}");
    Ok(())
}

#[tokio::test]
async fn two_sequencers_started_behind_the_coordinators_back_are_caught_as_double_sequencing_and_reorg()
-> Result<()> {
    let fixture = Fixture::start(config(3, 50)).await?;
    fixture.wait_for_height("seq-1", 2).await?;
    fixture.sim.fault("seq-1", FaultKind::StartSequencer, FaultParams::default())?;
    let report = wait_for("the checker to flag both violations", async || {
        let report = report(&fixture).map_err(|err| err.to_string())?;
        if !report.unsafe_reorgs.is_empty() && !report.double_sequencing.is_empty() {
            Ok(report)
        } else {
            Err(format!("{report:?}"))
        }
    })
    .await?;
    fixture.sim.fault("seq-1", FaultKind::StopSequencer, FaultParams::default())?;

    let overlap = &report.double_sequencing[0];
    let mut pair = [overlap.first.as_str(), overlap.second.as_str()];
    pair.sort_unstable();
    ensure!(pair == ["seq-0", "seq-1"], "overlap between {pair:?}");
    let (first, second) = (overlap.first_span_ms, overlap.second_span_ms);
    ensure!(first.0 <= second.1 && second.0 <= first.1, "the spans do not overlap: {overlap:?}");
    for conflict in &report.unsafe_reorgs {
        let sealed_here: Vec<_> = fixture
            .ledger()
            .into_iter()
            .filter_map(|entry| match entry {
                LedgerEntry::Block { number, producer, hash, .. } if number == conflict.number => {
                    Some((producer, hash))
                }
                _ => None,
            })
            .collect();
        ensure!(conflict.blocks == sealed_here, "conflict {conflict:?} vs ledger {sealed_here:?}");
        let distinct: std::collections::HashSet<_> = conflict.blocks.iter().map(|(_, hash)| hash).collect();
        ensure!(distinct.len() >= 2, "a conflict needs two distinct blocks: {conflict:?}");
    }
    Ok(())
}

#[tokio::test]
async fn the_ledger_records_faults_heals_and_partitions_and_exports_json_lines() -> Result<()> {
    let fixture = Fixture::start(config(2, 50)).await?;
    fixture.wait_for_height("seq-1", 1).await?;
    fixture.sim.fault("seq-1", FaultKind::Stall, FaultParams::default())?;
    fixture.sim.heal("seq-1", Some(FaultKind::Stall))?;
    fixture.sim.partition(&[vec!["seq-0".into()], vec!["seq-1".into()]])?;
    fixture.sim.partition(&[])?;

    let entries = fixture.ledger();
    let activated = entries.iter().any(|entry| {
        matches!(entry, LedgerEntry::Activated { node, head, .. } if node == "seq-0" && head.number == 0)
    });
    ensure!(activated, "the initial activation is missing");
    let fault = entries.iter().position(|entry| {
        matches!(entry, LedgerEntry::Fault { node, kind: FaultKind::Stall, params, .. }
            if node == "seq-1" && *params == FaultParams::default())
    });
    let heal = entries.iter().position(|entry| {
        matches!(entry, LedgerEntry::Heal { node, kind: Some(FaultKind::Stall), .. } if node == "seq-1")
    });
    ensure!(fault.is_some() && heal > fault, "fault {fault:?} must precede heal {heal:?}");
    let partitions: Vec<_> = entries
        .iter()
        .filter_map(|entry| match entry {
            LedgerEntry::Partition { groups, .. } => Some(groups.clone()),
            _ => None,
        })
        .collect();
    ensure!(
        partitions == vec![vec![vec!["seq-0".to_owned()], vec!["seq-1".to_owned()]], vec![]],
        "{partitions:?}"
    );
    ensure!(entries.windows(2).all(|pair| pair[0].t_ms() <= pair[1].t_ms()), "entries out of time order");

    let mut out = Vec::new();
    let next = fixture.sim.ledger().write_jsonl(0, &mut out)?;
    let lines: Vec<LedgerEntry> =
        String::from_utf8(out)?.lines().map(serde_json::from_str).collect::<Result<_, _>>()?;
    ensure!(next == lines.len() && lines.len() >= entries.len(), "wrote {} lines, next {next}", lines.len());
    ensure!(lines[..entries.len()] == entries[..], "the JSON lines differ from the ledger");
    let first_line: serde_json::Value = serde_json::to_value(&lines[0])?;
    ensure!(first_line["event"] == "activated", "entries are tagged by event: {first_line}");
    Ok(())
}

fn block(producer: &str, number: u64, t_ms: u64) -> LedgerEntry {
    LedgerEntry::Block {
        chain: "c".into(),
        producer: producer.into(),
        number,
        hash: B256::with_last_byte(u8::try_from(number).unwrap_or(0) ^ producer.len() as u8),
        parent: B256::ZERO,
        t_ms,
        commit_sent_ms: None,
    }
}

fn activation(node: &str, t_ms: u64, active: bool) -> LedgerEntry {
    let (chain, node, head, cause) = ("c".to_owned(), node.to_owned(), BlockId::default(), "test".to_owned());
    if active {
        LedgerEntry::Activated { chain, node, head, cause, t_ms }
    } else {
        LedgerEntry::Deactivated { chain, node, head, cause, t_ms }
    }
}

#[test]
fn the_checker_counts_missed_slots_and_the_longest_gap_and_separates_sequential_spans() {
    // a seals 1-3, stops; b starts later and seals 4-5 after a gap of 3 slots (2 missed).
    let entries = vec![
        activation("a", 0, true),
        block("a", 1, 100),
        block("a", 2, 200),
        block("a", 3, 300),
        activation("a", 310, false),
        activation("bb", 320, true),
        block("bb", 4, 600),
        block("bb", 5, 700),
    ];
    let report = check_invariants("c", 100, &entries);
    assert!(report.is_safe(), "{report:?}");
    assert_eq!(report.blocks_sealed, 5);
    assert_eq!((report.longest_gap_ms, report.longest_gap_ended_at), (300, Some(4)));
    assert_eq!(report.missed_slots, 2);
    // Entries of other chains are ignored.
    assert_eq!(check_invariants("other", 100, &entries).blocks_sealed, 0);
}

#[test]
fn the_checker_flags_overlapping_spans_and_two_blocks_at_one_height() {
    let entries = vec![block("a", 1, 100), block("bb", 1, 150), block("a", 2, 200), block("bb", 2, 250)];
    let report = check_invariants("c", 100, &entries);
    assert_eq!(report.unsafe_reorgs.len(), 2, "{report:?}");
    assert_eq!(report.double_sequencing.len(), 1, "{report:?}");
    let overlap = &report.double_sequencing[0];
    assert_eq!((overlap.first.as_str(), overlap.first_span_ms), ("a", (100, 200)));
    assert_eq!((overlap.second.as_str(), overlap.second_span_ms), ("bb", (150, 250)));
}
