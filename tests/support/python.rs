//! Python packages from PyPI for the tests, each installed on first use
//! into `target/test-scratch/python/<package>`: Green-API's official client
//! (`whatsapp-api-client-python`), so the pull-queue tests can point the
//! real client at wasp, and `playwright`, which drives Debian's chromium in
//! the dashboard's browser tests. Needs `python3` (installed with apt-get
//! when missing and allowed); pip is bootstrapped from PyPI when the
//! interpreter has none.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use crate::scratch_root;

/// The client release the tests run.
pub const GREEN_API_CLIENT: &str = "whatsapp-api-client-python==0.0.55";
/// The Playwright release the browser tests run (it drives the system's
/// chromium; it downloads no browser).
pub const PLAYWRIGHT: &str = "playwright==1.56.0";

/// A Python with a package importable.
#[derive(Debug, Clone)]
pub struct PythonClient {
    /// The interpreter.
    pub python: PathBuf,
    /// Goes in `PYTHONPATH`.
    pub packages: PathBuf,
}

impl PythonClient {
    /// Run `script` with the package importable; (exit success, stdout, stderr).
    pub fn run(&self, script: &str, args: &[&str]) -> (bool, String, String) {
        self.run_with(&["-c", script], args)
    }

    /// Run the script file `path` with the package importable.
    pub fn run_file(&self, path: &Path, args: &[&str]) -> (bool, String, String) {
        self.run_with(&[path.to_str().expect("a UTF-8 path")], args)
    }

    fn run_with(&self, script: &[&str], args: &[&str]) -> (bool, String, String) {
        let output = Command::new(&self.python)
            .args(script)
            .args(args)
            .env("PYTHONPATH", &self.packages)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .output()
            .expect("python3 runs");
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    }
}

/// The Green-API client, installing it the first time.
pub fn green_api_client() -> PythonClient {
    static CLIENT: OnceLock<PythonClient> = OnceLock::new();
    CLIENT.get_or_init(|| install(GREEN_API_CLIENT)).clone()
}

/// Playwright, installing it the first time.
pub fn playwright() -> PythonClient {
    static CLIENT: OnceLock<PythonClient> = OnceLock::new();
    CLIENT.get_or_init(|| install(PLAYWRIGHT)).clone()
}

fn succeeds(command: &mut Command) -> bool {
    command.output().is_ok_and(|o| o.status.success())
}

pub(crate) fn python() -> PathBuf {
    let python = PathBuf::from("python3");
    if succeeds(Command::new(&python).arg("--version")) {
        return python;
    }
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if root && succeeds(Command::new("apt-get").arg("--version")) {
        let installed = succeeds(Command::new("apt-get").args(["update", "-qq"]))
            && succeeds(
                Command::new("apt-get")
                    .args(["install", "-y", "-qq", "python3"])
                    .env("DEBIAN_FRONTEND", "noninteractive"),
            );
        if installed {
            return python;
        }
    }
    panic!("these tests need python3: install it (Debian: `apt-get install python3`)");
}

/// `python -m pip`, or pip run from its wheel fetched from PyPI.
pub(crate) fn pip(python: &Path, dir: &Path) -> Vec<String> {
    if succeeds(Command::new(python).args(["-m", "pip", "--version"])) {
        return vec!["-m".into(), "pip".into()];
    }
    let wheel = dir.join("pip.whl");
    if !wheel.is_file() {
        let fetch = r#"
import json, sys, urllib.request
release = json.load(urllib.request.urlopen("https://pypi.org/pypi/pip/json"))
wheel = next(u["url"] for u in release["urls"] if u["packagetype"] == "bdist_wheel")
urllib.request.urlretrieve(wheel, sys.argv[1])
"#;
        let status = Command::new(python)
            .args(["-c", fetch])
            .arg(&wheel)
            .status()
            .expect("python3 runs");
        assert!(status.success(), "cannot download pip from PyPI");
    }
    vec![format!("{}/pip", wheel.display())]
}

fn install(spec: &str) -> PythonClient {
    let python = python();
    let dir = scratch_root().join("python");
    let packages = dir.join(spec.replace("==", "-"));
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
            .arg(spec)
            .env("PIP_ROOT_USER_ACTION", "ignore")
            .output()
            .expect("pip runs");
        assert!(
            output.status.success(),
            "cannot install {spec} from PyPI:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        std::fs::write(&marker, spec).unwrap();
    }
    PythonClient { python, packages }
}
