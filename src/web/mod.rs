//! The browser binding: a thin `Session` over the core, used from a module Web Worker.
//! Every fallible call returns a rejected promise with a message, never a panic, because a
//! panic would kill the worker and lose the user's work.

use std::cell::RefCell;
use std::rc::Rc;

use burn::tensor::Device;
use js_sys::{Array, Float32Array, Function, Object, Reflect, Uint8Array, Uint8ClampedArray};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use crate::explain::ResidualMap;
use crate::explanation::{
    ExplainRequest, Explanation, Observer, Progress, Stage, TruthMask, crop, explain_inverted, invert,
};
use crate::image::RgbaImage;
use crate::inversion::{Inversion, PivotalTuning};
use crate::options::ExplainOptions;
use crate::readback::read_vec;
use crate::report::{Provenance, Report};
use crate::search::{Loss, Objective, Preset};
use crate::zoo::Zoo;

mod bench;
mod faces;
mod loader;
pub use bench::StepBenchmark;
pub use faces::FaceFinder;
pub use loader::ZooLoading;

fn js_err(e: impl std::fmt::Display) -> JsValue {
    JsError::new(&e.to_string()).into()
}

fn set(obj: &Object, key: &str, value: impl Into<JsValue>) {
    // Setting a fresh plain object's property cannot fail.
    let _ = Reflect::set(obj, &JsValue::from_str(key), &value.into());
}

fn get(obj: &JsValue, key: &str) -> Option<JsValue> {
    Reflect::get(obj, &JsValue::from_str(key)).ok().filter(|v| !v.is_undefined() && !v.is_null())
}

/// A plain JS object with the same fields as the JSON reports the CLI writes.
fn to_js<T: serde::Serialize>(value: &T) -> JsValue {
    serde_json::to_string(value).ok().and_then(|text| js_sys::JSON::parse(&text).ok()).unwrap_or(JsValue::NULL)
}

fn rgba(img: &RgbaImage) -> Uint8ClampedArray {
    Uint8ClampedArray::from(img.data.as_slice())
}

#[wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
}

struct Inner {
    zoo: Zoo,
    backend: String,
    fallback_reason: Option<String>,
    /// The last explanation's inversion, kept so that another search of the same face with the
    /// same pivotal tuning (a presenter trying other settings) starts at once instead of tuning
    /// again.
    last: RefCell<Option<KeptInversion>>,
}

/// An inversion and what it was made from: the face crop's pixels and the tuning.
struct KeptInversion {
    crop: RgbaImage,
    tuning: PivotalTuning,
    inversion: Inversion,
}

/// A loaded zoo on one device.
#[wasm_bindgen]
pub struct Session {
    inner: Rc<Inner>,
}

thread_local! {
    /// The WebGPU device is initialised once per worker and shared by every session.
    static WEBGPU: std::cell::RefCell<Option<Device>> = const { std::cell::RefCell::new(None) };
}

async fn webgpu_device() -> Result<Device, String> {
    if let Some(device) = WEBGPU.with(|d| d.borrow().clone()) {
        return Ok(device);
    }
    let device = Device::wgpu_options().init_async().await.map_err(|e| format!("{e:?}"))?;
    WEBGPU.with(|d| *d.borrow_mut() = Some(device.clone()));
    Ok(device)
}

/// Picks the device: WebGPU when asked for (or on `auto` when the browser has it), else
/// Burn's CPU backend. Returns the backend's name and, on fallback, why.
async fn open_device(preference: &str) -> Result<(Device, String, Option<String>), JsValue> {
    match preference {
        "cpu" => Ok((Device::flex(), "cpu".into(), None)),
        "webgpu" | "auto" => match webgpu_device().await {
            Ok(device) => Ok((device, "webgpu".into(), None)),
            Err(e) if preference == "auto" => {
                Ok((Device::flex(), "cpu".into(), Some(format!("WebGPU unavailable: {e}"))))
            }
            Err(e) => Err(js_err(format!("WebGPU unavailable: {e}"))),
        },
        other => Err(js_err(format!("unknown backend `{other}` (use auto, webgpu or cpu)"))),
    }
}

