//! The browser binding: a thin `Session` over the core, used from a module Web Worker.
//! Every fallible call returns a rejected promise with a message, never a panic, because a
//! panic would kill the worker and lose the user's work.

use std::rc::Rc;

use burn::tensor::Device;
use js_sys::{Array, Float32Array, Function, Object, Reflect, Uint8Array, Uint8ClampedArray};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use crate::eval::{GroundTruth, Localisation};
use crate::image::RgbaImage;
use crate::inversion::PivotalTuning;
use crate::explain::{CamMethod, CamTarget};
use crate::explain::ResidualMap;
use crate::pipeline::{cams, explain_live, Counterfactual, Live, Progress};
use crate::search::{read_vec, Loss, Method, Objective, Preset, RowMask, SearchConfig};
use crate::zoo::{Manifest, Zoo, ZooFiles};

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
    device: Device,
    backend: String,
    fallback_reason: Option<String>,
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
            Err(e) if preference == "auto" => Ok((Device::flex(), "cpu".into(), Some(format!("WebGPU unavailable: {e}")))),
            Err(e) => Err(js_err(format!("WebGPU unavailable: {e}"))),
        },
        other => Err(js_err(format!("unknown backend `{other}` (use auto, webgpu or cpu)"))),
    }
}

/// An option's value as an error message shows it (a number as JavaScript writes it: NaN,
/// Infinity, 2.5).
fn shown(v: &JsValue) -> String {
    let number = |n: f64| js_sys::Number::from(n).to_string_with_radix(10).map(String::from).unwrap_or_else(|_| n.to_string());
    v.as_f64().map(number).or_else(|| v.as_string().map(|t| format!("“{t}”"))).unwrap_or_else(|| "a value that is not a number".into())
}

fn search_options(zoo: &Zoo, options: &JsValue) -> Result<(String, RowMask, SearchConfig), JsValue> {
    // A number that is not one (text, NaN, infinity) is refused by name rather than replaced by
    // the default; its range is the search settings' own check.
    let num = |key: &str, default: f64| -> Result<f64, JsValue> {
        match get(options, key) {
            None => Ok(default),
            Some(v) => v.as_f64().filter(|n| n.is_finite()).ok_or_else(|| js_err(format!("option `{key}` must be a finite number, got {}", shown(&v)))),
        }
    };
    // A count is refused, not truncated, when it is not a whole number: 2.5 steps is a typo.
    // Up to 2^53, the largest whole number a JS number holds exactly; counts of steps up to
    // u32::MAX, what `usize` holds in wasm32 (the core's own limits are far lower).
    let whole = |key: &str, default: u64, max: f64| -> Result<u64, JsValue> {
        let bad = |got: String| js_err(format!("option `{key}` must be a whole number from 0 to {max}, got {got}"));
        match get(options, key) {
            None => Ok(default),
            Some(v) => match v.as_f64() {
                Some(n) if n.is_finite() && n >= 0.0 && n.fract() == 0.0 && n <= max => Ok(n as u64),
                _ => Err(bad(shown(&v))),
            },
        }
    };
    let count = |key: &str, default: usize| whole(key, default as u64, u32::MAX as f64).map(|v| v as usize);
    let text = |key: &str, default: &str| get(options, key).and_then(|v| v.as_string()).unwrap_or_else(|| default.to_string());
    // A preset gives the defaults; every explicit option overrides it.
    let defaults = text("preset", "readme").parse::<Preset>().map_err(js_err)?.config_with_identity(zoo.identity.is_some());
    // Checked even where the method does not use them: a bad number is a bad number.
    let (mu, beta) = (num("mu", 1.0)? as f32, num("beta", Preset::PAPER_BETA as f64)? as f32);
    let method = match get(options, "method").and_then(|v| v.as_string()) {
        Some(name) => Method::from_name(&name, mu, beta).map_err(js_err)?,
        None => defaults.method,
    };
    let loss: Loss = text("loss", "mse").parse().map_err(js_err)?;
    // The zoo's own pivotal tuning unless the options say otherwise, as in the CLI.
    let recommended = zoo.manifest.pivotal_tuning.unwrap_or_else(PivotalTuning::off);
    let config = SearchConfig {
        method,
        loss,
        alpha: num("alpha", defaults.alpha as f64)? as f32,
        max_steps: count("steps", defaults.max_steps)?,
        kappa: num("kappa", defaults.kappa as f64)? as f32,
        refine: count("refine", defaults.refine)?,
        seed: whole("seed", 0, 9_007_199_254_740_992.0)?,
        pivotal_tuning: PivotalTuning { steps: count("tuneSteps", recommended.steps)?, learning_rate: num("tuneLr", recommended.learning_rate as f64)? as f32 },
        ..defaults
    };
    config.validate().map_err(js_err)?;
    let detector = get(options, "detector").and_then(|v| v.as_string()).unwrap_or_else(|| zoo.detectors[0].0.clone());
    let n = zoo.manifest.n_latent;
    let mask = match get(options, "rows") {
        Some(rows) => {
            let rows: Vec<usize> = Array::from(&rows)
                .iter()
                .map(|v| {
                    v.as_f64().filter(|r| *r >= 0.0 && r.fract() == 0.0 && *r <= u32::MAX as f64).map(|r| r as usize).ok_or_else(|| js_err(format!("option `rows`: {} is not a row number", shown(&v))))
                })
                .collect::<Result<_, _>>()?;
            RowMask::from_rows(&rows, n)
        }
        None => {
            let levels = get(options, "levels").and_then(|v| v.as_string()).unwrap_or_else(|| "full".into());
            RowMask::from_level_names(&levels, &zoo.manifest.levels, n)
        }
    }
    .map_err(js_err)?;
    Ok((detector, mask, config))
}

