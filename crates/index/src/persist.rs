//! The index file format and its safe writing.
//!
//! A file is `magic (8) ‖ version (u32) ‖ kind (u32) ‖ body length (u64) ‖ body ‖
//! CRC-32 of everything before it (u32)`, little-endian. Writing goes to `<file>.tmp`,
//! is fsynced, renamed over the old file and the directory fsynced: a crash leaves
//! either the old file or the new one, and a torn or altered file fails its checksum
//! instead of opening wrong. Files are read through a memory map; a section written after
//! [`Encoder::align4`] starts 4-byte aligned in the file, so an index can serve its `f32`
//! vectors from the mapping instead of copying them (version 2).

use crate::IndexError;
use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

const MAGIC: &[u8; 8] = b"RKINDEX\0";
/// The format version this build writes and reads.
pub const FORMAT_VERSION: u32 = 3;
const HEADER: usize = 8 + 4 + 4 + 8;

fn io(e: std::io::Error) -> IndexError {
    IndexError::Io(e.to_string())
}

fn corrupt(what: impl Into<String>) -> IndexError {
    IndexError::Corrupt(what.into())
}

/// Appends little-endian values.
#[derive(Default)]
pub(crate) struct Encoder {
    pub buf: Vec<u8>,
}

impl Encoder {
    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    pub fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn f64(&mut self, v: f64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    pub fn f32s(&mut self, v: &[f32]) {
        self.u64(v.len() as u64);
        self.buf.reserve(v.len() * 4);
        for x in v {
            self.buf.extend_from_slice(&x.to_le_bytes());
        }
    }
    pub fn u32s(&mut self, v: &[u32]) {
        self.u64(v.len() as u64);
        self.buf.reserve(v.len() * 4);
        for x in v {
            self.buf.extend_from_slice(&x.to_le_bytes());
        }
    }
    pub fn u64s(&mut self, v: &[u64]) {
        self.u64(v.len() as u64);
        for x in v {
            self.buf.extend_from_slice(&x.to_le_bytes());
        }
    }
    pub fn bytes(&mut self, v: &[u8]) {
        self.u64(v.len() as u64);
        self.buf.extend_from_slice(v);
    }
    /// Pads (a count byte, then zeros) so the next section's data — after its 8-byte
    /// length — starts at a multiple of 4 in the file (the body starts at offset 24).
    pub fn align4(&mut self) {
        let pad = (4 - (self.buf.len() + 1) % 4) % 4;
        self.u8(pad as u8);
        self.buf.extend(std::iter::repeat_n(0u8, pad));
    }
}

/// Reads little-endian values, failing (never panicking) on short input.
pub(crate) struct Decoder<'a> {
    data: &'a [u8],
    pos: usize,
    /// Offset of `data` in the file.
    origin: usize,
}

