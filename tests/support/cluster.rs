//! wasp nodes in processes of their own, for the cluster tests: each is
//! this test binary run again with only its `node_process` test, which
//! serves wasp on a free port (written to a file) until it is killed.
//! Killing one is a real `SIGKILL` of a whole process.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::TempDir;

/// The environment variable naming a node's config file.
pub const NODE_CONFIG: &str = "WASP_TEST_NODE_CONFIG";
/// The environment variable naming the file a node writes its port to.
pub const NODE_PORT_FILE: &str = "WASP_TEST_NODE_PORT_FILE";

/// A node process.
pub struct Node {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// Its folder (config, data, log).
    pub dir: TempDir,
    child: Option<Child>,
}

impl Node {
    /// Start a node on `yaml` (its `store.data_dir` is supplied here) by
    /// running `test` (the path of the test that serves a node) of this
    /// test binary.
    pub async fn start(test: &str, yaml: &str) -> Self {
        let dir = TempDir::new("node");
        let config = dir.0.join("wasp.yaml");
        std::fs::write(
            &config,
            format!(
                "{yaml}\n  data_dir: {}\n  cache_dir: {}\n",
                dir.0.join("data").display(),
                crate::shared_cache_dir().display()
            ),
        )
        .unwrap();
        let port_file = dir.0.join("port");
        let log = std::fs::File::create(dir.0.join("log")).unwrap();
        let child = Command::new(std::env::current_exe().unwrap())
            .args([
                test,
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(NODE_CONFIG, &config)
            .env(NODE_PORT_FILE, &port_file)
            .env("RUST_LOG", "wasp=info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut node = Self {
            base: String::new(),
            dir,
            child: Some(child),
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        loop {
            if let Ok(port) = std::fs::read_to_string(&port_file)
                && let Ok(port) = port.trim().parse::<u16>()
            {
                node.base = format!("http://127.0.0.1:{port}");
                break;
            }
            if let Some(status) = node.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("the node ended ({status}):\n{}", node.log());
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the node did not start:\n{}",
                node.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        wasp::delivery::install_tls_provider();
        let client = reqwest::Client::new();
        loop {
            if let Ok(response) = client.get(node.url("/health")).send().await
                && response.status().is_success()
            {
                return node;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the node did not become healthy:\n{}",
                node.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The URL of `path` on the node.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// What it logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.0.join("log")).unwrap_or_default()
    }

    /// `SIGKILL` it, and wait for it to be gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// In the node process: serve the node described by the environment,
/// or return at once when this is not a node process.
pub fn serve_node() {
    let (Some(config), Some(port_file)) = (
        std::env::var_os(NODE_CONFIG),
        std::env::var_os(NODE_PORT_FILE),
    ) else {
        return;
    };
    // Ends with the test that started it, however that ends.
    let parent = std::os::unix::process::parent_id();
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(Duration::from_millis(500));
            if std::os::unix::process::parent_id() != parent {
                std::process::exit(1);
            }
        }
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .try_init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let env: std::collections::HashMap<String, String> = std::env::vars().collect();
        let loaded = wasp::config::load(Some(Path::new(&config)), &env)
            .unwrap_or_else(|errors| panic!("node config is invalid:\n{errors}"));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let written = PathBuf::from(&port_file).with_extension("tmp");
        std::fs::write(&written, port.to_string()).unwrap();
        std::fs::rename(&written, &port_file).unwrap();
        wasp::delivery::install_tls_provider();
        wasp::server::run(
            listener,
            loaded,
            std::sync::Arc::new(env),
            std::future::pending(),
        )
        .await
        .unwrap();
    });
}