/// The page's extras beside the core's options: the ground-truth mask's pixels (`truth`:
/// `{ data, width, height, name }`, an RGBA mask of the pixels a forgery altered, at the image's
/// size) and the image's file name (`imageName`). Returns them and the options without them.
struct Extras {
    truth: Option<TruthMask>,
    mask_name: Option<String>,
    image_name: Option<String>,
    options: JsValue,
}

fn extras(options: &JsValue) -> Result<Extras, JsValue> {
    if options.is_undefined() || options.is_null() {
        return Ok(Extras { truth: None, mask_name: None, image_name: None, options: Object::new().into() });
    }
    if !options.is_object() {
        return Err(js_err("options must be an object"));
    }
    let rest = Object::assign(&Object::new(), options.unchecked_ref());
    for key in ["truth", "imageName"] {
        let _ = Reflect::delete_property(&rest, &JsValue::from_str(key));
    }
    let image_name = get(options, "imageName").and_then(|v| v.as_string());
    let Some(truth) = get(options, "truth") else {
        return Ok(Extras { truth: None, mask_name: None, image_name, options: rest.into() });
    };
    let dim = |key: &str| {
        get(&truth, key).and_then(|v| v.as_f64()).filter(|d| *d >= 1.0 && d.fract() == 0.0).map(|d| d as usize)
    };
    // Only byte containers: a constructor given any other object may throw inside wasm.
    let bytes = get(&truth, "data").and_then(|d| {
        d.dyn_ref::<js_sys::ArrayBuffer>()
            .map(|b| Uint8Array::new(b).to_vec())
            .or_else(|| d.dyn_ref::<Uint8Array>().map(Uint8Array::to_vec))
            .or_else(|| d.dyn_ref::<Uint8ClampedArray>().map(Uint8ClampedArray::to_vec))
    });
    let (Some(width), Some(height), Some(bytes)) = (dim("width"), dim("height"), bytes) else {
        return Err(js_err(
            "option `truth` must be { data, width, height }: an RGBA mask (ArrayBuffer, Uint8Array or \
             Uint8ClampedArray) with whole, positive sides",
        ));
    };
    let mask = image_from(&bytes, width, height)
        .map_err(|e| js_err(format!("option `truth`: {}", e.as_string().unwrap_or_default())))?;
    let mask_name = get(&truth, "name").and_then(|v| v.as_string());
    let truth = TruthMask { image: mask, origin: "option `truth`".into() };
    Ok(Extras { truth: Some(truth), mask_name, image_name, options: rest.into() })
}

/// Refuses a key the options do not have (a misspelt `tuneStep` would otherwise be ignored:
/// serde-wasm-bindgen reads a struct's fields by name and never sees the others). `known`: the
/// options' own keys, as `ExplainOptions::default()` serialises them; `within`: the key of the
/// object being checked.
fn unknown_keys(given: &JsValue, known: &serde_json::Value, within: Option<&str>) -> Result<(), JsValue> {
    let (serde_json::Value::Object(known), true) = (known, given.is_object() && !Array::is_array(given)) else {
        return Ok(());
    };
    for key in Object::keys(given.unchecked_ref::<Object>()).iter().filter_map(|k| k.as_string()) {
        let Some(inner) = known.get(&key) else {
            let expected = known.keys().map(|k| format!("`{k}`")).collect::<Vec<_>>().join(", ");
            let place = within.map_or("options".to_string(), |w| format!("option `{w}`"));
            return Err(js_err(format!("{place}: unknown field `{key}`, expected one of {expected}")));
        };
        let value = Reflect::get(given, &JsValue::from_str(&key)).unwrap_or(JsValue::UNDEFINED);
        unknown_keys(&value, inner, Some(&key))?;
    }
    Ok(())
}

