//! Per-IP connection limits (`limits.max_connections_per_ip`). A permit is an object held by
//! the connection task, so the count is returned however the connection ends.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Counts live connections per IP. Clones share the count.
#[derive(Debug, Clone)]
pub struct ConnectionLimiter {
    max_per_ip: usize,
    counts: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// One connection's place in the count; released on drop.
#[derive(Debug)]
pub struct ConnectionPermit {
    ip: IpAddr,
    counts: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl ConnectionLimiter {
    /// A limiter allowing `max_per_ip` connections per address.
    pub fn new(max_per_ip: usize) -> Self {
        Self {
            max_per_ip,
            counts: Arc::default(),
        }
    }

    /// Takes a place for `ip`, or `None` when it already has the maximum.
    pub fn acquire(&self, ip: IpAddr) -> Option<ConnectionPermit> {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let n = counts.entry(ip).or_insert(0);
        if *n >= self.max_per_ip {
            return None;
        }
        *n += 1;
        Some(ConnectionPermit {
            ip,
            counts: Arc::clone(&self.counts),
        })
    }

    /// Live connections in total.
    pub fn total(&self) -> usize {
        self.counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .sum()
    }
}

impl Drop for ConnectionPermit {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = counts.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_and_releases() {
        let l = ConnectionLimiter::new(2);
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let a = l.acquire(ip).unwrap();
        let _b = l.acquire(ip).unwrap();
        assert!(l.acquire(ip).is_none());
        let other = l.acquire("127.0.0.2".parse().unwrap());
        assert!(other.is_some());
        drop(a);
        let again = l.acquire(ip);
        assert!(again.is_some());
        assert_eq!(l.total(), 3);
        drop((other, again));
        assert_eq!(l.total(), 1);
    }
}