/// The `truth` option, `{ data, width, height }`: an RGBA mask of the pixels a forgery altered
/// (white), cropped as the image was, on the generator's grid.
fn truth_option(options: &JsValue, image: &RgbaImage, size: usize) -> Result<Option<Vec<bool>>, JsValue> {
    let Some(truth) = get(options, "truth") else { return Ok(None) };
    let dim = |key: &str| get(&truth, key).and_then(|v| v.as_f64()).filter(|d| *d >= 1.0 && d.fract() == 0.0).map(|d| d as usize);
    // Only byte containers: a constructor given any other object may throw inside wasm.
    let bytes = get(&truth, "data").and_then(|d| {
        d.dyn_ref::<js_sys::ArrayBuffer>()
            .map(|b| Uint8Array::new(b).to_vec())
            .or_else(|| d.dyn_ref::<Uint8Array>().map(Uint8Array::to_vec))
            .or_else(|| d.dyn_ref::<Uint8ClampedArray>().map(Uint8ClampedArray::to_vec))
    });
    let (Some(width), Some(height), Some(bytes)) = (dim("width"), dim("height"), bytes) else {
        return Err(js_err("option `truth` must be { data, width, height }: an RGBA mask (ArrayBuffer, Uint8Array or Uint8ClampedArray) with whole, positive sides"));
    };
    let mask = image_from(&bytes, width, height)?;
    let truth = GroundTruth::for_image(&mask, image).map_err(|e| js_err(format!("option `truth`: {e}")))?;
    Ok(Some(truth.at(size)))
}

fn image_from(data: &[u8], width: usize, height: usize) -> Result<RgbaImage, JsValue> {
    RgbaImage::new(width, height, data.to_vec()).map_err(js_err)
}

