//! Stress testing: named scenarios and spot × vol grids, historical replay, reverse stress.

pub mod scenarios;
pub mod replay;
pub mod reverse;
pub mod report;
