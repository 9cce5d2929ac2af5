//! Safetensors read as its bytes arrive: the header first, then each tensor handed over as soon
//! as its last byte is in. A page fetching a 500 MB encoder holds one tensor's bytes at a time,
//! never the file, and a file read from disk is never held whole either.

use std::collections::BTreeMap;

use half::{bf16, f16};
use safetensors::Dtype;
use safetensors::tensor::Metadata;

use super::HostTensor;
use crate::error::{Error, Result};
use crate::rng::{FNV1A_START, fnv1a_continue};

/// The longest header the safetensors format allows.
const MAX_HEADER: usize = 100_000_000;

/// One tensor of the header, in file order.
struct Entry {
    name: String,
    dtype: Dtype,
    shape: Vec<usize>,
    /// Where its bytes end, from the start of the data.
    end: usize,
}

/// What a whole file turned out to be, once read.
#[derive(Debug, Clone)]
pub struct FileSummary {
    /// FNV-1a of every byte of the file.
    pub fingerprint: u64,
    /// The file's length in bytes.
    pub bytes: usize,
    /// The header's free-form `__metadata__`.
    pub metadata: BTreeMap<String, String>,
}

/// A push parser for safetensors bytes. `push` takes the file's bytes in pieces of any size
/// and hands each float tensor (as f32, finite-checked) to the caller as soon as it is
/// complete; integer tensors (`num_batches_tracked`) are skipped. `finish` checks that the
/// file ended where its header said.
pub struct SafetensorsReader {
    origin: String,
    /// The header's bytes while it is read, then the current tensor's.
    pending: Vec<u8>,
    header_len: Option<usize>,
    /// The header's tensors in file order, once it is read.
    entries: Option<Vec<Entry>>,
    metadata: BTreeMap<String, String>,
    next: usize,
    /// Data bytes received (after the header).
    received: usize,
    fingerprint: u64,
    bytes: usize,
}

impl SafetensorsReader {
    /// A reader for one file; `origin` names it in errors.
    pub fn new(origin: impl Into<String>) -> Self {
        Self {
            origin: origin.into(),
            pending: Vec::new(),
            header_len: None,
            entries: None,
            metadata: BTreeMap::new(),
            next: 0,
            received: 0,
            fingerprint: FNV1A_START,
            bytes: 0,
        }
    }

    fn bad(&self, reason: impl Into<String>) -> Error {
        Error::WeightFile { origin: self.origin.clone(), reason: reason.into() }
    }

    /// The next bytes of the file. `take` receives each tensor completed by them.
    pub fn push(&mut self, chunk: &[u8], take: &mut dyn FnMut(String, HostTensor) -> Result<()>) -> Result<()> {
        self.fingerprint = fnv1a_continue(self.fingerprint, chunk);
        self.bytes += chunk.len();
        let mut rest = chunk;
        while !rest.is_empty() {
            let Some(n) = self.header_len else {
                let used = (8 - self.pending.len()).min(rest.len());
                self.pending.extend_from_slice(&rest[..used]);
                rest = &rest[used..];
                if self.pending.len() == 8 {
                    let n = u64::from_le_bytes(self.pending[..].try_into().expect("8 bytes"));
                    if n > MAX_HEADER as u64 {
                        return Err(self.bad(format!("a header of {n} bytes, more than the {MAX_HEADER} allowed")));
                    }
                    self.header_len = Some(n as usize);
                    self.pending.clear();
                    if n == 0 {
                        self.read_header(take)?;
                    }
                }
                continue;
            };
            let Some(entries) = &self.entries else {
                let used = (n - self.pending.len()).min(rest.len());
                self.pending.extend_from_slice(&rest[..used]);
                rest = &rest[used..];
                if self.pending.len() == n {
                    self.read_header(take)?;
                }
                continue;
            };
            let Some(end) = entries.get(self.next).map(|e| e.end) else {
                return Err(self.bad(format!("{} bytes past the end its header gives", self.bytes - self.expected())));
            };
            let used = (end - self.received).min(rest.len());
            self.pending.extend_from_slice(&rest[..used]);
            self.received += used;
            rest = &rest[used..];
            self.complete(take)?;
        }
        Ok(())
    }

