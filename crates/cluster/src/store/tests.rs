//! Unit tests of `store.rs`.
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
        // Appending through the trait needs openraft's callback; write the rows the same way.
        let rows: Vec<(u64, Vec<u8>)> = entries
            .iter()
            .map(|e| Ok((e.log_id.index, encode("log entry", e)?)))
            .collect::<Result<_, DbError>>()?;
        opened
            .log_store
            .db
            .write(move |txn| {
                let mut table = txn.open_table(LOG)?;
                for (index, bytes) in &rows {
                    table.insert(*index, bytes.as_slice())?;
                }
                Ok(())
            })
            .await?;
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
