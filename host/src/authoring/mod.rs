//! Plugin authoring: the tools a plugin author runs, in Rust, JavaScript,
//! TypeScript or Python.
//!
//! - [`scaffold`]: `wasp plugin new` writes a complete project (sources,
//!   manifest, a sample event, test cases, a README);
//! - [`project`]: what a project directory is (its language, name, kinds);
//! - [`build`]: `wasp plugin build` runs the language's toolchain and writes
//!   `dist/<name>.wasm`;
//! - [`cases`]: test cases (`cases.json`) run against a built component by
//!   `wasp plugin test`;
//! - [`assets`]: what the binary carries for all of this: the WIT, the JS/TS
//!   and Python SDKs, the project templates.

pub mod assets;
pub mod build;
pub mod cases;
pub mod project;
pub mod scaffold;

pub use build::{BuildError, BuildOptions, build, build_with};
pub use cases::{CaseFile, CasesReport};
pub use project::{Lang, Project, ProjectError};
pub use scaffold::{ScaffoldError, scaffold};
