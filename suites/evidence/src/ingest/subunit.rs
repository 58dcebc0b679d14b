//! subunit v2 streams (stestr, Tempest), parsed here after the subunit README "Version 2" and
//! python-subunit's `v2.py`: `0xB3`, flags (u16 BE), length (varint, the whole packet), the
//! optional fields in order (timestamp, test id, tags, MIME type, file content, route code),
//! then a CRC32 of everything before it.
//!
//! Bytes between packets that do not start one (a line of text some runner printed) are skipped
//! to the next newline, as the protocol resynchronises; a packet that starts but is malformed,
//! truncated or fails its CRC refuses the file, naming the byte offset and the packet number:
//! evidence is not repaired.

use std::collections::HashMap;
use std::path::Path;

use chrono::{DateTime, Utc};

use super::{IngestError, ParseError, provenance};
use crate::model::{Ingested, Recorded, Report, TempestRun, TempestTest, TestStatus, tempest_uuid};

const SIGNATURE: u8 = 0xb3;
/// The most a packet may be (the README: "< 4 MiB").
const MAX_PACKET: usize = 4 << 20;

const F_TEST_ID: u16 = 0x0800;
const F_ROUTE: u16 = 0x0400;
const F_TIMESTAMP: u16 = 0x0200;
const F_TAGS: u16 = 0x0080;
const F_FILE: u16 = 0x0040;
const F_MIME: u16 = 0x0020;
const F_RESERVED: u16 = 0x0008;

/// A parsed stream.
#[derive(Debug, Default)]
pub struct Stream {
    /// The tests with their final status.
    pub run: TempestRun,
    /// Packets read.
    pub packets: usize,
    /// Bytes skipped between packets (not subunit).
    pub skipped_bytes: usize,
    /// The first timestamp in the stream.
    pub first: Option<DateTime<Utc>>,
}

struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
    end: usize,
    start: usize,
    packet: usize,
    /// The stream offset of `data[0]`.
    base: usize,
}

