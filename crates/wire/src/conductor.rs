//! The conductor contract: what op-node calls on its conductor, the payload envelope it commits,
//! the two op-node admin methods a conductor uses to recover a node, and op-conductor's operator
//! surface ([`ConductorOpsApi`], [`ServerInfo`], [`ClusterMembership`], the proxied methods).
//!
//! op-node started with `--conductor.enabled --conductor.rpc=URL` calls exactly two methods on
//! that URL: [`ConductorApi::leader`] (before it starts sequencing, and while a stop waits for a
//! block being sealed) and [`ConductorApi::commit_unsafe_payload`] (for every block it seals,
//! before it gossips or inserts the block). The envelope can be megabytes; the coordinator reads
//! four of its fields and keeps the rest verbatim ([`Envelope`]), so nothing a newer fork adds to
//! the payload is lost when it is replayed to another node with
//! [`OpNodeConductorAdminApi::post_unsafe_payload`].
//!
//! Why not op-alloy's payload types: decoding the whole payload into typed structs and encoding
//! it again for the replay would drop any field this build does not know (a new fork's), and the
//! coordinator needs none of the execution fields. The four fields it reads are decoded leniently
//! (hex quantities, as op-node writes them), and an envelope without them is refused with an
//! error that names the field.
//!
//! op-conductor's operator methods and proxy are declared here with its JSON shapes (a
//! [`Suffrage`] is a number, as op-conductor writes it); what each means for a coordinator whose
//! "servers" are a chain's sequencer nodes is the coordinator's business (its `conductor::operator`).

use crate::serde_helpers::lenient_u64;
use alloy_primitives::B256;
use jsonrpsee::{core::RpcResult, proc_macros::rpc};
use serde::{Deserialize, Deserializer, Serialize, Serializer, de::Error as _};
use serde_json::value::RawValue;
use std::sync::Arc;

/// The JSON-RPC code of every refused commit (op-node logs the message and drops the block).
pub const COMMIT_REFUSED_CODE: i32 = -32000;

/// The fields of a committed payload the coordinator reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PayloadHead {
    /// `executionPayload.blockHash`.
    pub block_hash: B256,
    /// `executionPayload.parentHash`.
    pub parent_hash: B256,
    /// `executionPayload.blockNumber`.
    pub number: u64,
    /// `executionPayload.timestamp` (unix seconds).
    pub timestamp: u64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct HeadFields {
    block_hash: B256,
    parent_hash: B256,
    #[serde(deserialize_with = "lenient_u64")]
    block_number: u64,
    #[serde(deserialize_with = "lenient_u64")]
    timestamp: u64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EnvelopeFields {
    execution_payload: HeadFields,
}

/// An execution payload envelope as op-node sent it (`{executionPayload, parentBeaconBlockRoot?}`):
/// the fields the coordinator reads, and the JSON text itself, kept byte for byte. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Envelope {
    head: PayloadHead,
    raw: Arc<RawValue>,
}

impl Envelope {
    /// Reads the head fields out of `raw`, keeping `raw` whole.
    pub fn from_raw(raw: Box<RawValue>) -> Result<Self, serde_json::Error> {
        let fields: EnvelopeFields = serde_json::from_str(raw.get())?;
        let payload = fields.execution_payload;
        let head = PayloadHead {
            block_hash: payload.block_hash,
            parent_hash: payload.parent_hash,
            number: payload.block_number,
            timestamp: payload.timestamp,
        };
        Ok(Self { head, raw: Arc::from(raw) })
    }

    /// Parses an envelope from JSON text.
    pub fn from_json(text: &str) -> Result<Self, serde_json::Error> {
        Self::from_raw(RawValue::from_string(text.to_owned())?)
    }

    /// The fields the coordinator reads.
    pub fn head(&self) -> &PayloadHead {
        &self.head
    }

    /// The envelope exactly as it was received.
    pub fn json(&self) -> &str {
        self.raw.get()
    }

    /// Its size on the wire, in bytes.
    pub fn len_bytes(&self) -> usize {
        self.raw.get().len()
    }
}

impl PartialEq for Envelope {
    fn eq(&self, other: &Self) -> bool {
        self.head == other.head && self.raw.get() == other.raw.get()
    }
}

impl Eq for Envelope {}

impl Serialize for Envelope {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.raw.serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Envelope {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = Box::<RawValue>::deserialize(deserializer)?;
        Self::from_raw(raw).map_err(|err| D::Error::custom(format!("execution payload envelope: {err}")))
    }
}

