//! The float type the networks compute in. f32 by default everywhere; f16 where a GPU does
//! half-precision arithmetic natively (WebGPU's `shader-f16`), which halves the memory and the
//! bandwidth every layer moves. Weights stay f32 (or f16) on disk and are converted as they are
//! loaded; everything read back to the host comes back as f32 (`readback`).

use burn::tensor::{DType, Device, DeviceConfig, FloatDType};

use crate::error::{Error, Result};

/// The float type of every tensor a device makes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Precision {
    #[default]
    F32,
    F16,
}

impl Precision {
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "f32" => Ok(Self::F32),
            "f16" => Ok(Self::F16),
            other => Err(Error::config(format!("precision `{other}`: use f32 or f16"))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::F32 => "f32",
            Self::F16 => "f16",
        }
    }

    /// Makes `device` compute in this precision. It must come before the first tensor on the
    /// device: the float type of a device is fixed once anything has been made on it.
    pub fn apply(self, device: &mut Device) -> Result<()> {
        let dtype = match self {
            Self::F32 => FloatDType::F32,
            Self::F16 => FloatDType::F16,
        };
        if device.settings().float_dtype == dtype {
            return Ok(());
        }
        if !device.supports_dtype(DType::from(dtype)) {
            return Err(Error::Backend(format!(
                "this device does not compute in {} (on WebGPU it needs an adapter with shader-f16)",
                self.name()
            )));
        }
        device
            .configure(DeviceConfig::default().float_dtype(dtype))
            .map_err(|e| Error::Backend(format!("cannot set the device's precision to {}: {e}", self.name())))
    }
}

/// Refuses to train with Adam (`what`) on a device that computes in f16: pivotal tuning and
/// the W+ refinement diverge there (README, "Half precision"), since Adam's moments and updates
/// would be f16 too.
pub fn require_f32(device: &Device, what: &str) -> Result<()> {
    match device.settings().float_dtype {
        FloatDType::F32 => Ok(()),
        other => Err(Error::config(format!(
            "{what} trains with Adam, which diverges in {other:?} (measured): use --precision f32, or set its steps to 0"
        ))),
    }
}