impl Cursor<'_> {
    fn err(&self, message: impl Into<String>) -> ParseError {
        ParseError::at(
            format!(
                "byte {} (packet {}, starting at byte {})",
                self.base + self.pos,
                self.packet,
                self.base + self.start
            ),
            message,
        )
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&[u8], ParseError> {
        if self.end - self.pos < n {
            return Err(self.err(format!("{what} runs past the end of the packet")));
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn varint(&mut self, what: &str) -> Result<usize, ParseError> {
        let first = *self.take(1, what)?.first().unwrap_or(&0);
        let more = usize::from(first >> 6);
        let mut v = usize::from(first & 0x3f);
        for b in self.take(more, what)? {
            v = (v << 8) | usize::from(*b);
        }
        Ok(v)
    }

    fn string(&mut self, what: &str) -> Result<String, ParseError> {
        let n = self.varint(what)?;
        let at = self.pos;
        let bytes = self.take(n, what)?;
        if bytes.contains(&0) {
            self.pos = at;
            return Err(self.err(format!("{what} contains NUL")));
        }
        match std::str::from_utf8(bytes) {
            Ok(s) => Ok(s.to_owned()),
            Err(_) => {
                self.pos = at;
                Err(self.err(format!("{what} is not UTF-8")))
            }
        }
    }
}

/// One subunit v2 packet, decoded: what the stream says about one test (or a file attached to
/// it) at one moment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Packet {
    /// The packet's number in the stream, from 1.
    pub number: usize,
    /// When it was written.
    pub timestamp: Option<DateTime<Utc>>,
    /// The test it is about.
    pub test_id: Option<String>,
    /// The status in the flags: 0 undefined, 1 exists, 2 inprogress, 3 success, 4 uxsuccess,
    /// 5 skip, 6 fail, 7 xfail.
    pub status: u8,
    /// Tags (`worker-0`).
    pub tags: Vec<String>,
    /// A file attached (its name, such as `reason` or `traceback`, and its bytes).
    pub file: Option<(String, Vec<u8>)>,
    /// The file's MIME type.
    pub mime: Option<String>,
}

/// Decodes packets from bytes given as they arrive (a running `tempest run --subunit`), so that
/// a reader can count tests while the stream is still being written. [`parse`] is this over
/// a whole file.
#[derive(Debug, Default)]
pub struct Decoder {
    buf: Vec<u8>,
    /// Bytes consumed before `buf`.
    offset: usize,
    packets: usize,
    /// Bytes skipped between packets (not subunit).
    pub skipped_bytes: usize,
}

impl Decoder {
    /// A decoder at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Packets decoded so far.
    pub fn packets(&self) -> usize {
        self.packets
    }

    /// Adds bytes and returns every packet they complete. A malformed packet is an error
    /// naming its byte offset in the whole stream; the decoder should not be used after one.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<Packet>, ParseError> {
        self.buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        let mut pos = 0;
        let result = loop {
            match self.next(pos, false) {
                Ok(Some((p, next))) => {
                    pos = next;
                    if let Some(p) = p {
                        out.push(p);
                    }
                }
                Ok(None) => break Ok(out),
                Err(e) => break Err(e),
            }
        };
        self.buf.drain(..pos);
        self.offset += pos;
        result
    }

    /// Ends the stream: bytes left over are a truncated packet (an error) or text.
    pub fn finish(&mut self) -> Result<Vec<Packet>, ParseError> {
        let mut out = Vec::new();
        let mut pos = 0;
        while let Some((p, next)) = self.next(pos, true)? {
            pos = next;
            if let Some(p) = p {
                out.push(p);
            }
        }
        self.buf.drain(..pos);
        self.offset += pos;
        Ok(out)
    }

    /// The packet (or skipped text) at `pos` of the buffer and where the next begins;
    /// `None` when more bytes are needed (or, at the end, nothing is left).
    #[allow(clippy::type_complexity)]
    fn next(
        &mut self,
        pos: usize,
        at_end: bool,
    ) -> Result<Option<(Option<Packet>, usize)>, ParseError> {
        let data = &self.buf[..];
        if pos >= data.len() {
            return Ok(None);
        }
        if data[pos] != SIGNATURE {
            let next = match data[pos..].iter().position(|b| *b == b'\n') {
                Some(i) => pos + i + 1,
                // A line longer than any packet is not waited for: it is skipped as it comes.
                None if at_end || data.len() - pos > MAX_PACKET => data.len(),
                None => return Ok(None),
            };
            self.skipped_bytes += next - pos;
            return Ok(Some((None, next)));
        }
        // The header (signature, flags, the length's varint) must be complete to know the
        // length: at most 1 + 2 + 4 bytes.
        if !at_end && data.len() - pos < 7 {
            let have = data.len() - pos;
            let need = if have >= 4 {
                4 + usize::from(data[pos + 3] >> 6)
            } else {
                7
            };
            if have < need {
                return Ok(None);
            }
        }
        let number = self.packets + 1;
        let base = self.offset;
        let mut c = Cursor {
            data,
            pos: pos + 1,
            end: data.len(),
            start: pos,
            packet: number,
            base,
        };
        let head = c.take(2, "the flags")?;
        let flags = u16::from_be_bytes([head[0], head[1]]);
        if flags >> 12 != 2 {
            c.pos = pos + 1;
            return Err(c.err(format!(
                "version {} in the flags ({flags:#06x}); expected subunit v2",
                flags >> 12
            )));
        }
        if flags & F_RESERVED != 0 {
            c.pos = pos + 1;
            return Err(c.err(format!("reserved flag 0x0008 set ({flags:#06x})")));
        }
        let length = c.varint("the packet length")?;
        if length > MAX_PACKET || length < c.pos - pos + 4 {
            return Err(c.err(format!(
                "packet length {length}; expected {} to {MAX_PACKET} bytes",
                c.pos - pos + 4
            )));
        }
        if pos + length > data.len() {
            if !at_end {
                return Ok(None);
            }
            return Err(c.err(format!(
                "truncated: the packet declares {length} bytes, {} remain",
                data.len() - pos
            )));
        }
        let crc_at = pos + length - 4;
        let want = u32::from_be_bytes([
            data[crc_at],
            data[crc_at + 1],
            data[crc_at + 2],
            data[crc_at + 3],
        ]);
        let got = crc32fast::hash(&data[pos..crc_at]);
        if got != want {
            c.pos = crc_at;
            return Err(c.err(format!(
                "CRC32 {got:08x} does not match the packet's {want:08x}: corrupted"
            )));
        }
        c.end = crc_at;
        let mut p = Packet {
            number,
            status: (flags & 0x7) as u8,
            ..Packet::default()
        };
        if flags & F_TIMESTAMP != 0 {
            let s = c.take(4, "the timestamp")?;
            let secs = u32::from_be_bytes([s[0], s[1], s[2], s[3]]);
            let nanos = c.varint("the timestamp's nanoseconds")?;
            p.timestamp =
                DateTime::<Utc>::from_timestamp(i64::from(secs), (nanos % 1_000_000_000) as u32);
        }
        if flags & F_TEST_ID != 0 {
            p.test_id = Some(c.string("the test id")?);
        }
        if flags & F_TAGS != 0 {
            let n = c.varint("the tag count")?;
            for _ in 0..n {
                p.tags.push(c.string("a tag")?);
            }
        }
        if flags & F_MIME != 0 {
            p.mime = Some(c.string("the MIME type")?);
        }
        if flags & F_FILE != 0 {
            let name = c.string("the file name")?;
            let n = c.varint("the file length")?;
            p.file = Some((name, c.take(n, "the file content")?.to_vec()));
        }
        if flags & F_ROUTE != 0 {
            c.string("the route code")?;
        }
        if c.pos != crc_at {
            return Err(c.err(format!(
                "{} bytes left before the CRC that no flag accounts for",
                crc_at - c.pos
            )));
        }
        self.packets = number;
        Ok(Some((Some(p), pos + length)))
    }
}

