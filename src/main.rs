//! The `tracebridge` binary: see `tracebridge --help`.

fn main() -> std::process::ExitCode {
    tracebridge::cli::main()
}