/// What op-node calls on its conductor (`--conductor.rpc`), and nothing else.
#[rpc(server, client, namespace = "conductor")]
pub trait ConductorApi {
    /// `conductor_leader`: true only when this node may sequence. op-node asks it first in
    /// `admin_startSequencer` and while a stop waits for a block being sealed; an error is never
    /// taken as true.
    #[method(name = "leader")]
    async fn leader(&self) -> RpcResult<bool>;

    /// `conductor_commitUnsafePayload`: answered only once the payload is durable; any error makes
    /// op-node drop the block (not gossiped, not inserted).
    #[method(name = "commitUnsafePayload")]
    async fn commit_unsafe_payload(&self, envelope: Envelope) -> RpcResult<()>;
}

/// The op-node admin methods a conductor uses to recover a node (not in `op-alloy-rpc-jsonrpsee`).
#[rpc(server, client, namespace = "admin")]
pub trait OpNodeConductorAdminApi {
    /// `admin_postUnsafePayload`: inserts the payload as if it had arrived over p2p.
    #[method(name = "postUnsafePayload")]
    async fn post_unsafe_payload(&self, envelope: Envelope) -> RpcResult<()>;

    /// `admin_overrideLeader`: the node's conductor client answers "leader" locally from now on,
    /// without asking (disaster recovery); undone only by restarting op-node.
    #[method(name = "overrideLeader")]
    async fn override_leader(&self) -> RpcResult<()>;
}

/// The JSON-RPC code of every refusal of the operator surface and of the proxy (go-ethereum's
/// server, and so op-conductor, answers every handler error with it).
pub const OPERATOR_REFUSED_CODE: i32 = -32000;

/// op-conductor's answer to a proxied call on a node that does not lead, to the letter: op-batcher
/// and op-proposer setups match on it.
pub const NOT_LEADER_PROXY_ERROR: &str = "refusing to proxy request to non-leader sequencer";

/// Which of a node's two servers a proxied method goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyTarget {
    /// The op-node RPC (`optimism_*`, `admin_*`).
    OpNode,
    /// The op-geth RPC (`eth_*`).
    OpGeth,
}

impl ProxyTarget {
    /// How an operator names the server in messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OpNode => "op-node",
            Self::OpGeth => "op-geth",
        }
    }
}

/// The methods op-conductor proxies to its sequencer while it leads (what op-batcher and
/// op-proposer call), and where each goes.
pub const PROXIED_METHODS: [(&str, ProxyTarget); 5] = [
    ("eth_getBlockByNumber", ProxyTarget::OpGeth),
    ("optimism_syncStatus", ProxyTarget::OpNode),
    ("optimism_outputAtBlock", ProxyTarget::OpNode),
    ("optimism_rollupConfig", ProxyTarget::OpNode),
    ("admin_sequencerActive", ProxyTarget::OpNode),
];

/// Whether a server of op-conductor's cluster votes. op-conductor writes it as a number: 0 for a
/// voter, 1 for a nonvoter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Suffrage {
    /// `0`: takes part in elections and may lead.
    Voter,
    /// `1`: follows the log but never leads.
    Nonvoter,
}

impl Serialize for Suffrage {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u8(match self {
            Self::Voter => 0,
            Self::Nonvoter => 1,
        })
    }
}

impl<'de> Deserialize<'de> for Suffrage {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match u8::deserialize(deserializer)? {
            0 => Ok(Self::Voter),
            1 => Ok(Self::Nonvoter),
            other => {
                Err(D::Error::custom(format!("suffrage must be 0 (voter) or 1 (nonvoter), got {other}")))
            }
        }
    }
}

/// One server of the cluster, as `conductor_leaderWithID` and `conductor_clusterMembership`
/// answer it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerInfo {
    /// The server's id.
    pub id: String,
    /// Its address.
    pub addr: String,
    /// Whether it may lead.
    pub suffrage: Suffrage,
}

/// The servers of the cluster and the version of that list (`conductor_clusterMembership`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterMembership {
    /// Every server.
    pub servers: Vec<ServerInfo>,
    /// Changes with every membership change; a membership change names the version it applies to.
    pub version: u64,
}

/// op-conductor's operator methods (what op-conductor-ops and dashboards call), beside the two
/// op-node calls of [`ConductorApi`]. Positional parameters, op-conductor's JSON shapes.
#[rpc(server, client, namespace = "conductor")]
pub trait ConductorOpsApi {
    /// `conductor_leaderWithID`: the server that leads now.
    #[method(name = "leaderWithID")]
    async fn leader_with_id(&self) -> RpcResult<ServerInfo>;