/// Parses a subunit v2 stream.
pub fn parse(data: &[u8]) -> Result<Stream, ParseError> {
    let mut out = Stream {
        run: TempestRun {
            format: "subunit v2",
            tests: Vec::new(),
        },
        ..Stream::default()
    };
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut decoder = Decoder::new();
    let mut packets = decoder.push(data)?;
    packets.extend(decoder.finish()?);
    for p in packets {
        if out.first.is_none() {
            out.first = p.timestamp;
        }
        if let Some(id) = p.test_id {
            record(&mut out.run, &mut index, id, u16::from(p.status));
        }
    }
    out.packets = decoder.packets();
    out.skipped_bytes = decoder.skipped_bytes;
    if out.packets == 0 {
        return Err(ParseError::whole(
            "no subunit v2 packet (0xB3) in the stream",
        ));
    }
    Ok(out)
}

/// The status a packet's status code gives a test (`None`: undefined, no change).
pub fn status_of(code: u8) -> Option<TestStatus> {
    match code {
        1 | 2 => Some(TestStatus::Incomplete),
        3 | 7 => Some(TestStatus::Passed),
        4 | 6 => Some(TestStatus::Failed),
        5 => Some(TestStatus::Skipped),
        _ => None,
    }
}

fn record(run: &mut TempestRun, index: &mut HashMap<String, usize>, id: String, status: u16) {
    let Some(status) = status_of(status as u8) else {
        return;
    };
    match index.get(&id) {
        Some(&i) => {
            if status != TestStatus::Incomplete {
                run.tests[i].status = status;
            }
        }
        None => {
            index.insert(id.clone(), run.tests.len());
            run.tests.push(TempestTest {
                uuid: tempest_uuid(&id),
                id,
                status,
            });
        }
    }
}

