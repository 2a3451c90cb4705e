//! The `chunked` body decoder (`http::body::Chunked`, through
//! `soute::fuzzing::ChunkedDecoder`), fed from memory split at arbitrary points:
//! it never yields more bytes than it was fed, never reads past the body's end,
//! ends in a bounded number of reads, says done only after `Ok(0)`, and gives the
//! same bytes, the same error kind and the same end position (on success) however the input
//! is split and whatever the size of the caller's buffer.
//! Input: byte 0 = k (0-7), then k piece sizes (the reader hands out at most
//! that many bytes per fill, cycling), then one output-buffer size, then the stream.
#![no_main]

use libfuzzer_sys::fuzz_target;
use soute::fuzzing::ChunkedDecoder;
use std::io::{self, BufRead, Read};

/// An in-memory `BufRead` that hands out its bytes in pieces of the given sizes.
struct Pieces<'a> {
    data: &'a [u8],
    pos: usize,
    sizes: Vec<usize>,
    turn: usize,
    /// The end of the piece currently offered by `fill_buf`.
    offered: usize,
}

impl<'a> Pieces<'a> {
    fn new(data: &'a [u8], sizes: Vec<usize>) -> Self {
        Pieces {
            data,
            pos: 0,
            sizes,
            turn: 0,
            offered: 0,
        }
    }
}

impl Read for Pieces<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let avail = self.fill_buf()?;
        let n = avail.len().min(out.len());
        out[..n].copy_from_slice(&avail[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl BufRead for Pieces<'_> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.offered <= self.pos {
            let size = if self.sizes.is_empty() {
                usize::MAX
            } else {
                self.sizes[self.turn % self.sizes.len()]
            };
            self.turn += 1;
            self.offered = self.pos.saturating_add(size).min(self.data.len());
        }
        Ok(&self.data[self.pos..self.offered])
    }

    fn consume(&mut self, amt: usize) {
        assert!(
            self.pos + amt <= self.offered,
            "consumed more than was offered"
        );
        self.pos += amt;
    }
}

/// Decoded bytes, the error kind if any, and how far into the input it read
/// (on success only: a too-long line is refused at different points).
type Outcome = (Vec<u8>, Option<io::ErrorKind>, usize);

fn decode(stream: &[u8], sizes: Vec<usize>, out_len: usize) -> Outcome {
    let mut src = Pieces::new(stream, sizes);
    let mut decoder = ChunkedDecoder::new();
    let mut out = Vec::new();
    let mut buf = vec![0u8; out_len];
    // Each successful read consumes at least one byte, so this bounds the loop.
    for _ in 0..stream.len() + 2 {
        match decoder.read(&mut src, &mut buf) {
            Ok(0) => {
                assert!(decoder.is_done(), "Ok(0) before the end");
                assert_eq!(
                    decoder.read(&mut src, &mut buf).ok(),
                    Some(0),
                    "read after the end"
                );
                return (out, None, src.pos);
            }
            Ok(n) => {
                assert!(n <= buf.len());
                assert!(!decoder.is_done());
                out.extend_from_slice(&buf[..n]);
                assert!(out.len() <= src.pos, "yielded more bytes than it was fed");
            }
            Err(e) => return (out, Some(e.kind()), 0),
        }
    }
    panic!(
        "no end after {} reads of {} bytes",
        stream.len() + 2,
        stream.len()
    );
}

fuzz_target!(|data: &[u8]| {
    let Some((&k, rest)) = data.split_first() else {
        return;
    };
    let k = usize::from(k % 8);
    if rest.len() < k + 1 {
        return;
    }
    let sizes: Vec<usize> = rest[..k].iter().map(|&b| usize::from(b).max(1)).collect();
    let out_len = usize::from(rest[k]).max(1);
    let stream = &rest[k + 1..];

    let split = decode(stream, sizes, out_len);
    let whole = decode(stream, Vec::new(), 4096);
    let bytewise = decode(stream, vec![1], 1);
    assert!(split.0.len() <= stream.len());
    assert_eq!(split, whole, "split {:?} vs whole", &data[..k + 2]);
    assert_eq!(bytewise, whole, "byte by byte vs whole");
});
