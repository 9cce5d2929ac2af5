//! Binds networks to weights by their original PyTorch key names.
//!
//! A network's constructor asks its [`VarBuilder`] for each tensor by the key the PyTorch
//! module would use (`convs.3.conv.modulation.weight`). When loading, the builder checks
//! that the key exists with that shape; when creating, it draws a seeded initial value.
//! Problems are collected rather than raised one by one, so a user sees every missing,
//! unexpected or mis-shaped key of a checkpoint in one error.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::fmt::Display;

use burn::module::{Param, ParamId, RunningState};
use burn::tensor::{Device, Tensor, TensorData};

use super::{HostTensor, TensorFile};
use crate::error::{Error, Result};
use crate::rng::{SeededRng, fnv1a};

/// How a freshly created tensor is filled.
#[derive(Debug, Clone)]
pub enum Init {
    Zeros,
    Ones,
    Constant(f32),
    Normal {
        std: f32,
    },
    /// Kaiming-uniform-like bound, as PyTorch's default conv/linear initialisation.
    Uniform {
        bound: f32,
    },
}

/// A tensor already on its device, uploaded while its file streamed in, with its PyTorch shape.
#[derive(Debug, Clone)]
pub struct DeviceTensor {
    pub shape: Vec<usize>,
    flat: Tensor<1>,
    /// The values as well, for a tensor of a few values: binding checks architecture constants
    /// (FIR kernels) by value, and a device cannot be read back synchronously in the browser.
    small: Option<Vec<f32>>,
}

impl DeviceTensor {
    /// The most values a tensor may have for a copy to stay on the host (a 4 × 4 kernel has 16).
    const HOST_COPY_UP_TO: usize = 64;

    /// Moves a host tensor onto `device`.
    pub fn upload(t: HostTensor, device: &Device) -> Self {
        let small = (t.data.len() <= Self::HOST_COPY_UP_TO).then(|| t.data.clone());
        let n = t.data.len();
        let flat = Tensor::from_data(TensorData::new(t.data, [n]), device);
        Self { shape: t.shape, flat, small }
    }
}

#[derive(Debug)]
enum Mode {
    Checkpoint(TensorFile),
    /// Tensors already on the device, as [`DeviceTensor::upload`] left them.
    Uploaded(std::collections::BTreeMap<String, DeviceTensor>),
    Seeded(SeededRng),
    /// Values from the key name and a seed ([`keyed_values`]): reproducible in any language.
    Keyed(u64),
    /// Names and shapes only: parameters stay uninitialised, nothing is allocated for them.
    ShapesOnly,
}

#[derive(Debug)]
struct State {
    origin: String,
    mode: Mode,
    used: BTreeSet<String>,
    problems: Vec<String>,
    bound: TensorFile,
    /// Whether `bound` keeps a copy of every tensor for `finish` to return. Loading a zoo
    /// does not need it, and at full size it is a gigabyte.
    keep_bound: bool,
    /// The key of every trainable parameter and running statistic, for writing a trained
    /// network back.
    params: std::collections::BTreeMap<ParamId, String>,
}

/// Where a network's tensors come from: a checkpoint, or a seeded initialisation.
#[derive(Debug)]
pub struct WeightSource {
    state: RefCell<State>,
}

impl WeightSource {
    /// Tensors from a checkpoint; `origin` names it in errors.
    pub fn checkpoint(file: TensorFile, origin: impl Into<String>) -> Self {
        Self::with(Mode::Checkpoint(file), origin.into())
    }

    /// [`WeightSource::checkpoint`] for loading: each tensor moves from the file into the
    /// network (no copy stays behind), and `finish` checks the binding but returns no tensors.
    pub fn load(file: TensorFile, origin: impl Into<String>) -> Self {
        let source = Self::checkpoint(file, origin);
        source.state.borrow_mut().keep_bound = false;
        source
    }

    /// Tensors already on the device (a streamed file's), bound by moving each into its network;
    /// `finish` checks the binding but returns no tensors.
    pub fn uploaded(tensors: std::collections::BTreeMap<String, DeviceTensor>, origin: impl Into<String>) -> Self {
        let source = Self::with(Mode::Uploaded(tensors), origin.into());
        source.state.borrow_mut().keep_bound = false;
        source
    }

    /// Fresh tensors drawn from `seed`.
    pub fn seeded(seed: u64) -> Self {
        Self::with(Mode::Seeded(SeededRng::new(seed)), format!("seed {seed}"))
    }

    /// Every tensor filled by [`keyed_values`] from its key: the weights that full-size parity
    /// fixtures are made with, so a fixture stores inputs and outputs but no weights.
    pub fn keyed(seed: u64) -> Self {
        Self::with(Mode::Keyed(seed), format!("keyed seed {seed}"))
    }

    /// Only the key names and shapes a network declares (`finish` returns them with empty
    /// data): how full-size architectures are checked against checkpoint key lists.
    pub fn shapes_only() -> Self {
        Self::with(Mode::ShapesOnly, "shapes".into())
    }