/// Ingests a subunit v2 file.
pub fn ingest(path: &Path, data: &[u8]) -> Result<Ingested, IngestError> {
    let stream = parse(data).map_err(|e| e.in_file(path))?;
    let tempest = stream
        .run
        .tests
        .iter()
        .any(|t| t.id.starts_with("tempest."));
    let p = provenance(if tempest { "tempest" } else { "subunit" }, path, data);
    Ok(Ingested {
        input: path.to_owned(),
        provenance: vec![p],
        run_at: stream.first,
        run_at_source: "file",
        recorded: Recorded::default(),
        report: Report::Tempest(stream.run),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The subunit README's example packet: a test id `foo`, status `exists`... as v2 bytes.
    #[test]
    fn readme_example_packet() {
        let p = [
            0xb3, 0x29, 0x01, 0x0c, 0x03, b'f', b'o', b'o', 0x08, 0x55, 0x5f, 0x1b,
        ];
        let s = parse(&p).unwrap();
        assert_eq!(s.packets, 1);
        assert_eq!(s.run.tests[0].id, "foo");
        assert_eq!(s.run.tests[0].status, TestStatus::Incomplete);
    }

    #[test]
    fn junk_lines_are_skipped_and_corruption_refused() {
        let p = [
            0xb3, 0x29, 0x01, 0x0c, 0x03, b'f', b'o', b'o', 0x08, 0x55, 0x5f, 0x1b,
        ];
        let mut with_text = p.to_vec();
        with_text.extend_from_slice(b"some text\n");
        with_text.extend_from_slice(&p);
        let s = parse(&with_text).unwrap();
        assert_eq!((s.packets, s.skipped_bytes), (2, 10));
        let mut bad = p;
        bad[6] = b'x';
        let e = parse(&bad).unwrap_err();
        assert!(e.message.contains("CRC32"), "{e:?}");
        assert_eq!(
            e.at.as_deref(),
            Some("byte 8 (packet 1, starting at byte 0)")
        );
        let e = parse(&p[..7]).unwrap_err();
        assert!(e.message.contains("truncated"), "{e:?}");
    }

    #[test]
    fn bytes_given_one_at_a_time_decode_as_the_whole() {
        let p = [
            0xb3, 0x29, 0x01, 0x0c, 0x03, b'f', b'o', b'o', 0x08, 0x55, 0x5f, 0x1b,
        ];
        let mut stream = p.to_vec();
        stream.extend_from_slice(b"text between\n");
        stream.extend_from_slice(&p);
        let mut d = Decoder::new();
        let mut got = Vec::new();
        for b in &stream {
            got.extend(d.push(std::slice::from_ref(b)).unwrap());
        }
        got.extend(d.finish().unwrap());
        assert_eq!(got.len(), 2);
        assert_eq!(got[1].number, 2);
        assert_eq!(got[1].test_id.as_deref(), Some("foo"));
        assert_eq!(d.skipped_bytes, 13);
        // A truncated packet waits for more bytes, and is an error only at the end.
        let mut d = Decoder::new();
        assert!(d.push(&p[..7]).unwrap().is_empty());
        let e = d.finish().unwrap_err();
        assert!(e.message.contains("truncated"), "{e:?}");
        // Offsets name the whole stream's bytes, whatever was consumed before.
        let mut d = Decoder::new();
        d.push(&p).unwrap();
        let mut bad = p;
        bad[6] = b'x';
        let e = d.push(&bad).unwrap_err();
        assert_eq!(
            e.at.as_deref(),
            Some("byte 20 (packet 2, starting at byte 12)")
        );
    }

    #[test]
    fn varints_of_each_width() {
        for (bytes, want) in [
            (vec![0x05], 5usize),
            (vec![0x41, 0x00], 256),
            (vec![0x80, 0x01, 0x00], 256),
            (vec![0xc0, 0x00, 0x01, 0x00], 256),
            (vec![0xff, 0xff, 0xff, 0xff], (1 << 30) - 1),
        ] {
            let mut c = Cursor {
                data: &bytes,
                pos: 0,
                end: bytes.len(),
                start: 0,
                packet: 1,
                base: 0,
            };
            assert_eq!(c.varint("n").unwrap(), want);
        }
    }
}