fn image_from(data: &[u8], width: usize, height: usize) -> Result<RgbaImage, JsValue> {
    RgbaImage::new(width, height, data.to_vec()).map_err(js_err)
}

/// The explanation's pictures, ready for canvases, and its report (the same keys as the CLI's
/// `report.json`).
fn result_object(r: &Explanation, report: &Report) -> Result<Object, JsValue> {
    let out = Object::new();
    set(&out, "size", r.counterfactual.width as u32);
    set(&out, "input", rgba(&r.input));
    set(&out, "reconstruction", rgba(&r.reconstruction));
    set(&out, "counterfactual", rgba(&r.counterfactual));
    set(&out, "residualSigned", rgba(&r.residual.signed_rgba(report.residual_gain)));
    set(&out, "residualMagnitude", rgba(&r.residual.magnitude_rgba(report.residual_gain)));
    set(&out, "inversionError", rgba(&r.inversion_error.magnitude_rgba(report.inversion_error_gain)));
    if let Some(maps) = &r.cams {
        let images =
            [("Input", &r.input), ("Reconstruction", &r.reconstruction), ("Counterfactual", &r.counterfactual)];
        for ((key, img), map) in images.into_iter().zip(maps) {
            set(&out, &format!("cam{key}"), rgba(&map.overlay(img, 0.5)));
            set(&out, &format!("camHeat{key}"), rgba(&map.heat_rgba()));
        }
    }
    if let Some(mask) = &r.truth {
        // The mask as it was scored, on the generator's grid, for the page to show.
        let size = r.counterfactual.width;
        let pixels = mask.iter().flat_map(|&m| if m { [255, 255, 255, 255] } else { [0, 0, 0, 255] }).collect();
        set(&out, "truthMask", rgba(&RgbaImage::new(size, size, pixels).map_err(js_err)?));
    }
    set(&out, "report", to_js(report));
    // The W+ codes as `unforge run` writes them, for the ZIP (and `unforge run --latent`).
    set(&out, "latents", Uint8Array::from(r.codes.to_safetensors().as_slice()));
    Ok(out)
}

/// The worker's progress messages: `{ stage }`, then `{ tuningStep, tuningSteps, loss }` for each
/// tuning step, then `{ step, pFake, loss, pFakeAll?, thumbnail? }` for each search step.
struct PageObserver<'a>(&'a Function);

impl Observer for PageObserver<'_> {
    fn observe(&mut self, progress: Progress<'_>) {
        let msg = Object::new();
        match progress {
            Progress::Stage(stage) => set(&msg, "stage", to_js(&stage)),
            Progress::Tuning(t) => {
                set(&msg, "tuningStep", t.step as u32);
                set(&msg, "tuningSteps", t.steps as u32);
                set(&msg, "loss", t.loss);
            }
            Progress::Search(r, view) => {
                set(&msg, "step", r.step as u32);
                set(&msg, "pFake", r.p_fake[0]);
                set(&msg, "loss", r.loss);
                if let Some(all) = &view.p_fake_all {
                    set(&msg, "pFakeAll", Float32Array::from(all.as_slice()));
                }
                if let Some(thumb) = &view.thumbnail {
                    set(&msg, "thumbnail", rgba(thumb));
                }
            }
        }
        // A listener that throws must not stop the search.
        let _ = self.0.call1(&JsValue::NULL, &msg);
    }
}

#[wasm_bindgen]
impl Session {
    /// Loads a zoo whose files are all in memory already. `files` maps each weight file named
    /// in the manifest to its bytes; `backend` is `auto`, `webgpu` or `cpu`. The page streams
    /// its files through [`ZooLoading`] instead; this is the same load, a file at a time.
    pub async fn create(manifest_json: String, files: js_sys::Map, backend: String) -> Result<Session, JsValue> {
        let mut loading = ZooLoading::open(manifest_json, backend).await?;
        for name in loading.files().iter().filter_map(|n| n.as_string()) {
            let value = files.get(&JsValue::from_str(&name));
            if value.is_undefined() {
                return Err(js_err(format!("weight file `{name}` was not provided")));
            }
            let bytes = Uint8Array::new(&value);
            loading.begin(name)?;
            // In pieces, so that WebAssembly's memory never holds a second copy of the file.
            const PIECE: u32 = 4 << 20;
            for start in (0..bytes.length()).step_by(PIECE as usize) {
                loading.push(&bytes.subarray(start, (start + PIECE).min(bytes.length())).to_vec())?;
            }
            loading.end()?;
        }
        loading.finish()
    }

