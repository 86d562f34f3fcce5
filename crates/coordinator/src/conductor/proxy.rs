//! The proxy of the conductor endpoint: the reads op-batcher, op-proposer and rollup-boost make of
//! the sequencer (`eth_getBlockByNumber` to op-geth; `optimism_syncStatus`,
//! `optimism_outputAtBlock`, `optimism_rollupConfig`, `admin_sequencerActive` to op-node), passed
//! on as they came and answered as the node answered.
//!
//! | path               | forwards to                 | when the chain's fence holder is ...  | answer                                   |
//! |--------------------|-----------------------------|---------------------------------------|------------------------------------------|
//! | `/<chain>/<node>`  | that node                   | `node`, before and after the call     | the node's reply, or its error as it is  |
//! | `/<chain>/<node>`  | nobody                      | another node, or nobody               | `refusing to proxy request to non-leader sequencer` (op-conductor's text) |
//! | `/<chain>`         | whoever holds the fence     | some node, the same after the call    | that node's reply                        |
//! | `/<chain>`         | nobody                      | nobody (between leaders)              | an error saying so: retry                |
//!
//! The holder is who `conductor_leader` answers true for. It is checked again once the node has
//! answered (as op-conductor does), so a reply that left a node deposed during the call is never
//! passed on as the leader's. Every call is bounded by `conductor.proxy_timeout_ms` and its reply by
//! `conductor.proxy_max_reply_bytes`: a hung node costs its caller one timeout.

use super::ChainFence;
use crate::client::{CallError, NodeClient};
use jsonrpsee::{RpcModule, types::ErrorObjectOwned};
use opc_wire::conductor::{NOT_LEADER_PROXY_ERROR, OPERATOR_REFUSED_CODE, PROXIED_METHODS, ProxyTarget};
use serde_json::value::RawValue;
use std::{collections::BTreeMap, sync::Arc, time::Duration};

/// Who a path's proxied calls go to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Upstream {
    /// This node, only while it holds the fence (`/<chain>/<node>`).
    Node(String),
    /// Whoever holds the fence now (`/<chain>`).
    Leader,
}

/// Why a proxied call was not passed on.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Refusal {
    /// The path's node does not lead.
    NotLeader,
    /// The chain has no leader right now.
    NoLeader,
    /// The leader changed while the call was under way.
    Moved { from: String, to: Option<String> },
}

/// The node a call for `upstream` goes to while the fence holder is `holder`.
fn choose(upstream: &Upstream, holder: Option<&str>) -> Result<String, Refusal> {
    match (upstream, holder) {
        (Upstream::Node(node), Some(holder)) if node == holder => Ok(node.clone()),
        (Upstream::Node(_), _) => Err(Refusal::NotLeader),
        (Upstream::Leader, Some(holder)) => Ok(holder.to_owned()),
        (Upstream::Leader, None) => Err(Refusal::NoLeader),
    }
}

/// Whether the answer of `node`, asked while it held the fence, may be passed on now that the
/// holder is `holder`.
fn still_leads(upstream: &Upstream, node: &str, holder: Option<&str>) -> Result<(), Refusal> {
    match choose(upstream, holder) {
        Ok(now) if now == node => Ok(()),
        Ok(now) => Err(Refusal::Moved { from: node.to_owned(), to: Some(now) }),
        Err(Refusal::NotLeader) => Err(Refusal::NotLeader),
        Err(_) => Err(Refusal::Moved { from: node.to_owned(), to: None }),
    }
}

/// The proxied methods of one path.
#[derive(Debug)]
pub(super) struct Proxy {
    /// The chain's fence: who leads.
    pub(super) fence: Arc<ChainFence>,
    /// Clients of every node the path may forward to.
    pub(super) clients: BTreeMap<String, NodeClient>,
    /// Who the path forwards to.
    pub(super) upstream: Upstream,
    /// `conductor.proxy_timeout_ms`.
    pub(super) timeout: Duration,
}

impl Proxy {
    /// The proxied methods, each registered under its own name.
    pub(super) fn into_module(self) -> RpcModule<Self> {
        let mut module = RpcModule::new(self);
        for (method, target) in PROXIED_METHODS {
            module
                .register_async_method(method, move |params, proxy, _| async move {
                    let params = params.as_str().map(|text| RawValue::from_string(text.to_owned()));
                    let params = params.transpose().map_err(|err| invalid_params(&err))?;
                    proxy.call(method, target, params).await
                })
                .expect("the proxied methods have distinct names");
        }
        module
    }

    async fn call(
        &self,
        method: &str,
        target: ProxyTarget,
        params: Option<Box<RawValue>>,
    ) -> Result<Box<RawValue>, ErrorObjectOwned> {
        let chain = self.fence.chain();
        let holder = self.fence.view().holder;
        let node = choose(&self.upstream, holder.as_deref()).map_err(|refusal| refused(chain, &refusal))?;
        let client = self
            .clients
            .get(&node)
            .ok_or_else(|| refused(chain, &Refusal::Moved { from: node.clone(), to: None }))?;
        let outcome = client.forward(target, method, params, self.timeout).await;
        let holder = self.fence.view().holder;
        still_leads(&self.upstream, &node, holder.as_deref()).map_err(|refusal| refused(chain, &refusal))?;
        outcome.result.map_err(|err| upstream_error(&node, target, method, &err))
    }
}

