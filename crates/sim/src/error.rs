//! Errors of the simulator.

/// Everything that can go wrong driving the simulator.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// A node name that matches no node.
    #[error("unknown node {0:?}; `sim_nodes` lists them (use CHAIN/NODE with several chains)")]
    UnknownNode(String),
    /// A node name that matches nodes of several chains.
    #[error("node name {0:?} exists in several chains; write it as CHAIN/NODE")]
    AmbiguousNode(String),
    /// A fault request that cannot be applied.
    #[error("bad fault: {0}")]
    BadFault(String),
    /// A partition request that cannot be applied.
    #[error("bad partition: {0}")]
    BadPartition(String),
    /// A configuration that cannot run.
    #[error("bad simulator config: {0}")]
    BadConfig(String),
    /// An anvil could not be started or checked.
    #[error(transparent)]
    Anvil(Box<crate::anvil::AnvilError>),
    /// A node has no anvil: the simulator runs with simulated execution.
    #[error("node {0:?} has no anvil: the simulator was started with ExecutionBackend::Simulated")]
    NoAnvil(String),
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}
