//! A `redis-server` of the test's own, on a free loopback port in a temporary directory, that
//! the test may SIGKILL and restart — with or without the RDB snapshot it `SAVE`d earlier —
//! without touching the shared Redis on 6379. RDB only when asked (`--save ""`), no AOF.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct OwnRedis {
    child: Child,
    pub port: u16,
    dir: tempfile::TempDir,
}

fn required() -> bool {
    std::env::var("SWITCHBOARD_REQUIRE_SERVICES").is_ok_and(|v| v == "1")
}

impl OwnRedis {
    /// Starts one on a free port, or `None` after printing `SKIPPED <test>: …` when
    /// `redis-server` cannot be run (and services are not required).
    pub async fn start_or_skip(test: &str) -> Option<OwnRedis> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        match Self::spawn(tempfile::tempdir().unwrap(), port) {
            Ok(r) => {
                r.ready().await;
                Some(r)
            }
            Err(e) if !required() => {
                let _ = std::io::Write::write_fmt(
                    &mut std::io::stderr(),
                    format_args!("SKIPPED {test}: cannot start redis-server: {e}\n"),
                );
                None
            }
            Err(e) => panic!("{test}: redis-server is required: {e}"),
        }
    }

    fn spawn(dir: tempfile::TempDir, port: u16) -> std::io::Result<OwnRedis> {
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .args(["--dbfilename", "dump.rdb", "--dir"])
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        Ok(OwnRedis { child, port, dir })
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn url(&self) -> String {
        format!("redis://{}", self.addr())
    }

    async fn connection(&self) -> redis::RedisResult<redis::aio::MultiplexedConnection> {
        redis::Client::open(self.url())?
            .get_multiplexed_async_connection()
            .await
    }

    /// Waits (at most 10 s) until it answers `PING`.
    pub async fn ready(&self) {
        for _ in 0..400 {
            if let Ok(mut c) = self.connection().await
                && redis::cmd("PING")
                    .query_async::<String>(&mut c)
                    .await
                    .is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("own redis-server on port {} never answered", self.port);
    }

    /// `SAVE`: writes the RDB snapshot a later [`Self::restart`] with `keep_snapshot` loads.
    pub async fn save(&self) {
        let mut c = self.connection().await.unwrap();
        redis::cmd("SAVE").query_async::<()>(&mut c).await.unwrap();
    }

    /// SIGKILL (nothing is saved on the way out).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// A new process on the same port and directory: starting from the last `SAVE`d snapshot
    /// when `keep_snapshot`, else empty (the snapshot, if any, is deleted first).
    pub async fn restart(&mut self, keep_snapshot: bool) {
        self.kill();
        let dump = self.dir.path().join("dump.rdb");
        if !keep_snapshot && dump.exists() {
            std::fs::remove_file(&dump).unwrap();
        }
        // The old process was waited for, so its port is free again (Redis binds with
        // SO_REUSEADDR); the placeholder directory goes away with the old value.
        let dir = std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap());
        *self = Self::spawn(dir, self.port).expect("restart redis-server");
        self.ready().await;
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
