//! Debian's chromium for the dashboard's browser tests: `/usr/bin/chromium`,
//! installed with apt-get when it is missing and the tests run as root
//! (as on CI); Playwright drives it ([`crate::python::playwright`]).

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

/// Where Debian puts chromium.
const CHROMIUM: &str = "/usr/bin/chromium";

fn succeeds(command: &mut Command) -> bool {
    command.output().is_ok_and(|o| o.status.success())
}

/// The chromium binary, installing it the first time if it is missing.
pub fn chromium() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let path = PathBuf::from(CHROMIUM);
        if path.is_file() {
            return path;
        }
        let root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
        if root {
            let installed = succeeds(Command::new("apt-get").args(["update", "-qq"]))
                && succeeds(
                    Command::new("apt-get")
                        .args(["install", "-y", "-qq", "chromium"])
                        .env("DEBIAN_FRONTEND", "noninteractive"),
                );
            if installed && path.is_file() {
                return path;
            }
        }
        panic!("the browser tests need chromium: install it (Debian: `apt-get install chromium`)");
    })
    .clone()
}
