//! `wasp plugin build [DIR]`: turn a plugin project into a component at
//! `dist/<name>.wasm` with its language's toolchain, printing each command
//! it runs.
//!
//! Before building, the project gets what the `wasp` binary carries (see
//! [`super::assets`]): the WIT package and a `project` world exporting the
//! project's kinds (`.wasp/wit/`), and the SDK of its language (`src/wasp.js`
//! with `src/wasp.d.ts`, or `src/wasp.py`), so a project builds against the
//! wasp that builds it.
//!
//! - Rust: `cargo build --release --target wasm32-wasip2` (the target is
//!   added with rustup when missing);
//! - JavaScript / TypeScript: `npm install` when componentize-js cannot be
//!   found, `tsc --noEmit` for TypeScript, then `.wasp/build.mjs` (esbuild,
//!   then componentize-js through its JavaScript API);
//! - Python: `componentize-py … componentize app`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::assets::{self, versions};
use super::project::{Lang, Project};

/// Why a build failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A tool the language needs is not installed.
    #[error("{tool} is not installed (or not on PATH); {install}")]
    MissingTool {
        /// The tool.
        tool: String,
        /// How to install it.
        install: String,
    },
    /// A command failed.
    #[error("`{command}` failed ({status}); its output is above")]
    Failed {
        /// The command line.
        command: String,
        /// Its exit status.
        status: String,
    },
    /// The toolchain succeeded but left no component where expected.
    #[error("the build finished but {0} is missing")]
    NoArtifact(PathBuf),
    /// Reading or writing project files failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BuildError + '_ {
    move |source| BuildError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Where a build finds what it needs beyond the project and `PATH`.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// Cargo's target directory for Rust projects (default: `CARGO_TARGET_DIR`,
    /// else the project's `target/`).
    pub cargo_target_dir: Option<PathBuf>,
    /// A directory holding the `componentize_py` package (as `pip install
    /// --target` leaves it), used when `componentize-py` is not on `PATH`.
    pub python_packages: Option<PathBuf>,
    /// Write the toolchain's output into `out` instead of letting it through
    /// to the terminal (tests).
    pub capture_output: bool,
}

/// Build `project`; report each command on `out`. Returns the component's path.
pub fn build(project: &Project, out: &mut dyn Write) -> Result<PathBuf, BuildError> {
    build_with(project, &BuildOptions::default(), out)
}

/// [`build`] with options.
pub fn build_with(
    project: &Project,
    options: &BuildOptions,
    out: &mut dyn Write,
) -> Result<PathBuf, BuildError> {
    let artifact = project.artifact();
    let dist = artifact.parent().expect("dist/ has a parent").to_owned();
    std::fs::create_dir_all(&dist).map_err(io(&dist))?;
    match project.lang {
        Lang::Rust => build_rust(project, options, &artifact, out)?,
        Lang::Js | Lang::Ts => build_js(project, options, &artifact, out)?,
        Lang::Python => build_python(project, options, &artifact, out)?,
    }
    if !artifact.is_file() {
        return Err(BuildError::NoArtifact(artifact));
    }
    Ok(artifact)
}

/// Write the WIT package and the project's world into `.wasp/wit/`.
fn write_wit(project: &Project) -> Result<PathBuf, BuildError> {
    let wit = project.dir.join(".wasp").join("wit");
    std::fs::create_dir_all(&wit).map_err(io(&wit))?;
    for (name, text) in assets::WIT {
        write_if_changed(&wit.join(name), text)?;
    }
    write_if_changed(
        &wit.join("project.wit"),
        &assets::project_world(&project.kinds),
    )?;
    Ok(wit)
}

fn write_if_changed(path: &Path, text: &str) -> Result<(), BuildError> {
    if std::fs::read_to_string(path).is_ok_and(|old| old == text) {
        return Ok(());
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io(parent))?;
    }
    std::fs::write(path, text).map_err(io(path))
}

/// Run `command` in `dir`, printing it first; its output goes to ours.
fn run(
    mut command: Command,
    dir: &Path,
    options: &BuildOptions,
    out: &mut dyn Write,
) -> Result<(), BuildError> {
    command.current_dir(dir);
    let shown = show(&command);
    let _ = writeln!(out, "$ {shown}");
    let _ = out.flush();
    let failed = |e: std::io::Error| BuildError::Failed {
        command: shown.clone(),
        status: e.to_string(),
    };
    let status = if options.capture_output {
        let output = command.output().map_err(failed)?;
        let _ = out.write_all(&output.stdout);
        let _ = out.write_all(&output.stderr);
        output.status
    } else {
        command.status().map_err(failed)?
    };
    if !status.success() {
        return Err(BuildError::Failed {
            command: shown,
            status: status.to_string(),
        });
    }
    Ok(())
}

