//! The plugin toolchains of JavaScript/TypeScript and Python, made ready on
//! first use, and plugin projects built with them through wasp's own
//! `wasp plugin build` code:
//!
//! - npm: `npm install` in `plugins/` (the examples' shared `node_modules`,
//!   pinned in `plugins/package.json`); Node.js itself is installed with
//!   apt-get when missing and allowed;
//! - Python: componentize-py (pinned) installed with pip into
//!   `target/test-scratch/python`;
//! - Rust projects build into one cargo target dir under the scratch root.
//!
//! Builds run one at a time (the machine has two cores) and each project is
//! built once per test process.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

use wasp::authoring::{BuildOptions, Project, assets::versions};

use crate::python::{pip, python};
use crate::scratch_root;

fn succeeds(command: &mut Command) -> bool {
    command.output().is_ok_and(|o| o.status.success())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// The repository's `plugins/` folder.
pub fn plugins_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../plugins")
        .canonicalize()
        .unwrap()
}

/// Node.js and npm, then the examples' npm packages.
fn npm_ready() {
    static READY: OnceLock<()> = OnceLock::new();
    READY.get_or_init(|| {
        let has = |tool: &str| succeeds(Command::new(tool).arg("--version"));
        if !(has("node") && has("npm")) {
            let installed = is_root()
                && succeeds(Command::new("apt-get").args(["update", "-qq"]))
                && succeeds(
                    Command::new("apt-get")
                        .args(["install", "-y", "-qq", "nodejs", "npm"])
                        .env("DEBIAN_FRONTEND", "noninteractive"),
                );
            assert!(
                installed,
                "the JS/TS plugin tests need Node.js 18+ and npm (Debian: `apt-get install nodejs npm`)"
            );
        }
        let plugins = plugins_dir();
        let marker = plugins.join("node_modules/@bytecodealliance/componentize-js/package.json");
        let wanted = std::fs::read_to_string(plugins.join("package.json")).unwrap();
        let stamp = plugins.join("node_modules/.wasp-installed");
        if marker.is_file() && std::fs::read_to_string(&stamp).is_ok_and(|s| s == wanted) {
            return;
        }
        let output = Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(&plugins)
            .output()
            .expect("npm runs");
        assert!(
            output.status.success(),
            "npm install in plugins/ failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        std::fs::write(&stamp, wanted).unwrap();
    });
}

/// A folder holding the `componentize_py` package, installed on first use.
pub fn python_packages() -> PathBuf {
    static PACKAGES: OnceLock<PathBuf> = OnceLock::new();
    PACKAGES
        .get_or_init(|| {
            let python = python();
            let dir = scratch_root().join("python");
            let requirement = format!("componentize-py=={}", versions::COMPONENTIZE_PY);
            let packages = dir.join(requirement.replace("==", "-"));
            let marker = packages.join(".installed");
            if !marker.is_file() {
                std::fs::create_dir_all(&dir).unwrap();
                let _ = std::fs::remove_dir_all(&packages);
                let output = Command::new(&python)
                    .args(pip(&python, &dir))
                    .args([
                        "install",
                        "--quiet",
                        "--disable-pip-version-check",
                        "--no-warn-script-location",
                        "--target",
                    ])
                    .arg(&packages)
                    .arg(&requirement)
                    .env("PIP_ROOT_USER_ACTION", "ignore")
                    .output()
                    .expect("pip runs");
                assert!(
                    output.status.success(),
                    "cannot install {requirement} from PyPI:\n{}",
                    String::from_utf8_lossy(&output.stderr)
                );
                std::fs::write(&marker, &requirement).unwrap();
            }
            packages
        })
        .clone()
}

/// Build the plugin project in `dir` with `wasp plugin build`'s code, once
/// per process; panics with the toolchain's output when the build fails.
pub fn build_project(dir: &Path) -> PathBuf {
    static BUILT: OnceLock<Mutex<HashMap<PathBuf, PathBuf>>> = OnceLock::new();
    let built = BUILT.get_or_init(Mutex::default);
    let mut built = built.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(artifact) = built.get(dir) {
        return artifact.clone();
    }
    let project = Project::open(dir).unwrap_or_else(|e| panic!("{e}"));
    let mut options = BuildOptions {
        cargo_target_dir: Some(scratch_root().join("rust-plugins")),
        python_packages: None,
        capture_output: true,
    };
    match project.lang {
        wasp::authoring::Lang::Js | wasp::authoring::Lang::Ts => npm_ready(),
        wasp::authoring::Lang::Python => options.python_packages = Some(python_packages()),
        wasp::authoring::Lang::Rust => {}
    }
    let mut log = Vec::new();
    let artifact = wasp::authoring::build_with(&project, &options, &mut log).unwrap_or_else(|e| {
        panic!(
            "building {} failed: {e}\n{}",
            dir.display(),
            String::from_utf8_lossy(&log)
        )
    });
    built.insert(dir.to_owned(), artifact.clone());
    artifact
}

/// An example plugin of another language (`js`, `ts`, `python`), built.
pub fn example(lang: &str, name: &str) -> PathBuf {
    build_project(&plugins_dir().join(lang).join("examples").join(name))
}
