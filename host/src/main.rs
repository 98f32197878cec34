//! The `wasp` binary: everything lives in the library; see `wasp::cli`.

fn main() -> std::process::ExitCode {
    wasp::cli::main()
}
