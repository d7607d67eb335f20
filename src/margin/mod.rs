//! Margin along the paths: each `[[venue]]`'s equity against its initial and maintenance
//! margin (linear or portfolio), margin calls, liquidations and capital buffers.

pub mod venue_book;
pub mod projection;
