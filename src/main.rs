//! The `tailrisk` command: a thin shell over the library's [`tailrisk::cli`].

fn main() -> std::process::ExitCode {
    tailrisk::cli::main()
}
