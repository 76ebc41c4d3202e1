//! Reading shell requests so that every one gets a reply. `jupyter-zmq-client` turns a message
//! whose content `jupyter-protocol` cannot parse into an error, losing the header and the
//! client's identities with it: the client would wait for a reply until its timeout. Here the
//! signed frames are read as they came, fields the protocol makes optional but the crate
//! requires are filled in, and a request that still does not parse is kept (as an unknown
//! message, with its header and identities) so that its reply says what was wrong.

use jupyter_protocol::{Header, JupyterMessage, JupyterMessageContent, UnknownMessage};
use jupyter_zmq_client::{Connection, RawMessage};
use serde_json::{json, Value};
use zeromq::SocketRecv;

/// A shell request as read.
pub enum Request {
    Parsed(JupyterMessage),
    /// Signed and addressed, but its content does not parse: reply with this error.
    Unreadable {
        message: JupyterMessage,
        error: String,
    },
}

/// Reads the next shell request. Err for what cannot be answered at all: a socket error, a
/// bad signature (never answered, by the protocol's rules) or a header that is not one.
pub async fn read_request<S: SocketRecv>(connection: &mut Connection<S>) -> anyhow::Result<Request> {
    let raw = RawMessage::from_multipart(connection.socket.recv().await?, &connection.mac)?;
    let header: Header = serde_json::from_slice(&raw.jparts[0])?;
    let mut content: Value = serde_json::from_slice(&raw.jparts[3])?;
    fill_optional_fields(&header.msg_type, &mut content);
    let parsed = JupyterMessageContent::from_type_and_content(&header.msg_type, content.clone());
    let (content, error) = match parsed {
        Ok(content) => (content, None),
        Err(e) => (
            JupyterMessageContent::UnknownMessage(UnknownMessage { msg_type: header.msg_type.clone(), content }),
            Some(format!("the {} could not be read: {e}", header.msg_type)),
        ),
    };
    let message = JupyterMessage {
        zmq_identities: raw.zmq_identities,
        // An empty parent header (`{}`) is no header.
        parent_header: serde_json::from_slice(&raw.jparts[1]).ok(),
        metadata: serde_json::from_slice(&raw.jparts[2]).unwrap_or(Value::Null),
        buffers: raw.jparts.get(4..).map(<[_]>::to_vec).unwrap_or_default(),
        header,
        content,
        channel: None,
    };
    Ok(match error {
        None => Request::Parsed(message),
        Some(error) => Request::Unreadable { message, error },
    })
}

/// Defaults the messaging spec gives fields that `jupyter-protocol` requires: a history
/// search may leave out `n` (all matches), `unique`, `output` and `raw`.
fn fill_optional_fields(msg_type: &str, content: &mut Value) {
    let Some(fields) = content.as_object_mut() else { return };
    if msg_type == "history_request" {
        let search = fields.get("hist_access_type").and_then(Value::as_str) == Some("search");
        for (key, default) in [("output", json!(false)), ("raw", json!(true))] {
            fields.entry(key).or_insert(default);
        }
        if search {
            fields.entry("pattern").or_insert(json!("*"));
            fields.entry("unique").or_insert(json!(false));
            // No `n`: every match. A null is the same.
            if fields.get("n").is_none_or(Value::is_null) {
                fields.insert("n".into(), json!(i32::MAX));
            }
        }
    }
}

/// The reply to a request that could not be read: its type's reply, status `error`, naming
/// the problem, so that the client stops waiting.
pub fn error_reply(request: &JupyterMessage, error: &str) -> JupyterMessage {
    let msg_type = request
        .header
        .msg_type
        .strip_suffix("_request")
        .map_or_else(|| format!("{}_reply", request.header.msg_type), |kind| format!("{kind}_reply"));
    UnknownMessage {
        msg_type,
        content: json!({"status": "error", "ename": "BadRequest", "evalue": error, "traceback": [error]}),
    }
    .as_child_of(request)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_history_search_may_leave_out_what_the_spec_makes_optional() {
        let mut content = json!({"hist_access_type": "search", "pattern": "acc*"});
        fill_optional_fields("history_request", &mut content);
        let parsed = JupyterMessageContent::from_type_and_content("history_request", content).unwrap();
        let JupyterMessageContent::HistoryRequest(jupyter_protocol::HistoryRequest::Search { n, unique, .. }) = parsed
        else {
            panic!("not a search: {parsed:?}");
        };
        assert_eq!((n, unique), (i32::MAX, false));
        // A request without even a pattern is still a search over everything.
        let mut bare = json!({"hist_access_type": "search", "n": null});
        fill_optional_fields("history_request", &mut bare);
        assert!(JupyterMessageContent::from_type_and_content("history_request", bare).is_ok());
    }

    #[test]
    fn an_unreadable_request_gets_its_own_reply_type_with_the_reason() {
        let request = UnknownMessage { msg_type: "complete_request".into(), content: json!({"code": 3}) }
            .as_child_of(&JupyterMessage::new(UnknownMessage { msg_type: "x".into(), content: json!({}) }, None));
        let reply = error_reply(&request, "the complete_request could not be read: invalid type");
        assert_eq!(reply.header.msg_type, "complete_reply");
        assert_eq!(reply.parent_header.as_ref().map(|h| h.msg_id.clone()), Some(request.header.msg_id.clone()));
        let JupyterMessageContent::UnknownMessage(content) = &reply.content else { panic!() };
        assert_eq!(content.content["status"], "error");
        assert!(content.content["evalue"].as_str().unwrap().contains("invalid type"));
    }
}