    /// `conductor_active`: automation runs (neither paused nor stopped).
    #[method(name = "active")]
    async fn active(&self) -> RpcResult<bool>;

    /// `conductor_paused`.
    #[method(name = "paused")]
    async fn paused(&self) -> RpcResult<bool>;

    /// `conductor_stopped`.
    #[method(name = "stopped")]
    async fn stopped(&self) -> RpcResult<bool>;

    /// `conductor_sequencerHealthy`: the health of this server's sequencer.
    #[method(name = "sequencerHealthy")]
    async fn sequencer_healthy(&self) -> RpcResult<bool>;

    /// `conductor_pause`: no automatic start or stop until resumed.
    #[method(name = "pause")]
    async fn pause(&self) -> RpcResult<()>;

    /// `conductor_resume`.
    #[method(name = "resume")]
    async fn resume(&self) -> RpcResult<()>;

    /// `conductor_stop`: op-conductor shuts the conductor down for good.
    #[method(name = "stop")]
    async fn stop(&self) -> RpcResult<()>;

    /// `conductor_overrideLeader(bool)`: set or clear a local "I lead" answer.
    #[method(name = "overrideLeader")]
    async fn override_leader(&self, enabled: bool) -> RpcResult<()>;

    /// `conductor_leaderOverridden`.
    #[method(name = "leaderOverridden")]
    async fn leader_overridden(&self) -> RpcResult<bool>;

    /// `conductor_transferLeader`: the leader hands over to another server.
    #[method(name = "transferLeader")]
    async fn transfer_leader(&self) -> RpcResult<()>;

    /// `conductor_transferLeaderToServer(id, addr)`.
    #[method(name = "transferLeaderToServer")]
    async fn transfer_leader_to_server(&self, id: String, addr: String) -> RpcResult<()>;

    /// `conductor_clusterMembership`.
    #[method(name = "clusterMembership")]
    async fn cluster_membership(&self) -> RpcResult<ClusterMembership>;

    /// `conductor_addServerAsVoter(id, addr, version)`. Every parameter is optional here so that
    /// a call of any shape gets the answer, not a parameter error.
    #[method(name = "addServerAsVoter")]
    async fn add_server_as_voter(
        &self,
        id: Option<String>,
        addr: Option<String>,
        version: Option<u64>,
    ) -> RpcResult<()>;

    /// `conductor_addServerAsNonvoter(id, addr, version)`.
    #[method(name = "addServerAsNonvoter")]
    async fn add_server_as_nonvoter(
        &self,
        id: Option<String>,
        addr: Option<String>,
        version: Option<u64>,
    ) -> RpcResult<()>;

    /// `conductor_removeServer(id, version)`.
    #[method(name = "removeServer")]
    async fn remove_server(&self, id: Option<String>, version: Option<u64>) -> RpcResult<()>;
}

/// Why a conductor refused a commit. The message is all op-node sees (it logs
/// `failed to commit unsafe payload to conductor: <message>`), so each one names its cause.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommitRefusal {
    /// The caller is not the chain's committed leader (deposed, never elected, or the chain is
    /// between leaders).
    NotLeader {
        /// The caller.
        node: String,
        /// Who leads, if anyone.
        leader: Option<String>,
    },
    /// The payload does not extend the committed head.
    WrongParent {
        /// The committed head the next payload must build on.
        expected: B256,
        /// The payload's parent.
        parent: B256,
    },
    /// The commit could not be made durable (no Raft quorum, a disk error).
    NotDurable(String),
    /// The envelope is larger than `conductor.max_payload_bytes`.
    TooLarge {
        /// Its size.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
    /// The request came from an address not allowed for this node.
    AddressNotAllowed {
        /// The caller's address.
        address: String,
        /// The key that lists the addresses allowed.
        key: String,
    },
    /// The path names no configured chain or node, or the chain is not in conductor mode.
    UnknownCaller(String),
}

impl std::fmt::Display for CommitRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotLeader { node, leader: Some(leader) } => {
                write!(f, "not the leader: {node} is not the sequencer of this chain ({leader} is)")
            }
            Self::NotLeader { node, leader: None } => {
                write!(f, "not the leader: {node} is not the sequencer of this chain (none is right now)")
            }
            Self::WrongParent { expected, parent } => {
                write!(f, "wrong parent: the committed head is {expected}, the payload builds on {parent}")
            }
            Self::NotDurable(why) => write!(f, "no quorum: the commit could not be made durable: {why}"),
            Self::TooLarge { bytes, limit } => {
                write!(f, "payload too large: {bytes} bytes, over conductor.max_payload_bytes = {limit}")
            }
            Self::AddressNotAllowed { address, key } => {
                write!(
                    f,
                    "not allowed: {address} is not in {key}; add it there to let that host call this path"
                )
            }
            Self::UnknownCaller(why) => write!(f, "unknown caller: {why}"),
        }
    }
}

