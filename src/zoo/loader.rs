//! Loading a zoo as its files arrive: each weight file's tensors go to the device one at a time
//! while the file streams in (from a `fetch` body in the browser, from disk natively), and the
//! networks are bound once every file is in. Neither a whole file nor an f32 copy of one is ever
//! held in memory; on WebGPU the host holds no weights at all.

use std::collections::BTreeMap;

use burn::tensor::Device;

use super::{Architecture, Manifest, NetworkEntry, Role, Zoo, build_detector, gather};
use crate::error::{Error, Result};
use crate::networks::arcface::ArcFace;
use crate::networks::e4e::Encoder4Editing;
use crate::networks::lpips::Lpips;
use crate::networks::stylegan2::Generator;
use crate::rng::{FNV1A_START, fnv1a_continue};
use crate::weights::{DeviceTensor, SafetensorsReader, WeightSource};

/// The file being received.
struct Reading {
    name: String,
    reader: SafetensorsReader,
    tensors: BTreeMap<String, DeviceTensor>,
}

/// A zoo being loaded: `begin` a file, `push` its bytes in pieces of any size, `end` it; when
/// every file of [`ZooLoader::files`] is in, `finish` binds the networks.
pub struct ZooLoader {
    manifest: Manifest,
    device: Device,
    /// Each received file's tensors, on the device.
    received: BTreeMap<String, BTreeMap<String, DeviceTensor>>,
    /// Each received file's FNV-1a.
    fingerprints: BTreeMap<String, u64>,
    reading: Option<Reading>,
}

impl ZooLoader {
    /// Checks the manifest (roles, W+ rows, sizes) before any weights move.
    pub fn new(manifest: Manifest, device: &Device) -> Result<Self> {
        manifest.validate()?;
        Ok(Self {
            manifest,
            device: device.clone(),
            received: BTreeMap::new(),
            fingerprints: BTreeMap::new(),
            reading: None,
        })
    }

    /// The files to give, in the manifest's order (a sharded network's shards one by one).
    pub fn files(&self) -> Vec<String> {
        self.manifest.files().into_iter().map(String::from).collect()
    }

    /// The manifest being loaded.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Starts receiving `name`, one of [`ZooLoader::files`].
    pub fn begin(&mut self, name: &str) -> Result<()> {
        if let Some(r) = &self.reading {
            return Err(Error::manifest(format!(
                "weight file `{}` is still being read; end it before `{name}`",
                r.name
            )));
        }
        if !self.manifest.files().contains(&name) {
            return Err(Error::manifest(format!(
                "`{name}` is not a weight file of zoo `{}` (it has: {})",
                self.manifest.name,
                self.manifest.files().join(", ")
            )));
        }
        if self.received.contains_key(name) {
            return Err(Error::manifest(format!("weight file `{name}` was given twice")));
        }
        self.reading =
            Some(Reading { name: name.into(), reader: SafetensorsReader::new(name), tensors: BTreeMap::new() });
        Ok(())
    }

    /// The next bytes of the file begun last: each tensor they complete goes to the device.
    pub fn push(&mut self, chunk: &[u8]) -> Result<()> {
        let Some(r) = &mut self.reading else {
            return Err(Error::manifest("weight bytes arrived before their file was begun"));
        };
        let device = &self.device;
        let tensors = &mut r.tensors;
        r.reader.push(chunk, &mut |name, tensor| {
            tensors.insert(name, DeviceTensor::upload(tensor, device));
            Ok(())
        })
    }

    /// Ends the file begun last: fails when it stopped short of its header.
    pub fn end(&mut self) -> Result<()> {
        let r = self.reading.take().ok_or_else(|| Error::manifest("no weight file is being read"))?;
        let summary = r.reader.finish()?;
        self.fingerprints.insert(r.name.clone(), summary.fingerprint);
        self.received.insert(r.name, r.tensors);
        Ok(())
    }

    /// A whole file at once.
    pub fn add(&mut self, name: &str, bytes: &[u8]) -> Result<()> {
        self.begin(name)?;
        self.push(bytes)?;
        self.end()
    }

