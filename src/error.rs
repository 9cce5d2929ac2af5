//! One error type for the whole core. Every variant names what went wrong and where
//! (file, key, shape, limit), because the same text reaches a terminal, a worker and a page.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum Error {
    #[error("{origin}: not a readable safetensors file: {reason}")]
    WeightFile { origin: String, reason: String },

    #[error("{origin}: not a readable TensorFlow.js graph model: {reason}")]
    GraphModel { origin: String, reason: String },

    #[error("{origin}: the weights do not match the network:\n{}", problems.join("\n"))]
    WeightMismatch { origin: String, problems: Vec<String> },

    #[error("model manifest: {0}")]
    Manifest(String),

    #[error("{origin}: {reason}")]
    Image { origin: String, reason: String },

    #[error("{0}")]
    Config(String),

    #[error("backend: {0}")]
    Backend(String),

    #[error("{path}: {reason}")]
    Io { path: String, reason: String },
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn config(msg: impl Into<String>) -> Self {
        Error::Config(msg.into())
    }
    pub fn manifest(msg: impl Into<String>) -> Self {
        Error::Manifest(msg.into())
    }
}