impl CommitRefusal {
    /// The label of the refusal in metrics and logs.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::NotLeader { .. } => "not_leader",
            Self::WrongParent { .. } => "wrong_parent",
            Self::NotDurable(_) => "not_durable",
            Self::TooLarge { .. } => "too_large",
            Self::AddressNotAllowed { .. } => "address_not_allowed",
            Self::UnknownCaller(_) => "unknown_caller",
        }
    }
}

/// op-node's log line for a dropped block (the simulator records it in its ledger).
pub fn commit_failed(error: &str) -> String {
    format!("failed to commit unsafe payload to conductor: {error}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(extra: &str) -> String {
        format!(
            r#"{{"executionPayload":{{"parentHash":"0x{p}","blockHash":"0x{b}","blockNumber":"0x2a",
            "timestamp":"0x6553f100","transactions":["0x7e01"]{extra}}},"parentBeaconBlockRoot":"0x{r}"}}"#,
            p = "11".repeat(32),
            b = "22".repeat(32),
            r = "33".repeat(32),
        )
    }

    #[test]
    fn an_envelope_keeps_every_byte_and_reads_its_four_fields() {
        let text = sample(r#","futureForkField":{"x":[1,2,3]}"#);
        let envelope = Envelope::from_json(&text).expect("parse");
        assert_eq!(envelope.head().number, 42);
        assert_eq!(envelope.head().timestamp, 0x6553_f100);
        assert_eq!(envelope.head().parent_hash, B256::repeat_byte(0x11));
        assert_eq!(envelope.head().block_hash, B256::repeat_byte(0x22));
        assert_eq!(envelope.json(), text, "verbatim, unknown fields included");
        let encoded = serde_json::to_string(&envelope).expect("encode");
        assert_eq!(encoded, text);
        let decoded: Envelope = serde_json::from_str(&encoded).expect("decode");
        assert_eq!(decoded, envelope);
    }

    #[test]
    fn an_envelope_without_a_head_field_is_refused_naming_it() {
        let text = sample("").replace(r#""blockNumber":"0x2a","#, "");
        let err = serde_json::from_str::<Envelope>(&text).expect_err("no block number").to_string();
        assert!(err.contains("blockNumber"), "{err}");
    }

    #[test]
    fn cluster_membership_has_op_conductors_shape_with_suffrage_as_a_number() {
        // As op-conductor answers `conductor_clusterMembership` (hashicorp Raft's suffrage numbers).
        let text = r#"{"servers":[{"id":"seq-0","addr":"http://10.0.0.1:9545","suffrage":0},{"id":"seq-1","addr":"http://10.0.0.2:9545","suffrage":1}],"version":7}"#;
        let membership: ClusterMembership = serde_json::from_str(text).expect("decode");
        assert_eq!(membership.servers[0].suffrage, Suffrage::Voter);
        assert_eq!(membership.servers[1].suffrage, Suffrage::Nonvoter);
        assert_eq!(membership.version, 7);
        assert_eq!(serde_json::to_string(&membership).expect("encode"), text);
        let staged = serde_json::from_str::<Suffrage>("2").expect_err("no third suffrage").to_string();
        assert!(staged.contains("0 (voter) or 1 (nonvoter)"), "{staged}");
    }

    #[test]
    fn every_refusal_names_its_cause_first() {
        let refusals = [
            (CommitRefusal::NotLeader { node: "a".into(), leader: Some("b".into()) }, "not the leader"),
            (CommitRefusal::WrongParent { expected: B256::ZERO, parent: B256::ZERO }, "wrong parent"),
            (CommitRefusal::NotDurable("x".into()), "no quorum"),
            (CommitRefusal::TooLarge { bytes: 2, limit: 1 }, "payload too large"),
            (
                CommitRefusal::AddressNotAllowed { address: "192.0.2.4".into(), key: "k".into() },
                "not allowed",
            ),
            (CommitRefusal::UnknownCaller("x".into()), "unknown caller"),
        ];
        for (refusal, prefix) in refusals {
            assert!(refusal.to_string().starts_with(prefix), "{refusal}");
        }
    }
}