impl<'a> Decoder<'a> {
    pub fn new(data: &'a [u8], origin: usize) -> Self {
        Decoder {
            data,
            pos: 0,
            origin,
        }
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], IndexError> {
        let end = self
            .pos
            .checked_add(n)
            .ok_or_else(|| corrupt("length overflow"))?;
        let s = self
            .data
            .get(self.pos..end)
            .ok_or_else(|| corrupt("file ends early"))?;
        self.pos = end;
        Ok(s)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], IndexError> {
        let s = self.take(N)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }
    pub fn u8(&mut self) -> Result<u8, IndexError> {
        Ok(self.take(1)?[0])
    }
    pub fn u32(&mut self) -> Result<u32, IndexError> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    pub fn u64(&mut self) -> Result<u64, IndexError> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    pub fn f64(&mut self) -> Result<f64, IndexError> {
        Ok(f64::from_le_bytes(self.array()?))
    }
    fn len(&mut self, width: usize) -> Result<usize, IndexError> {
        let n = usize::try_from(self.u64()?).map_err(|_| corrupt("length"))?;
        if n.saturating_mul(width) > self.data.len() - self.pos {
            return Err(corrupt("section longer than the file"));
        }
        Ok(n)
    }
    pub fn f32s(&mut self) -> Result<Vec<f32>, IndexError> {
        let n = self.len(4)?;
        let s = self.take(n * 4)?;
        Ok(s.chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }
    pub fn u32s(&mut self) -> Result<Vec<u32>, IndexError> {
        let n = self.len(4)?;
        let s = self.take(n * 4)?;
        Ok(s.chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }
    pub fn u64s(&mut self) -> Result<Vec<u64>, IndexError> {
        let n = self.len(8)?;
        let s = self.take(n * 8)?;
        Ok(s.chunks_exact(8)
            .map(|c| u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
            .collect())
    }
    pub fn bytes(&mut self) -> Result<Vec<u8>, IndexError> {
        let n = self.len(1)?;
        Ok(self.take(n)?.to_vec())
    }
    /// Skips the padding [`Encoder::align4`] wrote.
    pub fn align4(&mut self) -> Result<(), IndexError> {
        let pad = usize::from(self.u8()?);
        if pad > 3 {
            return Err(corrupt("padding"));
        }
        self.take(pad)?;
        Ok(())
    }
    /// An `f32` section left in place: its byte offset in the file and its length.
    pub fn f32s_span(&mut self) -> Result<(usize, usize), IndexError> {
        let n = self.len(4)?;
        let at = self.origin + self.pos;
        self.take(n * 4)?;
        Ok((at, n))
    }
    pub fn finish(&self) -> Result<(), IndexError> {
        if self.pos == self.data.len() {
            Ok(())
        } else {
            Err(corrupt("trailing bytes"))
        }
    }
}

/// Writes `body` as an index file of `kind`, atomically and durably.
pub(crate) fn write_file(path: &Path, kind: u32, body: &[u8]) -> Result<(), IndexError> {
    let mut head = Vec::with_capacity(HEADER);
    head.extend_from_slice(MAGIC);
    head.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    head.extend_from_slice(&kind.to_le_bytes());
    head.extend_from_slice(&(body.len() as u64).to_le_bytes());
    let mut crc = crc32fast::Hasher::new();
    crc.update(&head);
    crc.update(body);
    let tmp = path.with_extension("tmp");
    {
        let mut f = File::create(&tmp).map_err(io)?;
        f.write_all(&head).map_err(io)?;
        f.write_all(body).map_err(io)?;
        f.write_all(&crc.finalize().to_le_bytes()).map_err(io)?;
        f.sync_all().map_err(io)?;
    }
    std::fs::rename(&tmp, path).map_err(io)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
    }
    Ok(())
}

/// Maps an index file, checks magic, version, kind and checksum, and hands the body to
/// `decode`.
pub(crate) fn read_file<T>(
    path: &Path,
    kind: u32,
    decode: impl FnOnce(&mut Decoder<'_>, &Arc<memmap2::Mmap>) -> Result<T, IndexError>,
) -> Result<T, IndexError> {
    let file = File::open(path).map_err(io)?;
    let map = Arc::new(crate::raw::map_file(&file).map_err(io)?);
    let data: &[u8] = &map;
    if data.len() < HEADER + 4 || &data[..8] != MAGIC {
        return Err(corrupt("not a regelkreis index file"));
    }
    let mut d = Decoder::new(&data[8..HEADER], 8);
    let version = d.u32()?;
    if version != FORMAT_VERSION {
        return Err(IndexError::Version(version));
    }
    let file_kind = d.u32()?;
    if file_kind != kind {
        return Err(corrupt(format!("index kind {file_kind}, expected {kind}")));
    }
    let len = usize::try_from(d.u64()?).map_err(|_| corrupt("length"))?;
    if HEADER.checked_add(len).and_then(|x| x.checked_add(4)) != Some(data.len()) {
        return Err(corrupt(
            "file length does not match its header (torn write?)",
        ));
    }
    let (content, tail) = data.split_at(HEADER + len);
    let stored = u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]);
    if crc32fast::hash(content) != stored {
        return Err(corrupt("checksum mismatch"));
    }
    let mut body = Decoder::new(&content[HEADER..], HEADER);
    let value = decode(&mut body, &map)?;
    body.finish()?;
    Ok(value)
}
