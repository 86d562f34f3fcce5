//! Dispatching raw JSON-RPC bodies to jsonrpsee [`Methods`], for servers that own their HTTP layer.
//!
//! The simulator and the coordinator serve JSON-RPC from their own hyper servers because they need
//! what a stock server hides: the simulator breaks replies on purpose and drops connections like a
//! dead process; the coordinator checks a JWT on mutating methods before dispatch. Both hand the
//! body to this function, so the JSON-RPC encoding is jsonrpsee's own.

use crate::op_node_errors;
use jsonrpsee::Methods;
use serde_json::{Value, json};

/// The method name of each call in a JSON-RPC body (one for a single call, several for a batch);
/// empty when the body is not JSON-RPC.
pub fn method_names(body: &[u8]) -> Vec<String> {
    let name_of = |value: &Value| value.get("method").and_then(Value::as_str).map(str::to_owned);
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Array(items)) => items.iter().filter_map(name_of).collect(),
        Ok(value) => name_of(&value).into_iter().collect(),
        Err(_) => Vec::new(),
    }
}

/// A JSON-RPC error reply.
pub fn error_reply(id: &Value, code: i32, message: &str) -> String {
    json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}}).to_string()
}

/// Dispatches a JSON-RPC request or batch to `methods`. Unknown methods get geth's `-32601`
/// message (`the method X does not exist/is not available`), as real nodes answer.
pub async fn dispatch(methods: &Methods, body: &[u8]) -> String {
    let Ok(request) = serde_json::from_slice::<Value>(body) else {
        return error_reply(&Value::Null, -32700, "parse error");
    };
    match request {
        Value::Array(items) if !items.is_empty() => {
            let mut replies = Vec::with_capacity(items.len());
            for item in items {
                replies.push(dispatch_one(methods, item).await);
            }
            format!("[{}]", replies.join(","))
        }
        Value::Object(_) => dispatch_one(methods, request).await,
        _ => error_reply(&Value::Null, -32600, "invalid request"),
    }
}

async fn dispatch_one(methods: &Methods, request: Value) -> String {
    let id = request.get("id").cloned().unwrap_or(Value::Null);
    let Some(method) = request.get("method").and_then(Value::as_str) else {
        return error_reply(&id, -32600, "invalid request: no method");
    };
    if methods.method(method).is_none() {
        let message = op_node_errors::method_not_available(method);
        return error_reply(&id, op_node_errors::METHOD_NOT_FOUND_CODE, &message);
    }
    match methods.raw_json_request(&request.to_string(), 1).await {
        Ok((reply, _subscriptions)) => reply.get().to_owned(),
        Err(err) => error_reply(&id, -32600, &format!("invalid request: {err}")),
    }
}
