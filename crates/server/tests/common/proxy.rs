//! A TCP proxy on 127.0.0.1:0 in front of a shared service (Redis, PostgreSQL) or a test
//! server, that a test can cut and heal: while cut, every open connection is dropped and new
//! ones are accepted and closed at once, which is what a node sees when the service goes down
//! (and what a client sees when its network drops). The service itself is never touched. It
//! can be pointed at another address (a restarted server) with [`Proxy::retarget`].

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

pub struct Proxy {
    pub addr: SocketAddr,
    up: watch::Sender<bool>,
    target: watch::Sender<String>,
}

impl Proxy {
    /// Forwards to `target` (e.g. `127.0.0.1:6379`) until cut.
    pub async fn start(target: impl ToString) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (up, rx) = watch::channel(true);
        let (target, to) = watch::channel(target.to_string());
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    return;
                };
                if !*rx.borrow() {
                    drop(client);
                    continue;
                }
                let mut rx = rx.clone();
                let target = to.borrow().clone();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = rx.wait_for(|u| !*u) => {}
                    }
                });
            }
        });
        Proxy { addr, up, target }
    }

    pub fn cut(&self) {
        self.up.send_replace(false);
    }

    pub fn heal(&self) {
        self.up.send_replace(true);
    }

    /// New connections go to `target` from now on.
    pub fn retarget(&self, target: impl ToString) {
        self.target.send_replace(target.to_string());
    }
}