fn show(command: &Command) -> String {
    std::iter::once(command.get_program())
        .chain(command.get_args())
        .map(|part| {
            let part = part.to_string_lossy();
            if part.contains(' ') {
                format!("'{part}'")
            } else {
                part.into_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `path` relative to the project (commands run in its folder), when inside it.
fn relative<'a>(project: &Project, path: &'a Path) -> &'a Path {
    path.strip_prefix(&project.dir).unwrap_or(path)
}

/// Whether `tool --version` runs.
fn has(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn build_rust(
    project: &Project,
    options: &BuildOptions,
    artifact: &Path,
    out: &mut dyn Write,
) -> Result<(), BuildError> {
    const TARGET: &str = "wasm32-wasip2";
    if !has("cargo") {
        return Err(BuildError::MissingTool {
            tool: "cargo".into(),
            install: "install Rust with rustup: https://rustup.rs".into(),
        });
    }
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .current_dir(&project.dir)
        .output()
        .is_ok_and(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .any(|l| l.trim() == TARGET)
        });
    if !installed && has("rustup") {
        let mut add = Command::new("rustup");
        add.args(["target", "add", TARGET]);
        run(add, &project.dir, options, out)?;
    }
    let target_dir = options
        .cargo_target_dir
        .clone()
        .or_else(|| std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from))
        .unwrap_or_else(|| project.dir.join("target"));
    let mut cargo = Command::new("cargo");
    cargo
        .args(["build", "--release", "--target", TARGET, "--target-dir"])
        .arg(&target_dir);
    run(cargo, &project.dir, options, out)?;
    let built = target_dir
        .join(TARGET)
        .join("release")
        .join(format!("{}.wasm", project.name.replace('-', "_")));
    std::fs::copy(&built, artifact).map_err(io(&built))?;
    let _ = writeln!(out, "copied {} → {}", built.display(), artifact.display());
    Ok(())
}

/// The first `node_modules/<package>` found from `dir` upwards (Node's own
/// resolution: a project inside an npm workspace uses the workspace's).
fn find_package(dir: &Path, package: &str) -> Option<PathBuf> {
    dir.ancestors()
        .map(|d| d.join("node_modules").join(package))
        .find(|p| p.join("package.json").is_file())
}

fn build_js(
    project: &Project,
    options: &BuildOptions,
    artifact: &Path,
    out: &mut dyn Write,
) -> Result<(), BuildError> {
    if !has("node") {
        return Err(BuildError::MissingTool {
            tool: "node".into(),
            install:
                "install Node.js 18 or newer with npm (Debian/Ubuntu: `apt-get install nodejs npm`)"
                    .into(),
        });
    }
    let src = project.dir.join("src");
    write_if_changed(&src.join("wasp.js"), assets::JS_SDK)?;
    write_if_changed(&src.join("wasp.d.ts"), assets::JS_SDK_TYPES)?;
    let wit = write_wit(project)?;
    let script = project.dir.join(".wasp").join("build.mjs");
    write_if_changed(&script, assets::JS_BUILD)?;
    let needed = ["@bytecodealliance/componentize-js", "esbuild"];
    if needed
        .iter()
        .any(|p| find_package(&project.dir, p).is_none())
    {
        if !has("npm") {
            return Err(BuildError::MissingTool {
                tool: "npm".into(),
                install: "install it with Node.js (Debian/Ubuntu: `apt-get install npm`)".into(),
            });
        }
        let mut npm = Command::new("npm");
        npm.args(["install", "--no-audit", "--no-fund"]);
        run(npm, &project.dir, options, out)?;
    }
    if project.lang == Lang::Ts {
        let tsc = find_package(&project.dir, "typescript")
            .map(|p| p.join("bin").join("tsc"))
            .ok_or_else(|| BuildError::MissingTool {
                tool: "typescript".into(),
                install: format!(
                    "add it to the project: `npm install --save-dev typescript@{}`",
                    versions::TYPESCRIPT
                ),
            })?;
        let mut check = Command::new("node");
        check
            .arg(relative(project, &tsc))
            .args(["--noEmit", "-p", "."]);
        run(check, &project.dir, options, out)?;
    }
    let mut node = Command::new("node");
    node.arg(relative(project, &script))
        .arg(project.lang.entry())
        .arg(world())
        .arg(relative(project, &wit))
        .arg(relative(project, artifact));
    run(node, &project.dir, options, out)
}

/// The name of the project world written by [`write_wit`], e.g. `wasp:plugin/project`.
fn world() -> String {
    format!("{}/project", crate::plugin::bindings::wit_package::name())
}

/// `componentize-py` from `PATH`, else its package run by `python3`.
fn componentize_py(options: &BuildOptions) -> Result<Command, BuildError> {
    if has("componentize-py") {
        return Ok(Command::new("componentize-py"));
    }
    let launcher = "import sys; from componentize_py import script; sys.argv[0] = 'componentize-py'; sys.exit(script())";
    let mut probe = Command::new("python3");
    probe.args(["-c", "import componentize_py"]);
    if let Some(packages) = &options.python_packages {
        probe.env("PYTHONPATH", packages);
    }
    if probe.output().is_ok_and(|o| o.status.success()) {
        let mut command = Command::new("python3");
        command.args(["-c", launcher]);
        if let Some(packages) = &options.python_packages {
            command.env("PYTHONPATH", packages);
        }
        return Ok(command);
    }
    Err(BuildError::MissingTool {
        tool: "componentize-py".into(),
        install: format!(
            "install it with `pip install componentize-py=={}` (it needs Python 3.10 or newer)",
            versions::COMPONENTIZE_PY
        ),
    })
}

fn build_python(
    project: &Project,
    options: &BuildOptions,
    artifact: &Path,
    out: &mut dyn Write,
) -> Result<(), BuildError> {
    let mut componentize = componentize_py(options)?;
    let src = project.dir.join("src");
    write_if_changed(&src.join("wasp.py"), assets::PYTHON_SDK)?;
    let wit = write_wit(project)?;
    componentize
        .arg("-d")
        .arg(relative(project, &wit))
        .arg("-w")
        .arg(world())
        .args(["componentize", "app", "-p", "src", "-o"])
        .arg(relative(project, artifact));
    run(componentize, &project.dir, options, out)
}
