//! Results and their presentation: the result documents with their text tables, the files of
//! `--out`, and the HTML committee report with its SVG charts.

pub mod text;
pub mod files;
pub mod html;
pub mod svg;