    /// A whole file from a reader, in pieces of 4 MB.
    pub fn read(&mut self, name: &str, mut from: impl std::io::Read) -> Result<()> {
        self.begin(name)?;
        let mut chunk = vec![0u8; 4 << 20];
        loop {
            let n = from.read(&mut chunk).map_err(|e| Error::Io { path: name.into(), reason: e.to_string() })?;
            if n == 0 {
                break;
            }
            self.push(&chunk[..n])?;
        }
        self.end()
    }

    /// One network's tensors (its shards together, its prefix applied) and where they came from.
    fn network(&self, entry: &NetworkEntry) -> Result<(BTreeMap<String, DeviceTensor>, String)> {
        let tensors = gather(entry, |name| Ok(self.received.get(name).cloned()))?;
        let origin = match (entry.shards.len(), entry.prefix.is_empty()) {
            (0, true) => entry.file.clone(),
            (0, false) => format!("{} (keys under `{}`)", entry.file, entry.prefix),
            (n, _) => {
                format!("{} ({n} shards{})", entry.file, if entry.prefix.is_empty() { "" } else { ", with a prefix" })
            }
        };
        Ok((tensors, origin))
    }

    /// Binds one network strictly: every key it declares, with its shape, and no other.
    fn bind<T>(&self, entry: &NetworkEntry, build: impl FnOnce(&WeightSource) -> Result<T>) -> Result<T> {
        let (tensors, origin) = self.network(entry)?;
        let source = WeightSource::uploaded(tensors, origin);
        let net = build(&source)?;
        source.finish()?;
        Ok(net)
    }

    /// FNV-1a of the generator's weight file (of its shards' fingerprints in order, when it has
    /// shards): a W+ code means something only to the generator it was made with.
    fn generator_fingerprint(&self, entry: &NetworkEntry) -> String {
        let prints: Vec<u64> = entry.stored_files().iter().filter_map(|f| self.fingerprints.get(*f).copied()).collect();
        let print = match prints.as_slice() {
            [one] => *one,
            many => many.iter().fold(FNV1A_START, |h, p| fnv1a_continue(h, &p.to_le_bytes())),
        };
        format!("{print:016x}")
    }

    /// Binds every network to the tensors received.
    pub fn finish(self) -> Result<Zoo> {
        if let Some(r) = &self.reading {
            return Err(Error::manifest(format!("weight file `{}` was begun and never ended", r.name)));
        }
        let manifest = &self.manifest;
        let device = &self.device;
        let g = manifest.generator()?;
        let generator = self.bind(g, |s| match &g.architecture {
            // The zoo's weights never train (pivotal tuning trains a copy): the non-fused form
            // needs no per-sample weight gradient, half the generator's backward on the CPU.
            Architecture::Stylegan2(cfg) => Generator::new(&s.root(device), cfg).map(|g| g.with_fused(false)),
            _ => unreachable!("validated"),
        })?;
        let e = manifest.encoder()?;
        let encoder = self.bind(e, |s| match &e.architecture {
            Architecture::E4e(cfg) => Encoder4Editing::new(&s.root(device), cfg),
            _ => unreachable!("validated"),
        })?;
        let mut detectors = Vec::new();
        for d in manifest.detectors() {
            detectors.push((d.name.clone(), self.bind(d, |s| build_detector(d, &s.root(device)))?));
        }
        let identity = match manifest.optional(Role::Identity)? {
            Some(n) => Some(self.bind(n, |s| match &n.architecture {
                Architecture::Arcface(cfg) => ArcFace::new(&s.root(device), cfg),
                _ => unreachable!("validated"),
            })?),
            None => None,
        };
        let perceptual = match manifest.optional(Role::Perceptual)? {
            Some(n) => Some(self.bind(n, |s| Ok(Lpips::new(&s.root(device))))?),
            None => None,
        };
        let generator_fingerprint = self.generator_fingerprint(g);
        let encoder_size = e.input_size;
        Ok(Zoo {
            manifest: self.manifest.clone(),
            generator,
            encoder,
            detectors,
            encoder_size,
            identity,
            perceptual,
            device: self.device.clone(),
            generator_fingerprint,
        })
    }
}