    /// `webgpu` or `cpu`: the backend that really runs.
    #[wasm_bindgen(getter)]
    pub fn backend(&self) -> String {
        self.inner.backend.clone()
    }

    /// Why WebGPU was not used, when `auto` fell back to the CPU.
    #[wasm_bindgen(getter, js_name = fallbackReason)]
    pub fn fallback_reason(&self) -> Option<String> {
        self.inner.fallback_reason.clone()
    }

    /// Detector names, victim first by default.
    #[wasm_bindgen(getter)]
    pub fn detectors(&self) -> Array {
        self.inner.zoo.detectors.iter().map(|(n, _)| JsValue::from_str(n)).collect()
    }

    /// The named search settings (`paper`, `readme`, `fast`) as `{ name: SearchConfig }`, from
    /// the core, so the page never restates them.
    pub fn presets() -> JsValue {
        let map: serde_json::Map<String, serde_json::Value> = Preset::ALL
            .iter()
            .map(|p| (p.name().to_string(), serde_json::to_value(p.config()).expect("config")))
            .collect();
        to_js(&map)
    }

    /// The residual maps of two RGBA images of one size at `gain` (the page's gain slider):
    /// `{ signed, magnitude }`.
    pub fn residual(before: Vec<u8>, after: Vec<u8>, size: usize, gain: f32) -> Result<Object, JsValue> {
        let (b, a) = (image_from(&before, size, size)?, image_from(&after, size, size)?);
        let map = ResidualMap::from_rgba(&b, &a).map_err(js_err)?;
        let out = Object::new();
        set(&out, "signed", rgba(&map.signed_rgba(gain)));
        set(&out, "magnitude", rgba(&map.magnitude_rgba(gain)));
        Ok(out)
    }

    #[wasm_bindgen(getter, js_name = nLatent)]
    pub fn n_latent(&self) -> u32 {
        self.inner.zoo.manifest.n_latent as u32
    }

    #[wasm_bindgen(getter, js_name = imageSize)]
    pub fn image_size(&self) -> u32 {
        self.inner.zoo.generator.size as u32
    }

    /// The preview sides a search may run through (`search.preview`), largest first: powers of
    /// two below the generator's side that every detector can score. Empty when none fits.
    #[wasm_bindgen(getter, js_name = previewSizes)]
    pub fn preview_sizes(&self) -> Array {
        self.inner.zoo.preview_sizes().into_iter().map(|s| JsValue::from(s as u32)).collect()
    }

    /// What the zoo's networks were trained on (its manifest's `domain`: `{ kind: "synthetic" |
    /// "photographs" | "untrained", trained_on }`), or null when the manifest does not say.
    #[wasm_bindgen(getter)]
    pub fn domain(&self) -> JsValue {
        to_js(&self.inner.zoo.manifest.domain)
    }

    /// The pivotal tuning steps the zoo recommends (its manifest's `pivotal_tuning`; 0: none),
    /// what a search without a `tuneSteps` option uses.
    #[wasm_bindgen(getter, js_name = recommendedTuneSteps)]
    pub fn recommended_tune_steps(&self) -> u32 {
        self.inner.zoo.manifest.pivotal_tuning.map_or(0, |t| t.steps as u32)
    }