fn result_object(r: &Counterfactual) -> Object {
    let out = Object::new();
    set(&out, "size", r.counterfactual.width as u32);
    set(&out, "input", rgba(&r.input));
    set(&out, "reconstruction", rgba(&r.reconstruction));
    set(&out, "counterfactual", rgba(&r.counterfactual));
    let gain = r.residual.auto_gain();
    set(&out, "residualGain", gain);
    set(&out, "residualSigned", rgba(&r.residual.signed_rgba(gain)));
    set(&out, "residualMagnitude", rgba(&r.residual.magnitude_rgba(gain)));
    set(&out, "detector", r.detector.clone());
    set(&out, "pFakeBefore", r.p_fake_reconstruction);
    set(&out, "pFakeAfter", r.p_fake_counterfactual);
    set(&out, "steps", r.steps as u32);
    set(&out, "success", r.success);
    let q = &r.quality;
    set(&out, "psnr", q.psnr_db);
    set(&out, "tvReconstruction", q.tv_reference);
    set(&out, "tvCounterfactual", q.tv_changed);
    set(&out, "esnleReconstruction", q.esnle_reference.map(JsValue::from).unwrap_or(JsValue::NULL));
    set(&out, "esnleCounterfactual", q.esnle_changed.map(JsValue::from).unwrap_or(JsValue::NULL));
    let inversion_gain = r.inversion_error.auto_gain();
    set(&out, "inversionError", rgba(&r.inversion_error.magnitude_rgba(inversion_gain)));
    // Everything else (every detector's scores, all metrics, the step history) as the same
    // JSON report the CLI writes.
    set(&out, "report", to_js(r));
    out
}

