//! What the search changed, shown so a person can read it.

pub mod cam;
pub mod residual;

pub use cam::{class_activation, feature_map, Cam, CamMethod, CamTarget};
pub use residual::ResidualMap;
