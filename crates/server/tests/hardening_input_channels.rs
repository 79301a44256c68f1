//! Hardening (issue item 4): channel state is freed. Every distinct channel name a client
//! names used to keep a stream in the memory broker for good; 2,000 cursor-less long-polls over
//! 1,000 new names each took the process from 104 MB to 569 MB. Here a bounded run of the same
//! traffic must not grow the process by more than a small constant.
//!
//! The only test in this binary, so nothing else allocates in the process meanwhile.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;

/// Resident set size of this process (the server runs in it), in bytes.
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    let kb: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kb * 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_polls_over_new_channel_names_do_not_grow_the_process() {
    const REQUESTS: usize = 200;
    const CHANNELS: usize = 1000;
    let server = TestServer::start().await;
    let http = reqwest::Client::new();
    let run = |round: usize| {
        let names: Vec<String> = (0..CHANNELS)
            .map(|i| format!("missions:leak-{round:04}-{i:04}"))
            .collect();
        let url = server.http(&format!("/poll?channels={}", names.join(",")));
        let http = http.clone();
        async move {
            let res = http.get(url).send().await.unwrap();
            assert_eq!(res.status(), 200);
            let _ = res.bytes().await.unwrap();
        }
    };
    // Warm up allocator arenas and the server's one-time state first.
    for round in 0..10 {
        run(round).await;
    }
    let before = rss();
    for round in 10..10 + REQUESTS {
        run(round).await;
    }
    let after = rss();
    let grown = after.saturating_sub(before);
    eprintln!(
        "RSS before {} KiB, after {} KiB, grown {} KiB over {} new channels ({} B/channel)",
        before / 1024,
        after / 1024,
        grown / 1024,
        REQUESTS * CHANNELS,
        grown / (REQUESTS * CHANNELS) as u64
    );
    assert!(
        grown < 16 * 1024 * 1024,
        "{} new channel names kept {} KiB",
        REQUESTS * CHANNELS,
        grown / 1024
    );
}
