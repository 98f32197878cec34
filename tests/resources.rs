//! Resource bounds under abuse, in a process of its own (its memory and
//! open files are this test's alone): many large posts to many receiver
//! names, and many silent connections. Memory and file descriptors stay
//! under stated bounds, where the unbounded receiver and server grew with
//! every request (300 posts of 1 MiB took 318 MB; 300 silent sockets held
//! 300 descriptors).

use std::time::Duration;

use wasp_tests::TestHost;

/// The longest any step may hang before the test fails.
const WAIT: Duration = Duration::from_secs(60);

/// Resident memory of this process, bytes.
fn rss() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    let kib: usize = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib * 1024
}

/// Open file descriptors of this process.
fn open_files() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abuse_leaves_memory_and_descriptors_bounded() {
    let host = TestHost::start(
        "server: {header_timeout: 500ms, max_connections: 32}\n\
         sessions: [{name: default}]\n\
         receiver: {enabled: true, keep: 100, max_names: 50, max_bytes: 8MiB}\n",
    )
    .await;
    let body = "x".repeat(1 << 20);
    // Warm up (the first large bodies size the allocator's pools).
    for _ in 0..5 {
        host.post_raw("/receiver/warm", body.clone()).await;
    }
    let memory_before = rss();
    let (mut kept, mut refused) = (0, 0);
    for n in 0..300 {
        let status = host
            .post_raw(&format!("/receiver/n{n}"), body.clone())
            .await
            .status();
        match status.as_u16() {
            200 => kept += 1,
            507 => refused += 1,
            other => panic!("post {n}: {other}"),
        }
    }
    assert_eq!((kept, refused), (49, 251), "50 names, one of them `warm`");
    let grown = rss().saturating_sub(memory_before);
    println!(
        "resident memory grew {} MiB over 300 posts of 1 MiB",
        grown >> 20
    );
    assert!(
        grown < 64 << 20,
        "300 posts of 1 MiB grew resident memory by {} MiB (bound: 64 MiB; the receiver keeps 8 MiB)",
        grown >> 20
    );

    let files_before = open_files();
    let address = host.base.trim_start_matches("http://").to_owned();
    let mut silent = Vec::new();
    for _ in 0..200 {
        silent.push(tokio::net::TcpStream::connect(&address).await.unwrap());
    }
    // Let wasp take what it will (never more than 32 at once).
    let mut peak = 0;
    for _ in 0..20 {
        peak = peak.max(open_files() - files_before);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "200 silent clients: {peak} more descriptors at most (the clients' 200, and wasp's side of at most 32)"
    );
    assert!(
        peak <= 200 + 32 + 8,
        "{peak} descriptors for 200 silent clients (bound: their 200 and wasp's 32, plus 8)"
    );
    drop(silent);
    let health = tokio::time::timeout(WAIT, host.client.get(host.url("/health")).send())
        .await
        .expect("/health answers after the silent clients")
        .unwrap();
    assert!(health.status().is_success());
    host.stop().await;
}
