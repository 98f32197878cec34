//! Builds the guest workspace in `plugins/` for `wasm32-wasip2` and embeds
//! the built-in plugins (`plugins/builtin/*`, `plugins/examples/*`) in the
//! `wasp` binary. Test-only plugins (`plugins/testing/*`) are built too, and
//! their paths are exposed to the tests.
//!
//! The build must work on a fresh machine where rustup does not install
//! targets on its own (`RUSTUP_AUTO_INSTALL=0`): when the `wasm32-wasip2`
//! standard library is missing, this script runs `rustup target add`, and if
//! that is impossible it fails naming the one command to run.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-wasip2";
/// Plugin groups embedded in the binary.
const EMBEDDED_GROUPS: [&str; 2] = ["builtin", "examples"];
/// Plugin groups built but only used by tests.
const TEST_GROUPS: [&str; 1] = ["testing"];
/// Variables the outer cargo sets that must not leak into the wasm build.
const SCRUBBED_ENV: [&str; 10] = [
    "CARGO_ENCODED_RUSTFLAGS",
    "RUSTFLAGS",
    "CARGO_BUILD_RUSTFLAGS",
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET",
    "CARGO_BUILD_TARGET_DIR",
    "RUSTC_WORKSPACE_WRAPPER",
    "CLIPPY_ARGS",
    "CARGO_PRIMARY_PACKAGE",
    "RUSTDOCFLAGS",
];

struct PluginCrate {
    /// Directory name, which is also the plugin's built-in name.
    name: String,
    /// Cargo package name.
    package: String,
    embedded: bool,
}

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let root = manifest_dir
        .parent()
        .expect("host/ has a parent")
        .to_path_buf();
    let plugins_dir = root.join("plugins");
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR"));

    let crates = discover(&plugins_dir);
    watch(&root, &plugins_dir);
    ensure_target(&root);

    let target_dir = out_dir
        .ancestors()
        .nth(4)
        .map(|target| target.join("wasm-plugins"))
        .unwrap_or_else(|| out_dir.join("wasm-plugins"));
    build(&plugins_dir, &target_dir);

    let artifacts = target_dir.join(TARGET).join("release");
    let dest = out_dir.join("plugins");
    fs::create_dir_all(&dest).expect("create OUT_DIR/plugins");
    let mut embedded = String::new();
    for plugin in &crates {
        let built = artifacts.join(format!("{}.wasm", plugin.package.replace('-', "_")));
        let copy = dest.join(format!("{}.wasm", plugin.name));
        copy_if_changed(&built, &copy);
        if plugin.embedded {
            embedded.push_str(&format!(
                "    ({:?}, include_bytes!({:?})),\n",
                plugin.name,
                copy.display().to_string()
            ));
        }
    }
    let generated = format!(
        "/// Plugins embedded in the binary: (built-in name, component bytes).\n\
         pub const EMBEDDED: &[(&str, &[u8])] = &[\n{embedded}];\n\n\
         /// The directory holding every plugin built from `plugins/`, test-only ones included.\n\
         pub const BUILD_DIR: &str = {:?};\n",
        dest.display().to_string()
    );
    fs::write(out_dir.join("plugins.rs"), generated).expect("write plugins.rs");
}

/// Every plugin crate in the embedded and test groups.
fn discover(plugins_dir: &Path) -> Vec<PluginCrate> {
    let mut crates = Vec::new();
    for (group, embedded) in EMBEDDED_GROUPS
        .iter()
        .map(|g| (g, true))
        .chain(TEST_GROUPS.iter().map(|g| (g, false)))
    {
        let Ok(entries) = fs::read_dir(plugins_dir.join(group)) else {
            continue;
        };
        let mut dirs: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.join("Cargo.toml").is_file())
            .collect();
        dirs.sort();
        for dir in dirs {
            let manifest =
                fs::read_to_string(dir.join("Cargo.toml")).expect("read plugin manifest");
            let package = manifest
                .lines()
                .find_map(|line| line.trim().strip_prefix("name = \""))
                .and_then(|rest| rest.strip_suffix('"'))
                .unwrap_or_else(|| panic!("no package name in {}", dir.display()))
                .to_owned();
            crates.push(PluginCrate {
                name: dir.file_name().unwrap().to_string_lossy().into_owned(),
                package,
                embedded,
            });
        }
    }
    crates
}

/// Rebuild when the WIT, the SDK or any plugin's sources change.
fn watch(root: &Path, plugins_dir: &Path) {
    let mut paths = vec![
        root.join("wit"),
        plugins_dir.join("Cargo.toml"),
        plugins_dir.join("Cargo.lock"),
        plugins_dir.join(".cargo/config.toml"),
        plugins_dir.join("sdk/src"),
        plugins_dir.join("sdk/Cargo.toml"),
        plugins_dir.join("sdk-macro/src"),
        plugins_dir.join("sdk-macro/Cargo.toml"),
    ];
    for group in EMBEDDED_GROUPS.iter().chain(TEST_GROUPS.iter()) {
        paths.push(plugins_dir.join(group));
    }
    // Any other library crate in plugins/ (shared format code).
    if let Ok(entries) = fs::read_dir(plugins_dir) {
        for entry in entries.filter_map(Result::ok) {
            let path = entry.path();
            if path.join("Cargo.toml").is_file() && path.join("src").is_dir() {
                paths.push(path.join("src"));
                paths.push(path.join("Cargo.toml"));
            }
        }
    }
    for path in paths {
        println!("cargo:rerun-if-changed={}", path.display());
    }
}

/// Make sure the wasm32-wasip2 standard library is installed.
fn ensure_target(root: &Path) {
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let libdir = Command::new(&rustc)
        .args(["--print", "target-libdir", "--target", TARGET])
        .current_dir(root)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    let installed = libdir
        .as_ref()
        .and_then(|dir| fs::read_dir(dir).ok())
        .is_some_and(|mut entries| {
            entries.any(|e| e.is_ok_and(|e| e.file_name().to_string_lossy().starts_with("libstd")))
        });
    if installed {
        return;
    }
    println!("cargo:warning=installing the {TARGET} target (needed to build wasp's plugins)");
    let status = Command::new("rustup")
        .args(["target", "add", TARGET])
        .current_dir(root)
        .status();
    match status {
        Ok(status) if status.success() => {}
        other => panic!(
            "the {TARGET} Rust target is not installed and `rustup target add {TARGET}` failed ({other:?}).\n\
             Install it with:\n\n    rustup target add {TARGET}\n"
        ),
    }
}

/// Build the whole plugins workspace in release mode.
fn build(plugins_dir: &Path, target_dir: &Path) {
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .args(["build", "--release", "--workspace", "--target", TARGET])
        .arg("--manifest-path")
        .arg(plugins_dir.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(target_dir)
        .current_dir(plugins_dir);
    for name in SCRUBBED_ENV {
        command.env_remove(name);
    }
    let output = command.output().expect("run cargo to build the plugins");
    if !output.status.success() {
        panic!(
            "building the plugins in {} failed:\n{}",
            plugins_dir.display(),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

fn copy_if_changed(from: &Path, to: &Path) {
    let bytes = fs::read(from).unwrap_or_else(|e| panic!("read {}: {e}", from.display()));
    if fs::read(to).ok().as_deref() != Some(&bytes[..]) {
        fs::write(to, bytes).unwrap_or_else(|e| panic!("write {}: {e}", to.display()));
    }
}
