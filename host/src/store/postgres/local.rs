//! A throwaway PostgreSQL server for tests and benchmarks: `initdb` and
//! `pg_ctl` from the machine's PostgreSQL (15 on Debian:
//! `/usr/lib/postgresql/15/bin`, or `WASP_PG_BIN`), in a temporary
//! directory, on a free port, stopped (and deleted) when dropped. Run as
//! root, the server runs as the `postgres` user, which PostgreSQL requires.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A running server.
#[derive(Debug)]
pub struct LocalServer {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    as_postgres: bool,
}

/// Why a server could not be started.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    /// No PostgreSQL binaries.
    #[error(
        "no PostgreSQL server binaries at {0} (install Debian's postgresql-15, or set WASP_PG_BIN to the folder with initdb and pg_ctl)"
    )]
    Missing(PathBuf),
    /// A command failed.
    #[error("{command} failed: {output}")]
    Failed {
        /// What ran.
        command: String,
        /// What it printed.
        output: String,
    },
    /// Files.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Where the server binaries are.
pub fn binaries() -> PathBuf {
    std::env::var_os("WASP_PG_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/lib/postgresql/15/bin"))
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

impl LocalServer {
    /// Whether this machine can start one.
    pub fn available() -> bool {
        binaries().join("initdb").exists()
    }

    /// Start a server. `durable: false` turns `fsync` off (tests: the
    /// server itself is never crashed there); benchmarks keep it on.
    pub fn start(durable: bool) -> Result<Self, LocalError> {
        Self::start_with(durable, &[])
    }

    /// [`LocalServer::start`] with more server settings (`name=value`).
    pub fn start_with(durable: bool, settings: &[&str]) -> Result<Self, LocalError> {
        let bin = binaries();
        if !bin.join("initdb").exists() {
            return Err(LocalError::Missing(bin));
        }
        let as_postgres = is_root();
        let dir = std::env::temp_dir().join(format!(
            "wasp-pg-{}-{}",
            std::process::id(),
            ulid::Ulid::new().to_string().to_lowercase()
        ));
        std::fs::create_dir_all(&dir)?;
        if as_postgres {
            run(Command::new("chown").arg("postgres:postgres").arg(&dir))?;
        }
        let port = free_port()?;
        let server = Self {
            dir,
            bin,
            port,
            as_postgres,
        };
        let data = server.dir.join("data");
        server.pg(
            "initdb",
            &[
                "-D",
                path(&data),
                "-U",
                "wasp",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-instructions",
            ],
        )?;
        let mut options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync={} -c synchronous_commit=on",
            path(&server.dir),
            if durable { "on" } else { "off" },
        );
        for setting in settings {
            options.push_str(" -c ");
            options.push_str(setting);
        }
        server.pg(
            "pg_ctl",
            &[
                "-D",
                path(&data),
                "-o",
                &options,
                "-l",
                path(&server.dir.join("log")),
                "-w",
                "-t",
                "60",
                "start",
            ],
        )?;
        Ok(server)
    }

    /// Its port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A connection string for database `database` (created by
    /// [`LocalServer::create_database`]; `postgres` always exists).
    pub fn url(&self, database: &str) -> String {
        format!("postgres://wasp@127.0.0.1:{}/{database}", self.port)
    }

    /// Create an empty database.
    pub fn create_database(&self, name: &str) -> Result<String, LocalError> {
        self.pg(
            "createdb",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "wasp",
                name,
            ],
        )?;
        Ok(self.url(name))
    }

    /// The server's own process id (its postmaster), for CPU accounting.
    pub fn pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.dir.join("data/postmaster.pid"))
            .ok()?
            .lines()
            .next()?
            .trim()
            .parse()
            .ok()
    }

    fn pg(&self, program: &str, args: &[&str]) -> Result<(), LocalError> {
        let program = self.bin.join(program);
        let mut command = if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(&program);
            command
        } else {
            Command::new(&program)
        };
        command.args(args).current_dir(&self.dir);
        run(&mut command)
    }
}

fn path(path: &Path) -> &str {
    path.to_str().expect("temporary paths are UTF-8")
}

fn run(command: &mut Command) -> Result<(), LocalError> {
    let output = command.output()?;
    if output.status.success() {
        return Ok(());
    }
    Err(LocalError::Failed {
        command: format!("{command:?}"),
        output: format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    })
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

impl Drop for LocalServer {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        let _ = self.pg(
            "pg_ctl",
            &["-D", path(&data), "-m", "immediate", "-w", "stop"],
        );
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
