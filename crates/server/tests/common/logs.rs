//! What the in-process server logs, captured so a test can wait for an observable event (for
//! example `feed joined`: a long-poll or SSE feed is registered and has read its history)
//! instead of sleeping and hoping.
//!
//! The capture is the thread's default subscriber. `#[tokio::test]` runs the test and every
//! task it spawns — the server included — on the test's one thread, so the capture sees that
//! test's server only, even while other tests run in parallel.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub struct LogCapture {
    buf: Buffer,
    _guard: tracing::subscriber::DefaultGuard,
}

impl LogCapture {
    /// Captures the `switchboard` crates' events at debug level on this thread until dropped.
    pub fn start() -> LogCapture {
        let buf = Buffer::default();
        let writer = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("switchboard=debug"))
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        LogCapture {
            buf,
            _guard: tracing::subscriber::set_default(subscriber),
        }
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.buf.0.lock().unwrap()).into_owned()
    }

    /// Lines containing `needle` so far.
    pub fn count(&self, needle: &str) -> usize {
        self.text().lines().filter(|l| l.contains(needle)).count()
    }

    /// Waits (at most 5 s) until `needle` has been logged at least `n` times.
    pub async fn wait_for(&self, needle: &str, n: usize) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while self.count(needle) < n {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{needle:?} logged {} times, waited for {n}; log:\n{}",
                self.count(needle),
                self.text()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}
