//! Entry points for the property targets in `fuzz/` (issue #14), not an API: the raw
//! Engine API answer parser (HTTP head, chunked body, JSON), reached without a socket.

/// An HTTP/1.x answer as the socket could send it: the JSON body of a 200, or an error.
pub fn raw_answer(answer: &[u8]) -> Result<serde_json::Value, crate::raw::RawError> {
    crate::raw::parse(answer)
}
