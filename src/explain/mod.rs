//! What the search changed, shown so a person can read it, and scored against the truth
//! where it is known.

pub mod cam;
pub mod residual;
pub mod truth;

pub use cam::{Cam, CamMethod, CamTarget, class_activation, feature_map};
pub use residual::ResidualMap;
pub use truth::{GroundTruth, Localisation};
