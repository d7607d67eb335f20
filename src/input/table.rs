//! Reading CSV and Parquet tables (with polars) into text cells that the loaders validate
//! field by field, so that every error can name the file, the row and the column.
//!
//! CSV is read with every column as text (no type inference that could silently turn a bad
//! number into a null); Parquet columns are cast to text. Values are then parsed by the
//! typed accessors of [`Row`].

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Once;

use chrono::{DateTime, Utc};
use polars::prelude::*;

use crate::error::{Error, Location, Result};
use crate::time::{parse_instant, OPTION_EXPIRY_HOUR};

/// The file format of a table, chosen by extension (`.parquet` / `.pq`, else CSV).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Comma-separated text with a header row (any extension but `.parquet` / `.pq`).
    Csv,
    /// Apache Parquet (`.parquet` or `.pq`).
    Parquet,
    /// Records given in a request (the service's JSON), not read from a file.
    Records,
}

impl Format {
    /// The format a path's extension implies.
    pub fn of(path: &Path) -> Format {
        match path.extension().and_then(|e| e.to_str()) {
            Some(ext) if ext.eq_ignore_ascii_case("parquet") || ext.eq_ignore_ascii_case("pq") => {
                Format::Parquet
            }
            _ => Format::Csv,
        }
    }
}

/// A table of optional text cells, column-major, with the file it came from.
#[derive(Debug)]
pub struct Table {
    file: PathBuf,
    format: Format,
    names: Vec<String>,
    columns: Vec<TextColumn>,
    rows: usize,
}

/// One column's cells: their text end to end, and each cell's span in it (`None` for a
/// null). One allocation per column rather than one per cell: a book has 10⁴–10⁶ cells.
#[derive(Debug, Default)]
struct TextColumn {
    text: String,
    cells: Vec<Option<(usize, usize)>>,
}

impl TextColumn {
    fn push(&mut self, cell: Option<&str>) {
        self.cells.push(cell.map(|cell| {
            let start = self.text.len();
            self.text.push_str(cell);
            (start, self.text.len())
        }));
    }

    fn cell(&self, row: usize) -> Option<&str> {
        self.cells[row].map(|(start, end)| &self.text[start..end])
    }
}

impl Table {
    /// Reads a CSV (header required) or Parquet file.
    pub fn read(path: &Path) -> Result<Table> {
        if !path.is_file() {
            return Err(Error::in_file(path, "file not found"));
        }
        let format = Format::of(path);
        let read = || match format {
            Format::Csv | Format::Records => read_csv_frame(path),
            Format::Parquet => read_parquet_frame(path),
        };
        let frame = without_panics(read).map_err(|panic| {
            Error::in_file(
                path,
                format!("the file is corrupt: the reader failed with '{panic}'"),
            )
        })??;
        Self::from_frame(path, format, &frame)
    }

    fn from_frame(path: &Path, format: Format, frame: &DataFrame) -> Result<Table> {
        let mut names = Vec::new();
        let mut columns = Vec::new();
        for column in frame.columns() {
            let name = column.name().to_string();
            let text = column
                .cast(&DataType::String)
                .map_err(|e| Error::in_file(path, format!("column '{name}' is unreadable: {e}")))?;
            let strings = text
                .str()
                .map_err(|e| Error::in_file(path, format!("column '{name}': {e}")))?;
            if strings.len() != frame.height() {
                return Err(Error::in_file(
                    path,
                    format!(
                        "the file is corrupt: column '{name}' has {} values for {} rows",
                        strings.len(),
                        frame.height()
                    ),
                ));
            }
            let mut cells = TextColumn::default();
            for cell in strings.iter() {
                cells.push(cell);
            }
            columns.push(cells);
            names.push(name.trim().to_owned());
        }
        Ok(Table {
            file: path.to_path_buf(),
            format,
            names,
            columns,
            rows: frame.height(),
        })
    }