    fn with(mode: Mode, origin: String) -> Self {
        Self {
            state: RefCell::new(State {
                origin,
                mode,
                used: BTreeSet::new(),
                problems: Vec::new(),
                bound: TensorFile::default(),
                keep_bound: true,
                params: Default::default(),
            }),
        }
    }

    pub fn root(&self, device: &Device) -> VarBuilder<'_> {
        VarBuilder { source: self, path: String::new(), device: device.clone() }
    }

    /// Each trainable parameter's and running statistic's id and key, as built so far.
    pub fn param_keys(&self) -> std::collections::BTreeMap<ParamId, String> {
        self.state.borrow().params.clone()
    }

    /// Ends the binding. Fails with every problem found: missing keys, wrong shapes and keys
    /// the network does not have. On success returns the tensors the network now holds, in
    /// checkpoint layout, ready to be saved.
    pub fn finish(self) -> Result<TensorFile> {
        let mut state = self.state.into_inner();
        let left: Vec<(&String, &Vec<usize>)> = match &state.mode {
            Mode::Checkpoint(file) => file.tensors.iter().map(|(k, t)| (k, &t.shape)).collect(),
            Mode::Uploaded(tensors) => tensors.iter().map(|(k, t)| (k, &t.shape)).collect(),
            _ => Vec::new(),
        };
        let unexpected: Vec<String> = left
            .into_iter()
            .filter(|(key, _)| !state.used.contains(*key) && !key.ends_with("num_batches_tracked"))
            .map(|(key, shape)| format!("unexpected key `{key}` {shape:?}"))
            .collect();
        state.problems.extend(unexpected);
        if state.problems.is_empty() {
            Ok(state.bound)
        } else {
            Err(Error::WeightMismatch { origin: state.origin, problems: state.problems })
        }
    }
}

/// Deterministic stand-in weights for a state-dict key: standard normals seeded by
/// `seed ^ fnv1a(key)`, shaped by a rule on the key so every network stays numerically sane
/// (variances near 1, BatchNorm variances positive, modulation biases near 1).
/// `tools/fixtures/keyed.py` implements the same rule for the PyTorch side.
pub fn keyed_values(seed: u64, key: &str, shape: &[usize]) -> Vec<f32> {
    let numel = shape.iter().product::<usize>();
    let n = SeededRng::new(seed ^ fnv1a(key.as_bytes())).normals(numel);
    let name = key.rsplit('.').next().unwrap_or(key);
    let map = |f: &dyn Fn(f32) -> f32| n.iter().map(|v| f(*v)).collect();
    if name == "running_var" {
        map(&|v| 1.0 + 0.5 * v.abs())
    } else if name == "running_mean" {
        map(&|v| 0.1 * v)
    } else if key.ends_with("modulation.bias") {
        map(&|v| 1.0 + 0.1 * v)
    } else if name == "bias" {
        map(&|v| 0.1 * v)
    } else if shape.len() == 1 && name == "weight" {
        map(&|v| 1.0 + 0.1 * v)
    } else if shape.len() == 5 || key.starts_with("noises.") || key == "input.input" || shape.len() < 2 {
        n
    } else {
        let gain = (shape[0] as f32 / numel as f32).sqrt();
        map(&|v| v * gain)
    }
}

/// Takes `key` out of a file's tensors when it has the expected shape (moved, not copied: a
/// key binds once, and what remains are the unused keys); otherwise records the problem.
fn take_checked<T>(
    tensors: &mut std::collections::BTreeMap<String, T>,
    shape_of: fn(&T) -> &Vec<usize>,
    key: &str,
    shape: &[usize],
    used: &mut BTreeSet<String>,
    problems: &mut Vec<String>,
) -> Option<T> {
    let Some(found) = tensors.get(key) else {
        problems.push(format!("missing key `{key}` {shape:?}"));
        return None;
    };
    used.insert(key.to_string());
    if shape_of(found) != shape {
        problems.push(format!("key `{key}`: shape {:?} in the file, {:?} expected", shape_of(found), shape));
        return None;
    }
    tensors.remove(key)
}

/// A tensor as a [`VarBuilder`] found it: values on the host, or already on the device.
enum Value {
    Host(HostTensor),
    Device(Box<Tensor<1>>),
}

/// A path into a [`WeightSource`], like a prefix of PyTorch state-dict keys.
#[derive(Debug, Clone)]
pub struct VarBuilder<'a> {
    source: &'a WeightSource,
    path: String,
    device: Device,
}

