//! Unit tests of `store.rs`.
use openraft::storage::{RaftLogReader as _, RaftLogStorage as _};
use openraft::testing::{StoreBuilder, Suite};

use super::*;

/// Each build opens a fresh store in its own temp dir, kept alive as the suite's guard.
struct TempStoreBuilder;

impl StoreBuilder<TypeConfig, LogStore, StateMachineStore, tempfile::TempDir> for TempStoreBuilder {
    async fn build(&self) -> Result<(tempfile::TempDir, LogStore, StateMachineStore), StorageError> {
        let to_err = |e: &dyn std::fmt::Display| {
            storage_error(ErrorSubject::Store, ErrorVerb::Write, &DbError::Invalid(e.to_string()))
        };
        let dir = tempfile::tempdir().map_err(|e| to_err(&e))?;
        let opened = open(dir.path(), Retention::default()).map_err(|e| to_err(&e))?;
        Ok((dir, opened.log_store, opened.state_machine))
    }
}

/// Writes `entries` to the log rows as the log writer does (appending through the trait needs
/// openraft's flush callback).
async fn write_log(opened: &OpenedStore, entries: &[Entry]) -> Result<(), DbError> {
    let rows: Vec<(u64, Vec<u8>)> = entries
        .iter()
        .map(|e| Ok((e.log_id.index, encode("log entry", e)?)))
        .collect::<Result<_, DbError>>()?;
    opened
        .log_store
        .writer
        .write(Box::new(move |txn| {
            let mut table = txn.open_table(LOG)?;
            for (index, bytes) in &rows {
                table.insert(*index, bytes.as_slice())?;
            }
            Ok(())
        }))
        .await
}

