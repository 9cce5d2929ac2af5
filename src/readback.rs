//! Reading tensors back to the host, and driving the futures that do it. The bottom of the
//! crate: every layer above reads results through here, on any backend.

use burn::tensor::Tensor;

use crate::error::{Error, Result};

/// Reads a float tensor back to the host without blocking, as f32 whatever the device's
/// precision (`precision`).
pub async fn read_vec<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>> {
    let data = t.into_data_async().await.map_err(|e| Error::Backend(format!("{e:?}")))?;
    data.try_into_vec_as::<f32>().map_err(|e| Error::Backend(format!("{e:?}")))
}

/// Reads `[B, 3, H, W]` images in [-1, 1] back as planar vectors, one per image.
pub async fn read_planar(images: Tensor<4>) -> Result<Vec<Vec<f32>>> {
    let [b, c, h, w] = images.dims();
    let flat = read_vec(images).await?;
    Ok(flat.chunks(c * h * w).take(b).map(|s| s.to_vec()).collect())
}

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
pub fn block_on_ready<T>(fut: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    let mut fut = std::pin::pin!(fut);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match fut.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => v,
        std::task::Poll::Pending => Err(Error::Backend("a CPU readback did not complete at once".into())),
    }
}
