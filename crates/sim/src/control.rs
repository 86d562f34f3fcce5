//! The control API (`sim_*`) over JSON-RPC.

use crate::{
    error::SimError,
    http::{Endpoint, serve_endpoint},
    simulator::Simulator,
};
use jsonrpsee::{
    Methods,
    core::{RpcResult, async_trait},
    types::ErrorObjectOwned,
};
use op_sim_api::{
    ChainInvariants, FaultKind, FaultParams, IsolateMode, LedgerEntry, SimControlApiServer, SimNodeInfo,
};
use std::sync::Arc;
use tokio::net::TcpListener;

/// Serves `sim_*` for one simulator.
#[derive(Debug, Clone)]
pub struct ControlRpc {
    sim: Arc<Simulator>,
}

impl ControlRpc {
    /// The handler for `sim`.
    pub fn new(sim: Arc<Simulator>) -> Self {
        Self { sim }
    }

    /// The `sim_*` methods.
    pub fn methods(self) -> Methods {
        self.into_rpc().into()
    }
}

/// Serving the control API is the control module's business: the façade does not name it, so
/// the two do not import each other.
impl Simulator {
    /// Serves the control API (`sim_*`) on `listener` until shutdown.
    pub fn serve_control(self: &Arc<Self>, listener: TcpListener) {
        let methods = ControlRpc::new(self.clone()).methods();
        let endpoint = Endpoint::new("control".into(), methods);
        tokio::spawn(serve_endpoint(endpoint, listener, self.cancel_token().clone()));
    }
}

fn invalid_params(err: SimError) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(jsonrpsee::types::error::INVALID_PARAMS_CODE, err.to_string(), None::<()>)
}

#[async_trait]
impl SimControlApiServer for ControlRpc {
    async fn nodes(&self) -> RpcResult<Vec<SimNodeInfo>> {
        Ok(self.sim.nodes())
    }

    async fn fault(&self, node: String, kind: FaultKind, params: Option<FaultParams>) -> RpcResult<()> {
        self.sim.fault(&node, kind, params.unwrap_or_default()).map_err(invalid_params)
    }

    async fn heal(&self, node: String, kind: Option<FaultKind>) -> RpcResult<()> {
        if node == "*" {
            self.sim.heal_all();
            return Ok(());
        }
        self.sim.heal(&node, kind).map_err(invalid_params)
    }

    async fn partition(&self, groups: Vec<Vec<String>>) -> RpcResult<()> {
        self.sim.partition(&groups).map_err(invalid_params)
    }

    async fn isolate_caller(&self, replica: u64, mode: Option<IsolateMode>) -> RpcResult<()> {
        self.sim.isolate_caller(replica, mode.unwrap_or_default());
        Ok(())
    }

    async fn heal_caller(&self, replica: Option<u64>) -> RpcResult<()> {
        self.sim.heal_caller(replica);
        Ok(())
    }

    async fn ledger(&self, from: Option<u64>) -> RpcResult<Vec<LedgerEntry>> {
        let from = usize::try_from(from.unwrap_or(0)).unwrap_or(usize::MAX);
        Ok(self.sim.ledger_entries(from))
    }

    async fn invariants(&self) -> RpcResult<Vec<ChainInvariants>> {
        Ok(self.sim.invariants())
    }
}
