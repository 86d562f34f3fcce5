//! A simulated block as the execution payload envelope op-node commits to its conductor, and back.
//!
//! The envelope has the shape op-node sends (`{executionPayload: {...}, parentBeaconBlockRoot}`,
//! hex quantities, every field of an Ecotone-and-later payload), so the coordinator parses what
//! a real node would send. The fields a simulated block needs beyond the header travel where
//! a real payload carries them: the L1 origin and the sequence number in the first transaction
//! (a real block's L1-info deposit), the producer in `extraData`. A second transaction pads the
//! envelope to the chain's configured payload size, so commits and replays move realistic
//! amounts of bytes.
//!
//! [`block_of`] reverses [`envelope_of`], which `admin_postUnsafePayload` needs: a block replayed
//! by the coordinator is the block its producer sealed, hash included.

use crate::block::Block;
use alloy_primitives::{B256, hex, keccak256};
use opc_wire::{BlockId, conductor::Envelope};
use serde_json::json;

/// The type byte of the stand-in L1-info deposit (a real one is an EIP-2718 type 0x7e deposit).
const L1_INFO_TX_TYPE: u8 = 0x7e;
/// Length of the stand-in L1-info deposit: type, L1 origin number, L1 origin hash, sequence number.
const L1_INFO_TX_LEN: usize = 1 + 8 + 32 + 8;
/// What a padding transaction adds besides its hex digits: `,"0x` and `"`.
const PADDING_OVERHEAD: usize = 5;

/// The envelope op-node would commit for `block`, padded to about `payload_bytes` bytes (an
/// unpadded one is about 1.5 KB).
pub fn envelope_of(block: &Block, payload_bytes: usize) -> Envelope {
    let bare = envelope_text(block, 0);
    // Two hex digits per byte.
    let padding = payload_bytes.saturating_sub(bare.len() + PADDING_OVERHEAD) / 2;
    let text = if padding == 0 { bare } else { envelope_text(block, padding) };
    Envelope::from_json(&text).expect("an envelope built here has its head fields")
}

fn envelope_text(block: &Block, padding: usize) -> String {
    let derived = |salt: &[u8]| keccak256([block.hash.as_slice(), salt].concat());
    let mut l1_info = Vec::with_capacity(L1_INFO_TX_LEN);
    l1_info.push(L1_INFO_TX_TYPE);
    l1_info.extend_from_slice(&block.l1_origin.number.to_be_bytes());
    l1_info.extend_from_slice(block.l1_origin.hash.as_slice());
    l1_info.extend_from_slice(&block.sequence_number.to_be_bytes());
    let mut transactions = vec![hex::encode_prefixed(&l1_info)];
    if padding > 0 {
        // A type-2 transaction's envelope byte, then filler.
        let mut filler = vec![0xab_u8; padding];
        filler[0] = 0x02;
        transactions.push(hex::encode_prefixed(&filler));
    }
    let quantity = |value: u64| format!("{value:#x}");
    let value = json!({
        "executionPayload": {
            "parentHash": block.parent_hash,
            "feeRecipient": "0x4200000000000000000000000000000000000011",
            "stateRoot": derived(b"state"),
            "receiptsRoot": derived(b"receipts"),
            "logsBloom": format!("0x{}", "00".repeat(256)),
            "prevRandao": derived(b"randao"),
            "blockNumber": quantity(block.number),
            "gasLimit": quantity(30_000_000),
            "gasUsed": quantity(46_000),
            "timestamp": quantity(block.timestamp),
            "extraData": hex::encode_prefixed(block.producer.as_bytes()),
            "baseFeePerGas": quantity(1_000_000),
            "blockHash": block.hash,
            "transactions": transactions,
            "withdrawals": [],
            "blobGasUsed": quantity(0),
            "excessBlobGas": quantity(0),
            "withdrawalsRoot": derived(b"withdrawals"),
        },
        "parentBeaconBlockRoot": derived(b"beacon"),
    });
    value.to_string()
}

/// The block an envelope of [`envelope_of`] carries; an error that says what is missing for any
/// other envelope (op-node would refuse a payload it cannot decode, too).
pub fn block_of(envelope: &Envelope) -> Result<Block, String> {
    let value: serde_json::Value =
        serde_json::from_str(envelope.json()).map_err(|err| format!("invalid envelope: {err}"))?;
    let payload = &value["executionPayload"];
    let decode = |field: &str| -> Result<Vec<u8>, String> {
        let text = payload[field].as_str().ok_or_else(|| format!("executionPayload.{field} is missing"))?;
        hex::decode(text).map_err(|err| format!("executionPayload.{field}: {err}"))
    };
    let l1_info = payload["transactions"]
        .get(0)
        .and_then(serde_json::Value::as_str)
        .ok_or("executionPayload.transactions[0] (the L1-info deposit) is missing")?;
    let l1_info = hex::decode(l1_info).map_err(|err| format!("transactions[0]: {err}"))?;
    if l1_info.len() != L1_INFO_TX_LEN || l1_info[0] != L1_INFO_TX_TYPE {
        return Err("transactions[0] is not an L1-info deposit of this simulator".into());
    }
    let word = |at: usize| u64::from_be_bytes(l1_info[at..at + 8].try_into().expect("8 bytes"));
    let producer =
        String::from_utf8(decode("extraData")?).map_err(|_| "extraData is not a producer name".to_owned())?;
    let head = envelope.head();
    Ok(Block {
        number: head.number,
        hash: head.block_hash,
        parent_hash: head.parent_hash,
        timestamp: head.timestamp,
        l1_origin: BlockId { hash: B256::from_slice(&l1_info[9..41]), number: word(1) },
        sequence_number: word(41),
        producer,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::block::ChainParams;

    fn params() -> ChainParams {
        ChainParams {
            chain_id: 901,
            genesis_time: 1_700_000_000,
            block_time_ms: 1000,
            safe_lag_blocks: 10,
            finalized_lag_blocks: 20,
            genesis_hash: None,
        }
    }

    #[test]
    fn a_block_survives_the_round_trip_through_its_envelope() {
        let params = params();
        let mut block = params.genesis();
        for _ in 0..15 {
            block = params.child_of(&block, "seq-1");
        }
        let envelope = envelope_of(&block, 0);
        assert_eq!(envelope.head().block_hash, block.hash);
        assert_eq!(envelope.head().number, 15);
        assert_eq!(block_of(&envelope).expect("decode"), block);
    }

    #[test]
    fn the_envelope_has_about_the_configured_size() {
        let params = params();
        let block = params.child_of(&params.genesis(), "seq-0");
        let small = envelope_of(&block, 0).len_bytes();
        assert!((1_000..2_000).contains(&small), "{small}");
        let large = envelope_of(&block, 128 * 1024).len_bytes();
        assert!((128 * 1024 - 2..=128 * 1024).contains(&large), "{large}");
        assert_eq!(block_of(&envelope_of(&block, 128 * 1024)).expect("decode"), block);
    }

    #[test]
    fn a_foreign_envelope_is_refused_with_what_is_missing() {
        let text = format!(
            r#"{{"executionPayload":{{"parentHash":"0x{z}","blockHash":"0x{z}","blockNumber":"0x1",
            "timestamp":"0x1","transactions":[]}}}}"#,
            z = "00".repeat(32)
        );
        let err = block_of(&Envelope::from_json(&text).expect("parse")).expect_err("foreign");
        assert!(err.contains("L1-info deposit"), "{err}");
    }
}
