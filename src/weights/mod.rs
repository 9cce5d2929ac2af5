//! Weights on the host: named tensors read from and written to safetensors with the
//! original PyTorch key names, and the [`VarBuilder`] that binds them to networks.

mod builder;
mod stream;
pub mod tfjs;

pub use builder::{DeviceTensor, Init, VarBuilder, WeightSource, keyed_values};
pub use stream::{FileSummary, SafetensorsReader};

use std::collections::BTreeMap;

use half::f16;
use safetensors::{Dtype, SafeTensors};

use crate::error::{Error, Result};

/// A tensor held in host memory as f32, with its PyTorch shape.
#[derive(Debug, Clone, PartialEq)]
pub struct HostTensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

impl HostTensor {
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Self {
        debug_assert_eq!(shape.iter().product::<usize>(), data.len());
        Self { shape, data }
    }
}

/// How a tensor file stores floats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoredPrecision {
    F32,
    F16,
}

impl StoredPrecision {
    /// Bytes per value.
    pub fn width(self) -> usize {
        match self {
            StoredPrecision::F32 => 4,
            StoredPrecision::F16 => 2,
        }
    }
}

/// A set of named tensors, as in a PyTorch state dict.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TensorFile {
    pub tensors: BTreeMap<String, HostTensor>,
}

impl TensorFile {
    /// Parses safetensors bytes. `origin` names the file in errors.
    /// Integer tensors (`num_batches_tracked`) are skipped: no network reads them.
    pub fn from_safetensors(bytes: &[u8], origin: &str) -> Result<Self> {
        let mut tensors = BTreeMap::new();
        let mut reader = SafetensorsReader::new(origin);
        reader.push(bytes, &mut |name, tensor| {
            tensors.insert(name, tensor);
            Ok(())
        })?;
        reader.finish()?;
        Ok(Self { tensors })
    }

    /// The tensors under `prefix`, with the prefix removed: how one network is taken out of a
    /// checkpoint that holds several (`decoder.` and `encoder.` in e4e, `g_ema.` in rosinality,
    /// `backbone.` in DeepfakeBench). Keys outside the prefix are left out. A leading
    /// `module.` on every key (saved from `DataParallel`) is removed first, unless the prefix
    /// itself names it.
    pub fn select_prefix(self, prefix: &str) -> Self {
        Self { tensors: under_prefix(self.tensors, prefix) }
    }

    /// Whether every value survives storage at `precision`: f16 holds magnitudes up to 65504,
    /// and a larger one would be stored as infinite (and refused at load).
    pub fn check_storable(&self, precision: StoredPrecision, origin: &str) -> Result<()> {
        if precision == StoredPrecision::F32 {
            return Ok(());
        }
        let too_large = |t: &HostTensor| t.data.iter().copied().find(|v| v.abs() > f16::MAX.to_f32());
        match self.tensors.iter().find_map(|(name, t)| too_large(t).map(|v| (name, v))) {
            Some((name, v)) => Err(Error::config(format!(
                "{origin}: tensor `{name}` holds {v:e}, beyond f16's range (±65504): store it as f32"
            ))),
            None => Ok(()),
        }
    }

    /// Writes safetensors bytes with the keys in sorted order, so the same tensors give
    /// the same bytes.
    pub fn to_safetensors(&self, precision: StoredPrecision) -> Vec<u8> {
        self.to_safetensors_with(precision, None)
    }

    /// The bytes the tensors' values take stored at `precision` (the file is this and a header).
    pub fn stored_len(&self, precision: StoredPrecision) -> usize {
        self.tensors.values().map(|t| t.data.len()).sum::<usize>() * precision.width()
    }

    /// The tensors split into pieces of at most `max_bytes` each as stored at `precision`, in key
    /// order (a tensor larger than that is a piece of its own): how a large network is stored in
    /// shards that are fetched and cached one by one. The tensors move into the pieces.
    pub fn into_shards(self, max_bytes: usize, precision: StoredPrecision) -> Vec<TensorFile> {
        let mut pieces = vec![TensorFile::default()];
        let mut size = 0;
        for (key, t) in self.tensors {
            let bytes = t.data.len() * precision.width();
            if size > 0 && size + bytes > max_bytes {
                pieces.push(TensorFile::default());
                size = 0;
            }
            size += bytes;
            pieces.last_mut().expect("one piece at least").tensors.insert(key, t);
        }
        pieces
    }

    /// The header's free-form `__metadata__` of safetensors bytes (empty when it has none).
    pub fn metadata_of(bytes: &[u8], origin: &str) -> Result<BTreeMap<String, String>> {
        let (_, meta) = SafeTensors::read_metadata(bytes)
            .map_err(|e| Error::WeightFile { origin: origin.to_string(), reason: e.to_string() })?;
        Ok(meta.metadata().clone().unwrap_or_default().into_iter().collect())
    }

    /// [`TensorFile::to_safetensors`] with the header's `__metadata__`.
    pub fn to_safetensors_with(
        &self,
        precision: StoredPrecision,
        metadata: Option<&BTreeMap<String, String>>,
    ) -> Vec<u8> {
        let bytes: Vec<(String, Vec<usize>, Vec<u8>)> = self
            .tensors
            .iter()
            .map(|(name, t)| {
                let raw = match precision {
                    StoredPrecision::F32 => t.data.iter().flat_map(|v| v.to_le_bytes()).collect(),
                    StoredPrecision::F16 => t.data.iter().flat_map(|v| f16::from_f32(*v).to_le_bytes()).collect(),
                };
                (name.clone(), t.shape.clone(), raw)
            })
            .collect();
        let dtype = match precision {
            StoredPrecision::F32 => Dtype::F32,
            StoredPrecision::F16 => Dtype::F16,
        };
        let views = bytes.iter().map(|(name, shape, raw)| {
            let view = safetensors::tensor::TensorView::new(dtype, shape.clone(), raw).expect("consistent tensor view");
            (name.as_str(), view)
        });
        let metadata = metadata.map(|m| m.clone().into_iter().collect());
        let mut bytes = safetensors::tensor::serialize(views, metadata).expect("serialising in-memory tensors");
        sort_header(&mut bytes);
        bytes
    }
}

/// The entries of a state dict under `prefix`, with the prefix removed (see
/// [`TensorFile::select_prefix`]), whatever the tensors are held as.
pub fn under_prefix<T>(tensors: BTreeMap<String, T>, prefix: &str) -> BTreeMap<String, T> {
    let all_module =
        !prefix.starts_with("module.") && !tensors.is_empty() && tensors.keys().all(|k| k.starts_with("module."));
    tensors
        .into_iter()
        .map(|(k, t)| (if all_module { k["module.".len()..].to_string() } else { k }, t))
        .filter_map(|(k, t)| k.strip_prefix(prefix).map(|rest| (rest.to_string(), t)))
        .collect()
}

/// Rewrites a safetensors header with its keys in sorted order. The writer keeps the metadata
/// in a hash map, whose order changes from run to run; the same tensors and metadata must give
/// the same bytes. Only the order changes, so the header keeps its length and padding.
fn sort_header(bytes: &mut [u8]) {
    let n = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes of header length")) as usize;
    let text = std::str::from_utf8(&bytes[8..8 + n]).expect("a JSON header");
    let json = text.trim_end();
    let value: serde_json::Value = serde_json::from_str(json).expect("the writer's own header");
    let sorted = serde_json::to_string(&value).expect("a JSON value serialises");
    assert_eq!(sorted.len(), json.len(), "sorting keys keeps a compact header's length");
    bytes[8..8 + sorted.len()].copy_from_slice(sorted.as_bytes());
}