#[wasm_bindgen]
impl Session {
    /// Loads a zoo. `files` maps each weight file named in the manifest to its bytes;
    /// `backend` is `auto`, `webgpu` or `cpu`.
    pub async fn create(manifest_json: String, files: js_sys::Map, backend: String) -> Result<Session, JsValue> {
        let manifest = Manifest::from_json(&manifest_json).map_err(js_err)?;
        let mut bytes = ZooFiles::new();
        for name in manifest.files() {
            let value = files.get(&JsValue::from_str(name));
            if value.is_undefined() {
                return Err(js_err(format!("weight file `{name}` was not provided")));
            }
            bytes.insert(name.to_string(), Uint8Array::new(&value).to_vec());
        }
        let (device, backend, fallback_reason) = open_device(&backend).await?;
        let zoo = Zoo::load(manifest, &bytes, &device).map_err(js_err)?;
        Ok(Session { inner: Rc::new(Inner { zoo, device, backend, fallback_reason }) })
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
            .map(|p| (serde_json::to_value(p).expect("name").as_str().expect("name").to_string(), serde_json::to_value(p.config()).expect("config")))
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

    /// The pivotal tuning steps the zoo recommends (its manifest's `pivotal_tuning`; 0: none),
    /// what a search without a `tuneSteps` option uses.
    #[wasm_bindgen(getter, js_name = recommendedTuneSteps)]
    pub fn recommended_tune_steps(&self) -> u32 {
        self.inner.zoo.manifest.pivotal_tuning.map_or(0, |t| t.steps as u32)
    }

    /// Explains one RGBA image. `options`: `{ preset, detector, levels: "S,M", rows: [..],
    /// method: "ifgsm" | "mifgsm" | "nifgsm" | "pgd" | "rprop", mu, beta, loss: "mse" | "ce",
    /// alpha, steps, kappa, refine, seed, tuneSteps, tuneLr, truth }` (`tuneSteps`: pivotal tuning;
    /// default: the zoo's [`recommendedTuneSteps`](Self::recommended_tune_steps); `truth`: the
    /// ground-truth mask of a synthetic forgery, `{ data, width, height }` RGBA, when known:
    /// the result then has `localisation: { residualAuroc, camAuroc }`, as `unforge eval`
    /// scores it).
    /// `on_step` is called with `{ tuningStep, tuningSteps, loss }` after each tuning step, then
    /// with `{ step, pFake, loss }` (and the live views asked for) after every search step.
    pub fn explain(&self, data: Vec<u8>, width: usize, height: usize, options: JsValue, on_step: Function) -> js_sys::Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let image = image_from(&data, width, height)?;
            let (detector, mask, config) = search_options(&inner.zoo, &options)?;
            let truth = truth_option(&options, &image, inner.zoo.generator.size)?;
            let live = Live {
                all_detectors: get(&options, "allDetectors").and_then(|v| v.as_bool()).unwrap_or(false),
                thumbnail_every: get(&options, "thumbnailEvery").and_then(|v| v.as_f64()).unwrap_or(0.0).max(0.0) as usize,
            };
            let result = explain_live(&inner.zoo, &image, &detector, &mask, &config, live, &inner.device, |progress| {
                let msg = Object::new();
                let (r, view) = match progress {
                    Progress::Tuning(t) => {
                        set(&msg, "tuningStep", t.step as u32);
                        set(&msg, "tuningSteps", t.steps as u32);
                        set(&msg, "loss", t.loss);
                        let _ = on_step.call1(&JsValue::NULL, &msg);
                        return;
                    }
                    Progress::Search(r, view) => (r, view),
                };
                set(&msg, "step", r.step as u32);
                set(&msg, "pFake", r.p_fake[0]);
                set(&msg, "loss", r.loss);
                if let Some(all) = &view.p_fake_all {
                    set(&msg, "pFakeAll", Float32Array::from(all.as_slice()));
                }
                if let Some(thumb) = &view.thumbnail {
                    set(&msg, "thumbnail", rgba(thumb));
                }
                let _ = on_step.call1(&JsValue::NULL, &msg);
            })
            .await
            .map_err(js_err)?;
            let out = result_object(&result);
            // The settings the search ran with (preset defaults and the page's overrides), as
            // the CLI's report keeps them.
            set(&out, "search", to_js(&config));
            let maps = cams(&inner.zoo, &result, CamMethod::GradCam, &CamTarget::fake(), &inner.device).await.map_err(js_err)?;
            for (key, map, img) in [("Input", &maps[0], &result.input), ("Reconstruction", &maps[1], &result.reconstruction), ("Counterfactual", &maps[2], &result.counterfactual)] {
                set(&out, &format!("cam{key}"), rgba(&map.overlay(img, 0.5)));
                set(&out, &format!("camHeat{key}"), rgba(&map.heat_rgba()));
            }
            if let Some(mask) = truth {
                // The scores as the CLI's report keeps them, and the mask they were scored
                // against (on the generator's grid) for the page to show.
                let found = Localisation::of_counterfactual(&result, &maps, &mask);
                set(&out, "localisation", to_js(&found));
                let size = inner.zoo.generator.size;
                let pixels = mask.iter().flat_map(|&m| if m { [255, 255, 255, 255] } else { [0, 0, 0, 255] }).collect();
                set(&out, "truthMask", rgba(&RgbaImage::new(size, size, pixels).map_err(js_err)?));
            }
            Ok(out.into())
        })
    }

    /// The image's W+ inversion, flattened `[n_latent × style_dim]`.
    pub fn invert(&self, data: Vec<u8>, width: usize, height: usize) -> js_sys::Promise {
        let inner = self.inner.clone();
        future_to_promise(async move {
            let image = image_from(&data, width, height)?;
            let latent = read_vec(inner.zoo.invert(&image, &inner.device).latent).await.map_err(js_err)?;
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
            if latent.is_empty() || latent.len() % n != 0 {
                return Err(js_err(format!("a latent of {} values is not [{n} × style_dim]", latent.len())));
            }
            let sd = latent.len() / n;
            let w = burn::tensor::Tensor::<3>::from_data(burn::tensor::TensorData::new(latent, [1, n, sd]), &inner.device);
            let objective = Objective::new(&inner.zoo.generator, det, 0.0, Loss::Mse);
            let (_, _, grad) = objective.gradient(&w);
            let grad = read_vec(grad).await.map_err(js_err)?;
            Ok(Float32Array::from(grad.as_slice()).into())
        })
    }
}