    /// The file's length as its header gives it (once the header is read).
    fn expected(&self) -> usize {
        let data = self.entries.as_ref().and_then(|e| e.last()).map_or(0, |e| e.end);
        8 + self.header_len.unwrap_or(0) + data
    }

    fn read_header(&mut self, take: &mut dyn FnMut(String, HostTensor) -> Result<()>) -> Result<()> {
        let text = std::str::from_utf8(&self.pending).map_err(|e| self.bad(format!("header is not UTF-8: {e}")))?;
        let header: Metadata =
            serde_json::from_str(text).map_err(|e| self.bad(format!("header does not describe the tensors: {e}")))?;
        let entries = header
            .offset_keys()
            .into_iter()
            .map(|name| {
                let info = header.info(&name).expect("a key of this header");
                Entry { dtype: info.dtype, shape: info.shape.clone(), end: info.data_offsets.1, name }
            })
            .collect();
        self.metadata = header.metadata().clone().unwrap_or_default().into_iter().collect();
        self.entries = Some(entries);
        self.pending = Vec::new();
        self.complete(take)
    }

    /// Hands over every tensor whose bytes are all in (empty tensors at once).
    fn complete(&mut self, take: &mut dyn FnMut(String, HostTensor) -> Result<()>) -> Result<()> {
        let entries = self.entries.as_ref().expect("header read");
        while let Some(entry) = entries.get(self.next).filter(|e| e.end == self.received) {
            let raw = std::mem::take(&mut self.pending);
            self.next += 1;
            let decoded = decode(&entry.name, entry.dtype, &raw)
                .map_err(|reason| Error::WeightFile { origin: self.origin.clone(), reason })?;
            if let Some(data) = decoded {
                take(entry.name.clone(), HostTensor::new(entry.shape.clone(), data))?;
            }
        }
        Ok(())
    }

    /// Ends the file: fails when it stopped short of what its header describes.
    pub fn finish(self) -> Result<FileSummary> {
        let Some(n) = self.header_len else {
            return Err(self.bad(format!("{} bytes, too short for a header's length (8 bytes)", self.bytes)));
        };
        let Some(entries) = &self.entries else {
            return Err(self.bad(format!("ends inside its header ({} of {n} bytes)", self.bytes - 8)));
        };
        if let Some(entry) = entries.get(self.next) {
            return Err(self.bad(format!(
                "ends after {} of the {} bytes its header gives, inside tensor `{}`",
                self.bytes,
                self.expected(),
                entry.name
            )));
        }
        Ok(FileSummary { fingerprint: self.fingerprint, bytes: self.bytes, metadata: self.metadata })
    }
}

/// A tensor's bytes as f32 (`None` for the integer dtypes no network reads).
fn decode(name: &str, dtype: Dtype, raw: &[u8]) -> std::result::Result<Option<Vec<f32>>, String> {
    let data: Vec<f32> = match dtype {
        Dtype::F32 => raw.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
        Dtype::F16 => raw.chunks_exact(2).map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
        Dtype::BF16 => raw.chunks_exact(2).map(|b| bf16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
        Dtype::F64 => {
            raw.chunks_exact(8).map(|b| f64::from_le_bytes(b.try_into().expect("chunk of 8")) as f32).collect()
        }
        Dtype::I64 | Dtype::I32 | Dtype::U8 | Dtype::BOOL => return Ok(None),
        other => return Err(format!("tensor `{name}` has unsupported dtype {other:?}")),
    };
    if data.iter().any(|v| !v.is_finite()) {
        return Err(format!("tensor `{name}` holds NaN or infinite values"));
    }
    Ok(Some(data))
}
