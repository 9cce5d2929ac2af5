//! A zoo loaded as its files stream in: the worker hands each file's bytes over in the pieces
//! `fetch` delivers them, and every tensor goes to the device as soon as its bytes are in. The
//! worker never holds a whole file, and WebAssembly's memory holds one tensor's bytes at a time
//! (plus, on the CPU path, the networks themselves).

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::Array;
use wasm_bindgen::prelude::*;

use super::{Inner, Session, js_err, open_device};
use crate::zoo::{Manifest, ZooLoader};

/// A zoo being loaded: `open`, then for each of `files` `begin(name)`, `push(bytes)` as often
/// as the bytes come, `end()`; then `finish()` gives the session. After an error the load is
/// over and every later call says so.
#[wasm_bindgen]
pub struct ZooLoading {
    loader: Option<ZooLoader>,
    failed: Option<String>,
    backend: String,
    fallback_reason: Option<String>,
}

impl ZooLoading {
    fn step<T>(&mut self, call: impl FnOnce(&mut ZooLoader) -> crate::error::Result<T>) -> Result<T, JsValue> {
        let Some(loader) = self.loader.as_mut() else {
            return Err(js_err(match &self.failed {
                Some(why) => format!("this zoo's load already failed: {why}"),
                None => "this zoo is already loaded".into(),
            }));
        };
        call(loader).map_err(|e| {
            self.failed = Some(e.to_string());
            self.loader = None;
            js_err(e)
        })
    }
}

#[wasm_bindgen]
impl ZooLoading {
    /// Checks the manifest (roles, W+ rows, sizes) and opens the device (`auto`, `webgpu` or
    /// `cpu`) before any weights move.
    pub async fn open(manifest_json: String, backend: String) -> Result<ZooLoading, JsValue> {
        let manifest = Manifest::from_json(&manifest_json).map_err(js_err)?;
        let (device, backend, fallback_reason) = open_device(&backend).await?;
        let loader = ZooLoader::new(manifest, &device).map_err(js_err)?;
        Ok(ZooLoading { loader: Some(loader), failed: None, backend, fallback_reason })
    }

    /// The files to give, in order (a sharded network's shards one by one).
    #[wasm_bindgen(getter)]
    pub fn files(&self) -> Array {
        self.loader.iter().flat_map(ZooLoader::files).map(|f| JsValue::from_str(&f)).collect()
    }

    /// Starts the file `name`.
    pub fn begin(&mut self, name: String) -> Result<(), JsValue> {
        self.step(|l| l.begin(&name))
    }

    /// The next bytes of the file begun last (copied into WebAssembly's memory for this call
    /// only).
    pub fn push(&mut self, chunk: &[u8]) -> Result<(), JsValue> {
        self.step(|l| l.push(chunk))
    }

    /// Ends the file begun last.
    pub fn end(&mut self) -> Result<(), JsValue> {
        self.step(|l| l.end())
    }

    /// Binds every network and returns the session.
    pub fn finish(&mut self) -> Result<Session, JsValue> {
        self.step(|_| Ok(()))?;
        let zoo = self.loader.take().expect("checked by step").finish().map_err(js_err)?;
        let inner = Inner {
            zoo,
            backend: self.backend.clone(),
            fallback_reason: self.fallback_reason.clone(),
            last: RefCell::new(None),
        };
        Ok(Session { inner: Rc::new(inner) })
    }
}
