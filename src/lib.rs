//! Unforge: counterfactual explanations for face-forgery detectors.
//!
//! A face is inverted into StyleGAN2's W+ space by an e4e encoder; the latent is pushed by
//! sign-gradient steps until a detector calls the regenerated face real. The difference
//! between the counterfactual and the reconstruction shows what the detector relied on.
//!
//! This crate is the backend-agnostic core (networks, search, explanations, image I/O) plus
//! two thin fronts: the browser binding (`web`, wasm32 only) and the `unforge` CLI.

#[cfg(not(target_arch = "wasm32"))]
pub mod convert;
pub mod error;
pub mod eval;
pub mod explain;
pub mod image;
pub mod inversion;
pub mod metrics;
pub mod networks;
pub mod pipeline;
pub mod rng;
pub mod search;
pub mod synth;
#[cfg(not(target_arch = "wasm32"))]
pub mod train;
pub mod weights;
pub mod zoo;
pub mod zoo_init;

#[cfg(target_arch = "wasm32")]
pub mod web;

pub use error::{Error, Result};

/// Runs a future to completion on the current thread. Native backends resolve readbacks
/// without an event loop, so polling is enough; the browser uses its own executor.
#[cfg(not(target_arch = "wasm32"))]
pub fn block_on<F: std::future::Future>(fut: F) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::yield_now();
    }
}

/// Polls a readback that is ready at once (the CPU backend's), on every target. Used where
/// the core works on the CPU device only, such as building the seeded zoo.
pub(crate) fn block_on_ready<T>(fut: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    let mut fut = std::pin::pin!(fut);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match fut.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => v,
        std::task::Poll::Pending => Err(Error::Backend("a CPU readback did not complete at once".into())),
    }
}
