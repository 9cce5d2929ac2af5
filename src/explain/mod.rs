//! What the search changed, shown so a person can read it.

pub mod residual;

pub use residual::ResidualMap;
