//! The benchmark page's binding: the search step `unforge bench` times, on the visitor's
//! backend (`bench.html`).

use std::rc::Rc;

use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use super::{js_err, open_device};
use crate::networks::stylegan2::Generator;
use crate::search::bench::StepBench;

#[wasm_bindgen]
pub struct StepBenchmark {
    bench: Rc<StepBench>,
    /// The search-time (non-fused) form of the generator.
    search: Rc<Generator>,
    backend: String,
    fallback_reason: Option<String>,
}

#[wasm_bindgen]
impl StepBenchmark {
    /// A keyed `size` px generator (`channel_multiplier`) and Xception at `detector_size` px, on
    /// `auto`, `webgpu` or `cpu`.
    pub async fn create(
        size: usize,
        channel_multiplier: usize,
        detector_size: usize,
        backend: String,
    ) -> Result<StepBenchmark, JsValue> {
        if !(64..=1024).contains(&size) {
            return Err(js_err(format!("size {size}: the benchmark page takes 64 to 1024 px")));
        }
        let (device, backend, fallback_reason) = open_device(&backend).await?;
        let bench = StepBench::new(size, channel_multiplier, detector_size, &device).map_err(js_err)?;
        let search = Rc::new(bench.generator.clone().with_fused(false));
        Ok(StepBenchmark { bench: Rc::new(bench), search, backend, fallback_reason })
    }

    #[wasm_bindgen(getter)]
    pub fn backend(&self) -> String {
        self.backend.clone()
    }

    #[wasm_bindgen(getter, js_name = fallbackReason)]
    pub fn fallback_reason(&self) -> Option<String> {
        self.fallback_reason.clone()
    }

    /// One whole search step; resolves when its result is back on the host.
    pub fn step(&self) -> js_sys::Promise {
        let (bench, search) = (self.bench.clone(), self.search.clone());
        future_to_promise(async move {
            bench.step(&search).await.map_err(js_err)?;
            Ok(JsValue::UNDEFINED)
        })
    }
}