impl<'a> VarBuilder<'a> {
    /// The builder for a child module: `vb.pp("convs").pp(3)` addresses `convs.3.*`.
    pub fn pp(&self, name: impl Display) -> Self {
        let path = if self.path.is_empty() { name.to_string() } else { format!("{}.{}", self.path, name) };
        Self { source: self.source, path, device: self.device.clone() }
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    fn key(&self, name: &str) -> String {
        if self.path.is_empty() { name.to_string() } else { format!("{}.{}", self.path, name) }
    }

    fn value(&self, name: &str, shape: &[usize], init: &Init) -> Value {
        let key = self.key(name);
        let numel = shape.iter().product::<usize>();
        let mut state = self.source.state.borrow_mut();
        let state = &mut *state;
        let tensor = match &mut state.mode {
            Mode::Uploaded(tensors) => {
                match take_checked(tensors, |t| &t.shape, &key, shape, &mut state.used, &mut state.problems) {
                    Some(t) => return Value::Device(Box::new(t.flat)),
                    None => HostTensor::new(shape.to_vec(), vec![0.0; numel]),
                }
            }
            Mode::ShapesOnly => HostTensor { shape: shape.to_vec(), data: Vec::new() },
            Mode::Keyed(seed) => HostTensor::new(shape.to_vec(), keyed_values(*seed, &key, shape)),
            Mode::Checkpoint(file) => {
                take_checked(&mut file.tensors, |t| &t.shape, &key, shape, &mut state.used, &mut state.problems)
                    .unwrap_or_else(|| HostTensor::new(shape.to_vec(), vec![0.0; numel]))
            }
            Mode::Seeded(rng) => {
                let data = match init {
                    Init::Zeros => vec![0.0; numel],
                    Init::Ones => vec![1.0; numel],
                    Init::Constant(v) => vec![*v; numel],
                    Init::Normal { std } => rng.normals(numel).into_iter().map(|v| v * std).collect(),
                    Init::Uniform { bound } => (0..numel).map(|_| (rng.uniform() * 2.0 - 1.0) * bound).collect(),
                };
                HostTensor::new(shape.to_vec(), data)
            }
        };
        if state.keep_bound {
            state.bound.tensors.insert(key, tensor.clone());
        }
        Value::Host(tensor)
    }

    fn tensor<const D: usize>(&self, value: Value, shape: [usize; D]) -> Tensor<D> {
        match value {
            Value::Device(flat) => flat.reshape(shape),
            Value::Host(t) if t.data.is_empty() => Tensor::zeros(shape, &self.device),
            Value::Host(t) => Tensor::from_data(TensorData::new(t.data, shape), &self.device),
        }
    }

    /// A trainable parameter.
    pub fn param<const D: usize>(&self, name: &str, shape: [usize; D], init: Init) -> Param<Tensor<D>> {
        let value = self.value(name, &shape, &init);
        if matches!(&value, Value::Host(t) if t.data.is_empty()) && shape.iter().product::<usize>() > 0 {
            let zeros = move |device: &Device, _| Tensor::zeros(shape, device);
            return Param::uninitialized(ParamId::new(), zeros, self.device.clone(), true, shape.into());
        }
        let param = Param::from_tensor(self.tensor(value, shape));
        self.source.state.borrow_mut().params.insert(param.id, self.key(name));
        param
    }

    /// A registered buffer (BatchNorm statistics, noise maps): stored, never trained.
    pub fn buffer<const D: usize>(&self, name: &str, shape: [usize; D], init: Init) -> Tensor<D> {
        self.tensor(self.value(name, &shape, &init), shape)
    }

    /// A buffer that training updates (BatchNorm's running statistics): read like a buffer,
    /// and remembered by key like a parameter so that training writes it back.
    pub fn running<const D: usize>(&self, name: &str, shape: [usize; D], init: Init) -> RunningState<Tensor<D>> {
        let id = ParamId::new();
        let state = RunningState::with_id(id, self.buffer(name, shape, init));
        self.source.state.borrow_mut().params.insert(id, self.key(name));
        state
    }

    /// A buffer whose value is fixed by the architecture (FIR kernels). It is regenerated;
    /// a checkpoint may omit it, and when present it must equal the regenerated value.
    pub fn constant<const D: usize>(&self, name: &str, shape: [usize; D], values: Vec<f32>) -> Tensor<D> {
        let key = self.key(name);
        let mut state = self.source.state.borrow_mut();
        let stored = match &state.mode {
            Mode::Checkpoint(file) => file.tensors.get(&key).cloned(),
            Mode::Uploaded(tensors) => tensors
                .get(&key)
                .map(|t| HostTensor { shape: t.shape.clone(), data: t.small.clone().unwrap_or_default() }),
            _ => None,
        };
        if let Some(stored) = stored {
            state.used.insert(key.clone());
            // f16 checkpoints round the constants; anything past half precision is a different value.
            let close = stored.shape == shape
                && stored.data.len() == values.len()
                && stored.data.iter().zip(&values).all(|(a, b)| (a - b).abs() <= 1e-3 * b.abs().max(1e-3));
            if !close {
                state.problems.push(format!("key `{key}`: differs from the fixed value this architecture uses"));
            }
        }
        if state.keep_bound {
            state.bound.tensors.insert(key, HostTensor::new(shape.to_vec(), values.clone()));
        }
        Tensor::from_data(TensorData::new(values, shape), &self.device)
    }
}
