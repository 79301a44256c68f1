//! The real `switchboard` binary as a child process, listening on `127.0.0.1:0`: the address
//! it bound is read from its start-up banner (`Switchboard is listening on http://<addr>/`),
//! so no test picks a port, releases it and hopes the child gets it.

use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

pub const BIN: &str = env!("CARGO_BIN_EXE_switchboard");

/// The binary to run: `SWITCHBOARD_TEST_BIN` when set (`.ci/run` points the bad-input battery
/// and the demo test at the release build this way), else the one cargo built for the tests.
pub fn bin_path() -> String {
    std::env::var("SWITCHBOARD_TEST_BIN").unwrap_or_else(|_| BIN.to_owned())
}

/// A running binary; killed on drop (also when the test panics).
pub struct Binary {
    pub child: Child,
    pub addr: SocketAddr,
    /// Everything it printed so far, stdout and stderr, line by line.
    pub lines: Arc<Mutex<Vec<String>>>,
    readers: Vec<JoinHandle<()>>,
}

/// A command for the binary in `dir` with `--listen 127.0.0.1:0 --data-dir <dir>/data`, no
/// inherited `SWITCHBOARD_*` variables and no `RUST_LOG`; add env and args, then [`spawn`].
pub fn command(dir: &std::path::Path) -> Command {
    let mut c = Command::new(bin_path());
    c.current_dir(dir).env_remove("RUST_LOG");
    for (k, _) in std::env::vars() {
        if k.starts_with("SWITCHBOARD_") {
            c.env_remove(k);
        }
    }
    c.args(["--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.join("data"));
    c
}

/// Starts `cmd` (plain HTTP), waits (at most 30 s) for the banner naming the bound address,
/// and for `/healthz` to answer 200 there.
pub async fn spawn(mut cmd: Command) -> Binary {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start the switchboard binary");
    let lines: Arc<Mutex<Vec<String>>> = Arc::default();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let mut readers = Vec::new();
    let stdout = child.stdout.take().expect("stdout");
    let stderr = child.stderr.take().expect("stderr");
    for reader in [
        Box::new(stdout) as Box<dyn tokio::io::AsyncRead + Unpin + Send>,
        Box::new(stderr),
    ] {
        let lines = Arc::clone(&lines);
        let tx = tx.clone();
        readers.push(tokio::spawn(async move {
            let mut r = BufReader::new(reader).lines();
            while let Ok(Some(line)) = r.next_line().await {
                lines.lock().unwrap().push(line.clone());
                let _ = tx.send(line);
            }
        }));
    }
    drop(tx);
    let banner = async {
        while let Some(line) = rx.recv().await {
            if let Some(rest) = line.strip_prefix("Switchboard is listening on http://") {
                return rest.trim_end_matches('/').parse::<SocketAddr>().ok();
            }
        }
        None
    };
    let addr = match tokio::time::timeout(Duration::from_secs(30), banner).await {
        Ok(Some(addr)) => addr,
        other => panic!(
            "no listening banner ({other:?}); output:\n{}",
            lines.lock().unwrap().join("\n")
        ),
    };
    let bin = Binary {
        child,
        addr,
        lines,
        readers,
    };
    // The banner is printed once the listener is bound; wait until it serves.
    let client = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(r) = client.get(bin.http("/healthz")).send().await
            && r.status() == 200
        {
            return bin;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the binary at {addr} never answered /healthz"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

impl Binary {
    pub fn http(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn pid(&self) -> u32 {
        self.child.id().expect("running")
    }

    /// Sends `signal` (e.g. "TERM") to the process.
    pub fn signal(&self, signal: &str) {
        let status = std::process::Command::new("kill")
            .args([&format!("-{signal}"), &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal}");
    }

    /// Kills the process, waits for it and for its output to be read, and returns all of it.
    pub async fn kill_and_output(mut self) -> String {
        let _ = self.child.kill().await;
        self.output().await
    }

    /// Waits for the readers (the process has exited) and returns everything it printed.
    pub async fn output(&mut self) -> String {
        for r in self.readers.drain(..) {
            let _ = tokio::time::timeout(Duration::from_secs(5), r).await;
        }
        self.lines.lock().unwrap().join("\n")
    }
}