    /// A table of `records` (cells by column name; a missing name is an empty cell) from a
    /// source named `source` (e.g. `POST /trades`), with the columns `names` in that order.
    pub fn from_records(
        source: &Path,
        names: &[String],
        records: &[std::collections::BTreeMap<String, String>],
    ) -> Table {
        let columns = names
            .iter()
            .map(|name| {
                let mut column = TextColumn::default();
                for record in records {
                    column.push(record.get(name).map(String::as_str));
                }
                column
            })
            .collect();
        Table {
            file: source.to_path_buf(),
            format: Format::Records,
            names: names.to_vec(),
            columns,
            rows: records.len(),
        }
    }

    /// The file this table was read from.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// Number of data rows.
    pub fn len(&self) -> usize {
        self.rows
    }

    /// True when the file has a header but no data row.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// The index of a column that must be present.
    pub fn require_column(&self, name: &str) -> Result<usize> {
        self.column(name).ok_or_else(|| {
            Error::input(
                &self.file,
                Location::File,
                Some(name),
                format!(
                    "required column is missing (columns found: {})",
                    self.names.join(", ")
                ),
            )
        })
    }

    /// The column names, in file order (trimmed).
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The index of a column, if present.
    pub fn column(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n.eq_ignore_ascii_case(name))
    }

    /// The data rows, in file order.
    pub fn rows(&self) -> impl Iterator<Item = Row<'_>> {
        (0..self.rows).map(move |index| Row { table: self, index })
    }
}

/// One data row of a [`Table`], with typed accessors whose errors name file, row and field.
#[derive(Clone, Copy)]
pub struct Row<'a> {
    table: &'a Table,
    index: usize,
}

impl<'a> Row<'a> {
    /// Where this row sits: data row number (from 1) and, for CSV, its text line (the header
    /// is line 1; a quoted field spanning lines would shift later line numbers).
    pub fn location(&self) -> Location {
        let row = self.index + 1;
        let line = (self.table.format == Format::Csv).then_some(row + 1);
        Location::Row { row, line }
    }

    /// An error about `field` of this row.
    pub fn error(&self, field: &str, message: impl Into<String>) -> Error {
        Error::in_row(&self.table.file, self.location(), field, message)
    }

    /// The trimmed text of a cell; `None` for a missing column, a null or an empty cell.
    pub fn text(&self, field: &str) -> Option<&'a str> {
        let col = self.table.column(field)?;
        let cell = self.table.columns[col].cell(self.index)?.trim();
        (!cell.is_empty()).then_some(cell)
    }

    /// The text of a cell that must not be empty.
    pub fn required_text(&self, field: &str) -> Result<&'a str> {
        self.text(field)
            .ok_or_else(|| self.error(field, "is empty"))
    }

    /// A finite number from a cell that must not be empty.
    pub fn number(&self, field: &str) -> Result<f64> {
        let text = self.required_text(field)?;
        self.parse_number(field, text)
    }

    /// A finite number above 0 (a strike, a price).
    pub fn positive_number(&self, field: &str) -> Result<f64> {
        let value = self.number(field)?;
        if value > 0.0 {
            Ok(value)
        } else {
            Err(self.error(field, format!("must be positive, found {value}")))
        }
    }

    /// An option expiry (ISO 8601; a bare date means [`OPTION_EXPIRY_HOUR`]:00 UTC) after
    /// `valuation_time`.
    pub fn expiry_after(
        &self,
        field: &str,
        valuation_time: DateTime<Utc>,
    ) -> Result<DateTime<Utc>> {
        let text = self.required_text(field)?;
        let expiry = parse_instant(text, OPTION_EXPIRY_HOUR).ok_or_else(|| {
            self.error(
                field,
                format!("expected an ISO 8601 date or UTC time, found '{text}'"),
            )
        })?;
        if expiry <= valuation_time {
            return Err(self.error(
                field,
                format!(
                    "expired at {} before the valuation time {}",
                    expiry.to_rfc3339(),
                    valuation_time.to_rfc3339()
                ),
            ));
        }
        Ok(expiry)
    }

    /// A finite number, or `None` when the cell is empty or the column absent.
    pub fn optional_number(&self, field: &str) -> Result<Option<f64>> {
        self.text(field)
            .map(|text| self.parse_number(field, text))
            .transpose()
    }

    fn parse_number(&self, field: &str, text: &str) -> Result<f64> {
        let value: f64 = text
            .parse()
            .map_err(|_| self.error(field, format!("expected a number, found '{text}'")))?;
        if !value.is_finite() {
            return Err(self.error(field, format!("must be a finite number, found '{text}'")));
        }
        Ok(value)
    }
}

