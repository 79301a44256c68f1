//! What the in-process server logs, captured so a test can wait for an observable event (for
//! example `feed joined`: a long-poll or SSE feed is registered and has read its history)
//! instead of sleeping and hoping.
//!
//! Events are captured per thread: `#[tokio::test]` runs the test and every task it spawns —
//! the server included — on the test's one thread, so the capture sees that test's server
//! only, even while other tests run in parallel.

use std::cell::RefCell;
use std::io::Write;
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

thread_local! {
    /// The buffer of the capture running on this thread, if any.
    static CURRENT: RefCell<Option<Buffer>> = const { RefCell::new(None) };
}

/// Writes to this thread's capture, or nowhere.
struct ThreadWriter;

impl Write for ThreadWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        CURRENT.with(|c| {
            if let Some(b) = &*c.borrow() {
                b.0.lock().unwrap().extend_from_slice(buf);
            }
        });
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub struct LogCapture {
    buf: Buffer,
}

impl LogCapture {
    /// Captures the `switchboard` crates' events at debug level on this thread until dropped.
    ///
    /// One global subscriber (installed once per test binary) routes each event to the
    /// capture of the thread it happens on. (A thread-local default subscriber is not used:
    /// tracing caches per call site whether anyone listens, and tests on other threads
    /// without a capture could make it skip this thread's events.)
    pub fn start() -> LogCapture {
        static INSTALL: Once = Once::new();
        INSTALL.call_once(|| {
            let subscriber = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new("switchboard=debug"))
                .with_ansi(false)
                .with_writer(|| ThreadWriter)
                .finish();
            tracing::subscriber::set_global_default(subscriber)
                .expect("no other global subscriber in the tests");
        });
        let buf = Buffer::default();
        CURRENT.with(|c| *c.borrow_mut() = Some(buf.clone()));
        LogCapture { buf }
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

impl Drop for LogCapture {
    fn drop(&mut self) {
        CURRENT.with(|c| *c.borrow_mut() = None);
    }
}
