//! Errors that name the file, row and field at fault, and the process exit code each maps to.
//!
//! Bad input is expected input: every loader returns one of these instead of panicking, and
//! the binary prints it on stderr and exits with [`Error::exit_code`].

use std::fmt;
use std::path::{Path, PathBuf};

/// Where in an input file a problem sits. Rows count data rows from 1 (the header is not a
/// row); for CSV files the text line is given too (header is line 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// The whole file (e.g. a missing column).
    File,
    /// A data row of a table file; `line` is the text line for CSV, `None` for Parquet.
    Row {
        /// Data row number, counted from 1 (the header is not a row).
        row: usize,
        /// Text line of a CSV file (the header is line 1); `None` for Parquet.
        line: Option<usize>,
    },
    /// A text line of a TOML file.
    Line(usize),
}

/// Everything that can stop a command, by what went wrong.
#[derive(Debug)]
pub enum Error {
    /// A request the command cannot carry out as asked (arguments that do not fit together
    /// or exceed a limit), independent of any file's content.
    Usage {
        /// What cannot be done, and what would be accepted.
        message: String,
    },
    /// A problem with an input file's content: scenario TOML, market or positions file.
    Input {
        /// The input file at fault.
        file: PathBuf,
        /// Where in the file the problem sits.
        location: Location,
        /// The column or scenario key at fault (e.g. `quantity`, `run.paths`), if one is.
        field: Option<String>,
        /// What is wrong, in plain words.
        message: String,
    },
    /// The model is unusable as given (e.g. a correlation matrix that is not positive
    /// definite and was not repaired).
    Model {
        /// The scenario file the model comes from.
        file: PathBuf,
        /// Why the model is unusable, in plain words.
        message: String,
    },
    /// A failure writing results.
    Output {
        /// The output file or folder being written (for JSON that could not be serialised for
        /// stdout, the input file it was about).
        path: PathBuf,
        /// The cause: the I/O or serialisation error's text.
        message: String,
    },
    /// A computation failed numerically (a bug or an input beyond floating point).
    Numerical {
        /// What failed, in plain words.
        message: String,
    },
    /// The machine could not provide what the run needs (e.g. worker threads).
    Resource {
        /// What could not be had, in plain words.
        message: String,
    },
}

/// Exit code for success.
pub const EXIT_OK: u8 = 0;
/// Exit code for a failure writing outputs, a numerical failure or a lack of resources.
pub const EXIT_FAILURE: u8 = 1;
/// Exit code for a command line that is refused (clap's own convention, and requests the
/// command cannot carry out).
pub const EXIT_USAGE: u8 = 2;
/// Exit code for bad input data: scenario, market or positions file.
pub const EXIT_INPUT: u8 = 3;
/// Exit code for an unusable model (e.g. correlation matrix not positive definite).
pub const EXIT_MODEL: u8 = 4;

impl Error {
    /// An input error at a given place of a file.
    pub fn input(
        file: &Path,
        location: Location,
        field: Option<&str>,
        message: impl Into<String>,
    ) -> Self {
        Error::Input {
            file: file.to_path_buf(),
            location,
            field: field.map(str::to_owned),
            message: message.into(),
        }
    }

    /// An input error about one field of a data row.
    pub fn in_row(
        file: &Path,
        location: Location,
        field: &str,
        message: impl Into<String>,
    ) -> Self {
        Self::input(file, location, Some(field), message)
    }

    /// An input error about a whole file (unreadable, empty, missing column…).
    pub fn in_file(file: &Path, message: impl Into<String>) -> Self {
        Self::input(file, Location::File, None, message)
    }

    /// A failure writing `path` (an output file or folder).
    pub fn output(path: &Path, cause: impl fmt::Display) -> Self {
        Error::Output {
            path: path.to_path_buf(),
            message: cause.to_string(),
        }
    }

    /// The process exit code that tells a script what kind of failure this was.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Input { .. } => EXIT_INPUT,
            Error::Model { .. } => EXIT_MODEL,
            Error::Usage { .. } => EXIT_USAGE,
            Error::Output { .. } | Error::Numerical { .. } | Error::Resource { .. } => EXIT_FAILURE,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Input {
                file,
                location,
                field,
                message,
            } => {
                write!(f, "{}", file.display())?;
                match location {
                    Location::File => {}
                    Location::Row {
                        row,
                        line: Some(line),
                    } => write!(f, ", row {row} (line {line})")?,
                    Location::Row { row, line: None } => write!(f, ", row {row}")?,
                    Location::Line(line) => write!(f, ", line {line}")?,
                }
                if let Some(field) = field {
                    write!(f, ", field '{field}'")?;
                }
                write!(f, ": {message}")
            }
            Error::Model { file, message } => write!(f, "{}: {message}", file.display()),
            Error::Output { path, message } => {
                write!(f, "cannot write {}: {message}", path.display())
            }
            Error::Usage { message } => write!(f, "{message}"),
            Error::Numerical { message } => write!(f, "numerical failure: {message}"),
            Error::Resource { message } => write!(f, "{message}"),
        }
    }
}

impl std::error::Error for Error {}

/// Result with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names_file_row_line_and_field() {
        let e = Error::in_row(
            Path::new("book.csv"),
            Location::Row {
                row: 3,
                line: Some(4),
            },
            "quantity",
            "expected a number, found 'abc'",
        );
        assert_eq!(
            e.to_string(),
            "book.csv, row 3 (line 4), field 'quantity': expected a number, found 'abc'"
        );
        assert_eq!(e.exit_code(), EXIT_INPUT);
    }
}
