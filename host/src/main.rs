//! The `wasp` binary: everything lives in the library; see `wasp::cli`.

/// mimalloc: the hot path allocates many small objects (HTTP, JSON, plugin
/// calls), which it serves faster than glibc's allocator (BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    wasp::cli::main()
}
