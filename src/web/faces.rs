//! The face finder for the page: BlazeFace on the worker's device, each face with its FFHQ
//! square (centre, side, rotation) so the crop can snap to it.

use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use super::{image_from, js_err, open_device, to_js};
use crate::faces::{DetectSettings, Face, FaceDetector};

/// A face as the page uses it: the core's `Face` and its square's centre, side and angle.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PageFace {
    #[serde(flatten)]
    face: Face,
    centre: [f32; 2],
    side: f32,
    /// Radians, clockwise on the picture.
    angle: f32,
    /// The face the crop snaps to first (`faces::largest`).
    largest: bool,
}

#[wasm_bindgen]
pub struct FaceFinder {
    detector: std::rc::Rc<FaceDetector>,
    backend: String,
}

#[wasm_bindgen]
impl FaceFinder {
    /// From the converted detector's safetensors bytes, on `auto`, `webgpu` or `cpu`.
    pub async fn create(bytes: Vec<u8>, backend: String) -> Result<FaceFinder, JsValue> {
        let (device, backend, _) = open_device(&backend).await?;
        let detector = FaceDetector::from_safetensors(&bytes, crate::faces::DETECTOR_PATH, &device).map_err(js_err)?;
        Ok(FaceFinder { detector: std::rc::Rc::new(detector), backend })
    }

    #[wasm_bindgen(getter)]
    pub fn backend(&self) -> String {
        self.backend.clone()
    }

    /// Every face of an RGBA picture, best first.
    pub fn detect(&self, data: Vec<u8>, width: usize, height: usize) -> js_sys::Promise {
        let detector = self.detector.clone();
        future_to_promise(async move {
            let image = image_from(&data, width, height)?;
            let faces = detector.detect(&image, &DetectSettings::default()).await.map_err(js_err)?;
            let largest = crate::faces::largest(&faces);
            let faces: Vec<PageFace> = faces
                .into_iter()
                .enumerate()
                .map(|(i, face)| PageFace {
                    centre: face.quad.centre(),
                    side: face.quad.side(),
                    angle: face.quad.angle(),
                    largest: Some(i) == largest,
                    face,
                })
                .collect();
            Ok(to_js(&faces))
        })
    }
}
