//! The durable log of committed payloads of one chain, for a coordinator without `[cluster]`:
//! `<data_dir>/conductor-<chain>.log`, appended and fsynced before a commit is answered.
//!
//! Each record is `<length in decimal>\n<envelope JSON>\n`, so an envelope is stored byte for byte
//! whatever it contains. A crash in the middle of an append leaves a torn last record; it was
//! never acknowledged (the answer follows the fsync), so reading drops it with a warning. Anything
//! else that does not parse stops the start-up with an error naming the file: a fence that forgot
//! its committed head could let a new leader build on an older block.
//!
//! The file is rewritten with only the kept payloads (temp file, fsync, rename, fsync of the
//! directory) once it holds four times as many records as are kept, so its size stays bounded
//! by about four times the retention.

use opc_cluster::fence::Retention;
use opc_wire::conductor::Envelope;
use std::{
    fs::{File, OpenOptions},
    io::{Read as _, Write as _},
    path::{Path, PathBuf},
};

/// Why the log could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// An I/O error on the file.
    #[error("conductor log {path}: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// A record in the middle of the file does not parse.
    #[error(
        "conductor log {path} is corrupt at byte {offset} ({detail}); refusing to start with a fence that \
         forgot its committed head. Inspect it; move it away only if no node of the chain sequences"
    )]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Where the bad record starts.
        offset: usize,
        /// What is wrong.
        detail: String,
    },
}

/// The open log of one chain.
#[derive(Debug)]
pub struct CommitLog {
    path: PathBuf,
    file: File,
    records: usize,
    retention: Retention,
}