fn invalid_params(err: &serde_json::Error) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(jsonrpsee::types::error::INVALID_PARAMS_CODE, err.to_string(), None::<()>)
}

fn refused(chain: &str, refusal: &Refusal) -> ErrorObjectOwned {
    let message = match refusal {
        Refusal::NotLeader => NOT_LEADER_PROXY_ERROR.to_owned(),
        Refusal::NoLeader => format!(
            "chain {chain} has no leader right now (a fail-over or hand-over is under way); retry in a \
             moment, `op-coordinator ctl status` shows its phase"
        ),
        Refusal::Moved { from, to } => format!(
            "the leader of chain {chain} changed from {from} to {} during the call; retry",
            to.as_deref().unwrap_or("none yet")
        ),
    };
    ErrorObjectOwned::owned(OPERATOR_REFUSED_CODE, message, None::<()>)
}

/// The node's own JSON-RPC error passes through as it is; anything else says which server of
/// which node failed how, and the key that bounds it.
fn upstream_error(node: &str, target: ProxyTarget, method: &str, err: &CallError) -> ErrorObjectOwned {
    let server = target.as_str();
    let message = match err {
        CallError::Rpc { code, message, .. } => {
            return ErrorObjectOwned::owned(*code, message.clone(), None::<()>);
        }
        CallError::Timeout(ms) => {
            format!("{node}'s {server} did not answer {method} within {ms} ms (conductor.proxy_timeout_ms)")
        }
        CallError::Unreachable(why) => format!("{node}'s {server} is unreachable: {why}"),
        CallError::Malformed(why) if is_too_large(why) => format!(
            "{node}'s {server} answered {method} with a reply larger than conductor.proxy_max_reply_bytes: {why}"
        ),
        CallError::Malformed(why) => {
            format!("{node}'s {server} answered {method} with a malformed reply: {why}")
        }
    };
    ErrorObjectOwned::owned(OPERATOR_REFUSED_CODE, message, None::<()>)
}

fn is_too_large(why: &str) -> bool {
    let lower = why.to_ascii_lowercase();
    lower.contains("too large") || lower.contains("too big")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str) -> Upstream {
        Upstream::Node(name.to_owned())
    }

    #[test]
    fn a_node_path_forwards_only_while_its_node_holds_the_fence() {
        assert_eq!(choose(&node("a"), Some("a")), Ok("a".to_owned()));
        assert_eq!(choose(&node("a"), Some("b")), Err(Refusal::NotLeader));
        assert_eq!(choose(&node("a"), None), Err(Refusal::NotLeader));
        assert_eq!(still_leads(&node("a"), "a", Some("a")), Ok(()));
        assert_eq!(still_leads(&node("a"), "a", None), Err(Refusal::NotLeader), "deposed during the call");
    }

    #[test]
    fn the_chain_path_follows_the_holder_and_refuses_an_answer_from_a_deposed_one() {
        assert_eq!(choose(&Upstream::Leader, Some("b")), Ok("b".to_owned()));
        assert_eq!(choose(&Upstream::Leader, None), Err(Refusal::NoLeader));
        assert_eq!(still_leads(&Upstream::Leader, "b", Some("b")), Ok(()));
        assert_eq!(
            still_leads(&Upstream::Leader, "b", Some("c")),
            Err(Refusal::Moved { from: "b".into(), to: Some("c".into()) })
        );
        assert_eq!(
            still_leads(&Upstream::Leader, "b", None),
            Err(Refusal::Moved { from: "b".into(), to: None })
        );
    }

    #[test]
    fn a_refusal_on_a_node_path_is_op_conductors_text_to_the_letter() {
        let error = refused("devnet", &Refusal::NotLeader);
        assert_eq!(error.message(), "refusing to proxy request to non-leader sequencer");
        assert_eq!(error.code(), -32000);
    }

    #[test]
    fn a_node_error_passes_through_and_a_timeout_names_the_key() {
        let rpc = CallError::Rpc {
            kind: opc_wire::op_node_errors::AdminError::classify(-32601, "nope"),
            code: -32601,
            message: "the method x does not exist/is not available".into(),
        };
        let passed = upstream_error("a", ProxyTarget::OpNode, "x", &rpc);
        assert_eq!(
            (passed.code(), passed.message()),
            (-32601, "the method x does not exist/is not available")
        );
        let late =
            upstream_error("a", ProxyTarget::OpGeth, "eth_getBlockByNumber", &CallError::Timeout(5000));
        assert!(
            late.message().contains("a's op-geth") && late.message().contains("conductor.proxy_timeout_ms")
        );
        let big =
            upstream_error("a", ProxyTarget::OpGeth, "m", &CallError::Malformed("response too large".into()));
        assert!(big.message().contains("conductor.proxy_max_reply_bytes"), "{}", big.message());
    }
}