#[test]
fn the_redb_store_passes_openraft_storage_suite() {
    if let Err(e) = Suite::test_all(TempStoreBuilder) {
        panic!("openraft storage suite failed: {e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reopened_store_holds_the_vote_the_log_and_the_applied_state()
-> Result<(), Box<dyn std::error::Error>> {
    use openraft::{CommittedLeaderId, EntryPayload};

    let dir = tempfile::tempdir()?;
    let log_id = |index| LogId::new(CommittedLeaderId::new(2, 1), index);
    let closed = {
        let mut opened = open(dir.path(), Retention::default())?;
        assert!(opened.pristine);
        opened.log_store.save_vote(&Vote::new(2, 1)).await?;
        let put = |index, chain: &str| Entry {
            log_id: log_id(index),
            payload: EntryPayload::Normal(crate::types::Command::Put {
                chain: chain.to_owned(),
                state: serde_json::json!(index),
                holding: None,
            }),
        };
        let entries = [put(1, "a"), put(2, "b"), put(3, "a")];
        write_log(&opened, &entries).await?;
        opened.state_machine.apply(entries[..2].to_vec()).await?;
        opened.log_store.purge(log_id(1)).await?;
        opened.closed_rx
    };
    // The log writer thread closes the file once every handle is gone.
    let _ = closed.await;

    let mut opened = open(dir.path(), Retention::default())?;
    assert!(!opened.pristine);
    assert_eq!(opened.log_store.read_vote().await?, Some(Vote::new(2, 1)));
    let state = opened.log_store.get_log_state().await?;
    assert_eq!((state.last_purged_log_id, state.last_log_id), (Some(log_id(1)), Some(log_id(3))));
    let indexes: Vec<u64> =
        opened.log_store.try_get_log_entries(0..10).await?.iter().map(|e| e.log_id.index).collect();
    assert_eq!(indexes, vec![2, 3]);
    let applied = opened.applied.read().unwrap_or_else(PoisonError::into_inner).clone();
    assert_eq!(applied.last_applied, Some(log_id(2)));
    assert_eq!(
        applied.chains,
        ChainStates::from([("a".to_owned(), serde_json::json!(1)), ("b".to_owned(), serde_json::json!(2))])
    );
    Ok(())
}

mod payload_rows {
    //! Kept payloads are read back from the log entry that committed them, or from the snapshot
    //! once the log behind it is purged; format 1 rows (the payload itself) still read.
    use super::*;
    use crate::fence::Holding;
    use alloy_primitives::B256;
    use opc_wire::conductor::Envelope;
    use openraft::{CommittedLeaderId, EntryPayload, RaftSnapshotBuilder};

    fn log_id(index: u64) -> LogId {
        LogId::new(CommittedLeaderId::new(1, 1), index)
    }

    fn envelope(number: u64) -> Envelope {
        let (parent, hash) = (B256::with_last_byte(number as u8 - 1), B256::with_last_byte(number as u8));
        Envelope::from_json(&format!(
            r#"{{"executionPayload":{{"parentHash":"{parent}","blockHash":"{hash}","blockNumber":"{number:#x}","timestamp":"0x1"}}}}"#
        ))
        .expect("envelope")
    }

    /// A state naming `a` the holder, then commits of blocks 1..=`blocks`, entries 1..=blocks+1.
    fn entries(blocks: u64) -> Vec<Entry> {
        let put = Command::Put {
            chain: "c".into(),
            state: serde_json::json!({}),
            holding: Some(Holding { holder: Some("a".into()), starting: None }),
        };
        let mut entries = vec![Entry { log_id: log_id(1), payload: EntryPayload::Normal(put) }];
        for number in 1..=blocks {
            let commit = Command::Commit { chain: "c".into(), node: "a".into(), envelope: envelope(number) };
            entries.push(Entry { log_id: log_id(number + 1), payload: EntryPayload::Normal(commit) });
        }
        entries
    }

    /// Writes `entries` to the log, then applies them.
    async fn append_and_apply(
        opened: &mut OpenedStore,
        entries: Vec<Entry>,
    ) -> Result<(), Box<dyn std::error::Error>> {
        write_log(opened, &entries).await?;
        let applied = opened.state_machine.apply(entries).await?;
        assert!(applied.iter().all(|a| *a == crate::types::Applied::Done), "{applied:?}");
        Ok(())
    }

    async fn reopen(dir: &Path, opened: OpenedStore) -> Result<OpenedStore, ClusterError> {
        let closed = opened.closed_rx;
        drop((opened.log_store, opened.state_machine, opened.applied));
        let _ = closed.await;
        open(dir, Retention::default())
    }

    fn kept(opened: &OpenedStore) -> Vec<u8> {
        let applied = opened.applied.read().unwrap_or_else(PoisonError::into_inner);
        let fence = applied.fences.get("c").expect("the fence of c");
        fence.committed().map(|e| e.head().block_hash.0[31]).collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn come_back_from_the_log_and_then_from_the_snapshot() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let mut opened = open(dir.path(), Retention::default())?;
        append_and_apply(&mut opened, entries(3)).await?;
        // The rows hold references, not the payloads.
        {
            let txn = opened.log_store.db.db.begin_read()?;
            let table = txn.open_table(fence_rows::SM_PAYLOADS)?;
            let key = fence_rows::payload_key("c", &B256::with_last_byte(2));
            let row = table.get(key.as_str())?.expect("a row per kept payload");
            assert_eq!(std::str::from_utf8(row.value())?, r#"{"log_index":3}"#);
        }
        let mut opened = reopen(dir.path(), opened).await?;
        assert_eq!(kept(&opened), vec![1, 2, 3]);

        // Compacted: the snapshot holds them, the log no longer does.
        let snapshot = opened.state_machine.build_snapshot().await?;
        opened.log_store.purge(snapshot.meta.last_log_id.expect("a last log id")).await?;
        let opened = reopen(dir.path(), opened).await?;
        assert_eq!(kept(&opened), vec![1, 2, 3]);
        Ok(())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_format_1_row_holding_the_payload_still_reads() -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let mut opened = open(dir.path(), Retention::default())?;
        append_and_apply(&mut opened, entries(2)).await?;
        let inline = envelope(2).json().as_bytes().to_vec();
        opened
            .log_store
            .writer
            .write(Box::new(move |txn| {
                txn.open_table(META)?.insert(KEY_FORMAT_VERSION, encode("version", &1u64)?.as_slice())?;
                // As version 1 wrote it, and with the log entry gone.
                let key = fence_rows::payload_key("c", &B256::with_last_byte(2));
                txn.open_table(fence_rows::SM_PAYLOADS)?.insert(key.as_str(), inline.as_slice())?;
                txn.open_table(LOG)?.remove(3)?;
                Ok(())
            }))
            .await?;
        let opened = reopen(dir.path(), opened).await?;
        assert_eq!(kept(&opened), vec![1, 2]);
        assert_eq!(opened.log_store.db.read_meta::<u64>(KEY_FORMAT_VERSION)?, Some(FORMAT_VERSION));
        Ok(())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_row_naming_a_payload_nowhere_stops_the_replica_with_the_row_named()
    -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let mut opened = open(dir.path(), Retention::default())?;
        append_and_apply(&mut opened, entries(2)).await?;
        opened
            .log_store
            .writer
            .write(Box::new(|txn| {
                txn.open_table(LOG)?.remove(3)?;
                Ok(())
            }))
            .await?;
        let error = reopen(dir.path(), opened).await.expect_err("a payload is missing").to_string();
        let key = fence_rows::payload_key("c", &B256::with_last_byte(2));
        assert!(error.contains(&key) && error.contains("log entry 3"), "{error}");
        Ok(())
    }
}