impl CommitLog {
    /// Opens (or creates) the log of `chain` in `dir`; returns it with every payload it holds,
    /// oldest first (the fence they are accepted into decides which it keeps; then
    /// [`CommitLog::compact_if_due`]).
    pub fn open(dir: &Path, chain: &str, retention: Retention) -> Result<(Self, Vec<Envelope>), LogError> {
        let path = dir.join(format!("conductor-{chain}.log"));
        let io = |error| LogError::Io { path: path.clone(), error };
        let mut bytes = Vec::new();
        match File::open(&path) {
            Ok(mut file) => {
                file.read_to_end(&mut bytes).map_err(io)?;
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(io(error)),
        }
        let (payloads, valid_len) = parse(&path, &bytes)?;
        if valid_len < bytes.len() {
            tracing::warn!(
                file = %path.display(),
                dropped_bytes = bytes.len() - valid_len,
                "the conductor log ends in a torn record (a crash during an append that was never acknowledged); dropping it"
            );
        }
        let file = OpenOptions::new().create(true).append(true).open(&path).map_err(io)?;
        if valid_len < bytes.len() {
            file.set_len(valid_len as u64).map_err(io)?;
        }
        let records = payloads.len();
        Ok((Self { path, file, records, retention }, payloads))
    }

    /// Rewrites the file with `kept` (what the fence keeps) when it has grown past its bound.
    pub fn compact_if_due(&mut self, kept: &[Envelope]) -> Result<(), LogError> {
        if self.records > self.compaction_threshold() {
            self.rewrite(kept)?;
        }
        Ok(())
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `envelope` and makes it durable. `kept` is what the fence keeps after it, written
    /// out instead when the file has grown past its bound.
    pub fn append(&mut self, envelope: &Envelope, kept: &[Envelope]) -> Result<(), LogError> {
        let io = |error| LogError::Io { path: self.path.clone(), error };
        let json = envelope.json();
        let mut record = Vec::with_capacity(json.len() + 24);
        record.extend_from_slice(json.len().to_string().as_bytes());
        record.push(b'\n');
        record.extend_from_slice(json.as_bytes());
        record.push(b'\n');
        self.file.write_all(&record).map_err(io)?;
        self.file.sync_data().map_err(io)?;
        self.records += 1;
        self.compact_if_due(kept)
    }

    fn compaction_threshold(&self) -> usize {
        self.retention.payloads.max(1) * 4
    }

    /// Replaces the file with `kept` only.
    fn rewrite(&mut self, kept: &[Envelope]) -> Result<(), LogError> {
        let io = |error| LogError::Io { path: self.path.clone(), error };
        let temp = self.path.with_extension("log.tmp");
        let mut out = File::create(&temp).map_err(io)?;
        for envelope in kept {
            let json = envelope.json();
            write!(out, "{}\n{json}\n", json.len()).map_err(io)?;
        }
        out.sync_all().map_err(io)?;
        drop(out);
        std::fs::rename(&temp, &self.path).map_err(io)?;
        if let Some(dir) = self.path.parent() {
            File::open(dir).and_then(|dir| dir.sync_all()).map_err(io)?;
        }
        self.file = OpenOptions::new().append(true).open(&self.path).map_err(io)?;
        self.records = kept.len();
        Ok(())
    }
}

/// The payloads of `bytes` and how many leading bytes hold whole records.
fn parse(path: &Path, bytes: &[u8]) -> Result<(Vec<Envelope>, usize), LogError> {
    let mut payloads = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let corrupt = |detail: String| LogError::Corrupt { path: path.to_owned(), offset: at, detail };
        let Some(newline) = bytes[at..].iter().position(|byte| *byte == b'\n') else {
            // A length that was being written when the process died.
            return Ok((payloads, at));
        };
        let length: usize = std::str::from_utf8(&bytes[at..at + newline])
            .ok()
            .and_then(|text| text.parse().ok())
            .ok_or_else(|| corrupt("a record does not start with its length".into()))?;
        let start = at + newline + 1;
        let end = start + length;
        if end + 1 > bytes.len() {
            return Ok((payloads, at));
        }
        if bytes[end] != b'\n' {
            return Err(corrupt("a record does not end where its length says".into()));
        }
        let text = std::str::from_utf8(&bytes[start..end]).map_err(|err| corrupt(err.to_string()))?;
        payloads.push(Envelope::from_json(text).map_err(|err| corrupt(err.to_string()))?);
        at = end + 1;
    }
    Ok((payloads, at))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::B256;

    fn envelope(number: u64) -> Envelope {
        let hash = B256::with_last_byte(number as u8);
        let parent = B256::with_last_byte(number.saturating_sub(1) as u8);
        Envelope::from_json(&format!(
            "{{\"executionPayload\":{{\"parentHash\":\"{parent}\",\"blockHash\":\"{hash}\",\n\"blockNumber\":\"{number:#x}\",\"timestamp\":\"0x1\"}}}}"
        ))
        .expect("envelope")
    }

    fn dir() -> tempfile::TempDir {
        tempfile::tempdir().expect("temp dir")
    }

    const KEEP: Retention = Retention { payloads: 3, bytes: 1 << 20 };

    #[test]
    fn appended_payloads_are_read_back_byte_for_byte() {
        let dir = dir();
        let (mut log, restored) = CommitLog::open(dir.path(), "main", KEEP).expect("open");
        assert!(restored.is_empty());
        for number in 1..=3 {
            log.append(&envelope(number), &[]).expect("append");
        }
        drop(log);
        let (_, restored) = CommitLog::open(dir.path(), "main", KEEP).expect("reopen");
        assert_eq!(restored, vec![envelope(1), envelope(2), envelope(3)]);
        assert!(restored[0].json().contains('\n'), "a newline inside the JSON survives");
    }

    #[test]
    fn a_torn_last_record_is_dropped_and_anything_else_corrupt_is_an_error() {
        let dir = dir();
        let (mut log, _) = CommitLog::open(dir.path(), "main", KEEP).expect("open");
        log.append(&envelope(1), &[]).expect("append");
        let path = log.path().to_owned();
        drop(log);
        let whole = std::fs::read(&path).expect("read");
        let mut torn = whole.clone();
        torn.extend_from_slice(b"300\n{\"executionPayload\":");
        std::fs::write(&path, &torn).expect("write");
        let (mut log, restored) = CommitLog::open(dir.path(), "main", KEEP).expect("torn tail");
        assert_eq!(restored, vec![envelope(1)]);
        log.append(&envelope(2), &[]).expect("append after the repair");
        drop(log);
        let (_, restored) = CommitLog::open(dir.path(), "main", KEEP).expect("reopen");
        assert_eq!(restored, vec![envelope(1), envelope(2)]);
        let mut corrupt = b"12\nnot-json-at-all\n".to_vec();
        corrupt.extend_from_slice(&whole);
        std::fs::write(&path, &corrupt).expect("write");
        let err = CommitLog::open(dir.path(), "main", KEEP).expect_err("corrupt").to_string();
        assert!(err.contains("conductor-main.log") && err.contains("corrupt at byte 0"), "{err}");
    }

    #[test]
    fn the_file_is_compacted_to_what_is_kept() {
        let dir = dir();
        let (mut log, _) = CommitLog::open(dir.path(), "main", KEEP).expect("open");
        let mut fence = opc_cluster::fence::Fence::new(KEEP);
        for number in 1..=40 {
            fence.accept(envelope(number));
            let kept: Vec<Envelope> = fence.committed().cloned().collect();
            log.append(&envelope(number), &kept).expect("append");
            assert!(log.records <= KEEP.payloads * 4, "{} records", log.records);
        }
        let size = std::fs::metadata(log.path()).expect("stat").len() as usize;
        assert!(size <= envelope(40).len_bytes() * 13, "{size} bytes");
        drop(log);
        let (_, restored) = CommitLog::open(dir.path(), "main", KEEP).expect("reopen");
        assert!(restored.len() <= KEEP.payloads * 4, "{} records read back", restored.len());
        assert_eq!(restored[restored.len() - 3..], [envelope(38), envelope(39), envelope(40)]);
    }
}
