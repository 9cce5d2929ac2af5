//! The search gradient in float64 (a process of its own: a device's float type is set once).

mod common;

use burn::tensor::Device;
use common::parity::gradient_error;

#[test]
fn search_gradient_is_exact_in_float64() {
    // The same graph in float64 leaves only the rounding of the float32 inputs: the
    // implementation computes exactly what torch autograd computes.
    let mut dev = Device::flex();
    dev.configure(burn::tensor::FloatDType::F64).unwrap();
    let (ours, _) = gradient_error(&dev);
    assert!(ours <= 1e-6, "float64 ∇w differs from torch float64 autograd by {ours}");
}