    /// Explains one RGBA image. `options`: an `ExplainOptions` object (`{ detector, search: {
    /// preset, levels, rows, method, mu, beta, maxScale, loss, alpha, steps, kappa, refine,
    /// lambdaPixel, lambdaLpips, lambdaId, seed, tuneSteps, tuneLr }, cam, camLayer, camClass,
    /// crop: { x, y, side }, live: { allDetectors, thumbnailEvery } }`), plus the page's
    /// `truth` (`{ data, width, height, name }`: the ground-truth mask of a synthetic forgery,
    /// RGBA at the image's size; the report then scores the explanation against it) and
    /// `imageName`. Unknown keys and values that are not numbers are refused by name.
    /// `on_progress` sees each stage, tuning step and search step.
    pub fn explain(
        &self,
        data: Vec<u8>,
        width: usize,
        height: usize,
        options: JsValue,
        on_progress: Function,
    ) -> js_sys::Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let image = image_from(&data, width, height)?;
            let extras = extras(&options)?;
            let known = serde_json::to_value(ExplainOptions::default()).expect("options serialise");
            unknown_keys(&extras.options, &known, None)?;
            let deserializer = serde_wasm_bindgen::Deserializer::from(extras.options);
            let options = ExplainOptions::deserialize_named(deserializer).map_err(js_err)?;
            let request = ExplainRequest { truth: extras.truth, ..options.resolve(&inner.zoo).map_err(js_err)? };
            let observer = &mut PageObserver(&on_progress);
            let face = crop(&inner.zoo, &image, &request).map_err(js_err)?;
            let tuning = request.search.pivotal_tuning;
            let kept = inner.last.borrow_mut().take().filter(|k| k.crop == face.crop && k.tuning == tuning);
            let inversion = match kept {
                Some(kept) => {
                    observer.observe(Progress::Stage(Stage::Reusing));
                    kept.inversion
                }
                None => invert(&inner.zoo, &face, &request, observer).await.map_err(js_err)?,
            };
            let result = explain_inverted(&inner.zoo, &face, &inversion, &request, observer).await;
            *inner.last.borrow_mut() = Some(KeptInversion { crop: face.crop.clone(), tuning, inversion });
            let result = result.map_err(js_err)?;
            let from = Provenance {
                zoo: &inner.zoo,
                backend: &inner.backend,
                options: &options,
                request: &request,
                image: extras.image_name,
                mask: extras.mask_name,
            };
            Ok(result_object(&result, &Report::new(from, &result))?.into())
        })
    }

    /// The image's W+ inversion, flattened `[n_latent × style_dim]`.
    pub fn invert(&self, data: Vec<u8>, width: usize, height: usize) -> js_sys::Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let image = image_from(&data, width, height)?;
            let latent =
                read_vec(inner.zoo.inverter().invert(&image, &inner.zoo.device).latent).await.map_err(js_err)?;
            Ok(Float32Array::from(latent.as_slice()).into())
        })
    }

    /// ∇_w of the search loss at a given W+ (`[n_latent × style_dim]`, flattened): what the
    /// first step of the search sees. Used to compare backends on identical inputs.
    #[wasm_bindgen(js_name = gradientAt)]
    pub fn gradient_at(&self, latent: Vec<f32>, detector: String) -> js_sys::Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let det = inner.zoo.detector(&detector).map_err(js_err)?;
            let n = inner.zoo.manifest.n_latent;
            if latent.is_empty() || !latent.len().is_multiple_of(n) {
                return Err(js_err(format!("a latent of {} values is not [{n} × style_dim]", latent.len())));
            }
            let sd = latent.len() / n;
            let w = burn::tensor::Tensor::<3>::from_data(
                burn::tensor::TensorData::new(latent, [1, n, sd]),
                &inner.zoo.device,
            );
            let objective = Objective::new(&inner.zoo.generator, det, 0.0, Loss::Mse);
            let (_, _, grad) = objective.gradient(&w);
            let grad = read_vec(grad).await.map_err(js_err)?;
            Ok(Float32Array::from(grad.as_slice()).into())
        })
    }
}