fn read_csv_frame(path: &Path) -> Result<DataFrame> {
    // polars pads short rows with nulls; a row with missing or extra fields is a broken
    // export, so refuse it and point at it before parsing.
    if let Some(ragged) = first_ragged_line(path) {
        return Err(ragged_row_error(path, ragged));
    }
    CsvReadOptions::default()
        .with_has_header(true)
        .with_infer_schema_length(Some(0))
        .with_raise_if_empty(true)
        .try_into_reader_with_file_path(Some(path.to_path_buf()))
        .and_then(|reader| reader.finish())
        .map_err(|e| csv_error(path, &e))
}

/// Longest reader message quoted in an error: polars quotes the offending text, which for
/// an unbalanced quote is the rest of the file.
const MAX_QUOTED: usize = 300;

/// Turns a polars CSV failure into an error naming the file.
fn csv_error(path: &Path, error: &PolarsError) -> Error {
    let message = error.to_string();
    let short = match message.char_indices().nth(MAX_QUOTED) {
        Some((end, _)) => format!("{}…", &message[..end]),
        None => message,
    };
    Error::in_file(path, format!("cannot parse CSV: {short}"))
}

/// The error for a row whose field count differs from the header's.
fn ragged_row_error(path: &Path, (line, found, expected): (usize, usize, usize)) -> Error {
    Error::input(
        path,
        Location::Row {
            row: line - 1,
            line: Some(line),
        },
        None,
        format!("malformed row: {found} fields where the header has {expected}"),
    )
}

/// The first line (1-based) whose field count differs from the header's, with both counts.
fn first_ragged_line(path: &Path) -> Option<(usize, usize, usize)> {
    let text = std::fs::read_to_string(path).ok()?;
    let mut lines = text.lines().enumerate();
    let (_, header) = lines.next()?;
    let expected = count_fields(header);
    lines
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| (i + 1, count_fields(line)))
        .find(|&(_, found)| found != expected)
        .map(|(i, found)| (i, found, expected))
}

/// Fields in one CSV line, honouring double quotes.
fn count_fields(line: &str) -> usize {
    let mut quoted = false;
    let mut fields = 1;
    for c in line.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => fields += 1,
            _ => {}
        }
    }
    fields
}

/// Runs `read` and returns its value, or the message of a panic inside it: polars can panic
/// on a corrupt file (a damaged Parquet footer indexes past its buffer), and bad input must
/// be an error, not a crash. While such reads run, the panic hook stays quiet (a panic in
/// polars' own threads would otherwise print before the error is reported); other panics
/// are reported as before.
fn without_panics<T>(read: impl FnOnce() -> T) -> std::result::Result<T, String> {
    static QUIET: AtomicUsize = AtomicUsize::new(0);
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if QUIET.load(Ordering::SeqCst) == 0 {
                previous(info);
            }
        }));
    });
    QUIET.fetch_add(1, Ordering::SeqCst);
    let outcome = std::panic::catch_unwind(AssertUnwindSafe(read));
    QUIET.fetch_sub(1, Ordering::SeqCst);
    outcome.map_err(|panic| {
        panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_else(|| "unknown panic".to_owned())
    })
}

fn read_parquet_frame(path: &Path) -> Result<DataFrame> {
    let file =
        std::fs::File::open(path).map_err(|e| Error::in_file(path, format!("cannot open: {e}")))?;
    ParquetReader::new(file)
        .finish()
        .map_err(|e| Error::in_file(path, format!("cannot read Parquet: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_quoted_commas_as_one_field() {
        assert_eq!(count_fields("a,b,c"), 3);
        assert_eq!(count_fields("a,\"b,c\",d"), 3);
    }
}
