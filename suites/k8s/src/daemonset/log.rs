//! The agent's pod log: lines read with a cap on their length, and what they say.

use std::collections::{HashSet, VecDeque};
use std::time::Duration;

use futures_util::io::{AsyncBufRead, AsyncBufReadExt};
use nfvi_harness::fleet::{AgentEvent, MAX_LINE_BYTES, NodeError};

/// Non-event lines of the log kept for error messages.
const TAIL: usize = 5;

/// One line of the agent's log.
#[derive(Debug, PartialEq)]
pub(crate) struct Line {
    /// Without its newline; empty when the line was too long.
    pub(crate) bytes: Vec<u8>,
    /// Its length, when it was longer than the cap (its bytes are dropped).
    pub(crate) too_long: Option<usize>,
    /// Whether a newline ended it (false: the stream ended in its middle).
    pub(crate) complete: bool,
}

/// Splits a stream into lines of at most `cap` bytes, never holding more. Cancel-safe: the
/// state changes only after a read completes.
pub(crate) struct LineReader {
    buf: Vec<u8>,
    len: usize,
    cap: usize,
}

impl LineReader {
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            buf: Vec::new(),
            len: 0,
            cap,
        }
    }

    /// The next line; `None` at the end of the stream.
    pub(crate) async fn next<R: AsyncBufRead + Unpin>(
        &mut self,
        r: &mut R,
    ) -> std::io::Result<Option<Line>> {
        loop {
            let chunk = r.fill_buf().await?;
            if chunk.is_empty() {
                return Ok((self.len > 0).then(|| self.take(false)));
            }
            let (n, end) = match chunk.iter().position(|&b| b == b'\n') {
                Some(i) => (i + 1, true),
                None => (chunk.len(), false),
            };
            let body = &chunk[..if end { n - 1 } else { n }];
            self.len += body.len();
            if self.len <= self.cap {
                self.buf.extend_from_slice(body);
            } else {
                self.buf = Vec::new();
            }
            r.consume_unpin(n);
            if end {
                return Ok(Some(self.take(true)));
            }
        }
    }

    fn take(&mut self, complete: bool) -> Line {
        let len = std::mem::take(&mut self.len);
        let bytes = std::mem::take(&mut self.buf);
        Line {
            too_long: (len > self.cap).then_some(len),
            bytes,
            complete,
        }
    }
}

/// What the log of one agent has said so far.
pub(crate) struct LogState<'a> {
    node: &'a str,
    pod: &'a str,
    asked: &'a [String],
    reported: HashSet<String>,
    tail: VecDeque<String>,
    too_long: usize,
}

impl<'a> LogState<'a> {
    pub(crate) fn new(node: &'a str, pod: &'a str, asked: &'a [String]) -> Self {
        Self {
            node,
            pod,
            asked,
            reported: HashSet::new(),
            tail: VecDeque::new(),
            too_long: 0,
        }
    }

    /// Takes one line: an event is handed over; `Some` ends the node's run (`done`, or a
    /// fatal event). Anything else (the agent's standard error shares the log) is kept for
    /// error messages.
    pub(crate) fn line(
        &mut self,
        line: Line,
        events: &mut dyn FnMut(AgentEvent),
    ) -> Option<Result<(), NodeError>> {
        if let Some(len) = line.too_long {
            self.too_long += 1;
            self.remember(&format!(
                "(a line of {len} bytes, longer than the limit of {MAX_LINE_BYTES}, skipped)"
            ));
            return None;
        }
        let text = String::from_utf8_lossy(&line.bytes);
        let text = text.trim_end_matches('\r');
        if text.trim().is_empty() {
            return None;
        }
        let event = match text.trim_start().starts_with('{') {
            true => AgentEvent::parse(text).ok(),
            false => None,
        };
        let Some(event) = event else {
            self.remember(text);
            return None;
        };
        let end = match &event {
            AgentEvent::Finished(c) => {
                self.reported.insert(c.id.clone());
                None
            }
            AgentEvent::Done { .. } => Some(self.done()),
            AgentEvent::Fatal { message } => Some(Err(NodeError::new(format!(
                "the node agent in pod {} on {} refused to run: {message}",
                self.pod, self.node
            )))),
            _ => None,
        };
        events(event);
        end
    }

    fn remember(&mut self, text: &str) {
        if self.tail.len() == TAIL {
            self.tail.pop_front();
        }
        self.tail.push_back(nfvi_harness::truncate_chars(text, 300));
    }

    /// At `done`: an over-long line that may have been a result is an error when results
    /// are missing.
    fn done(&self) -> Result<(), NodeError> {
        let missing = self
            .asked
            .iter()
            .filter(|id| !self.reported.contains(*id))
            .count();
        if self.too_long > 0 && missing > 0 {
            return Err(NodeError::new(format!(
                "the node agent in pod {} on {} wrote {} line(s) longer than {MAX_LINE_BYTES} bytes, which were skipped, and {missing} result(s) are missing",
                self.pod, self.node, self.too_long
            )));
        }
        Ok(())
    }

    pub(crate) fn last_output(&self) -> String {
        if self.tail.is_empty() {
            return "its log holds nothing else".to_owned();
        }
        let lines: Vec<String> = self.tail.iter().map(|l| format!("{l:?}")).collect();
        format!("last lines of its log: {}", lines.join(" "))
    }

    pub(crate) fn stopped(&self) -> NodeError {
        NodeError::new(format!(
            "the run was stopped before the node agent in pod {} on {} finished",
            self.pod, self.node
        ))
    }

    pub(crate) fn overdue(&self, timeout: Duration) -> NodeError {
        NodeError::new(format!(
            "the node agent in pod {} on {} did not finish within {} s (kubernetes.agent_timeout_secs); {}",
            self.pod,
            self.node,
            timeout.as_secs(),
            self.last_output()
        ))
    }
}
