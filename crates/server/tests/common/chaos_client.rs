//! The chaos test's application-level subscriber: `switchboard_client::Client` (the Rust
//! client, SPEC §9.2), which reconnects, resumes and drops duplicates by itself and must report
//! every hole as a `Gap`. Its events are logged for the checker (`chaos_check`), which holds it
//! to the stricter rule: no epoch change without a `Gap` first. The client reconnects to the
//! one URL it was given, so it runs on a node that is never killed.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use switchboard_client::{Client, State, SubscriptionEvent};
use switchboard_core::publication::StreamPosition;
use tokio::sync::watch;

use super::chaos_check::{Log, Obs};
use super::chaos_subs::CHANNELS;

pub async fn rust_client(addr: SocketAddr, log: Arc<Log>, mut stop: watch::Receiver<bool>) {
    let client = Client::builder(format!("ws://{addr}/ws"))
        .reconnect_delay(Duration::from_millis(100), Duration::from_secs(1))
        .connect()
        .await
        .expect("the Rust client connects");
    log.push(Obs::Connected(addr));
    let mut state = client.state_changes();
    let subscriptions = CHANNELS.map(|c| {
        let s = client.subscribe(c, None).unwrap();
        s.map(move |e| (c, e))
    });
    let mut events = futures_util::stream::select_all(subscriptions);
    let mut last: HashMap<&str, StreamPosition> = HashMap::new();
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => {
                client.close();
                return;
            }
            Ok(()) = state.changed() => {
                let now = state.borrow_and_update().clone();
                match now {
                    State::Connecting => log.push(Obs::Lost("reconnecting".into())),
                    State::Connected { .. } => log.push(Obs::Connected(addr)),
                    State::Stopped { code } => {
                        log.push(Obs::Lost(format!("stopped {code:?}")));
                        return;
                    }
                }
            }
            Some((channel, event)) = events.next() => match event {
                SubscriptionEvent::Subscribed { position, recovered } => {
                    let asked = last.get(channel).cloned();
                    // `recovered: false` from a position is followed by the client's Gap.
                    if asked.is_none() || recovered {
                        last.entry(channel).or_insert_with(|| position.clone());
                        log.push(Obs::Sync {
                            channel: channel.into(),
                            asked,
                            position: Some(position),
                            recovered,
                        });
                    }
                }
                SubscriptionEvent::Gap { position } => {
                    log.push(Obs::Sync {
                        channel: channel.into(),
                        asked: last.insert(channel, position.clone()),
                        position: Some(position),
                        recovered: false,
                    });
                }
                SubscriptionEvent::Publication(p) => {
                    last.insert(channel, p.position.clone());
                    log.push(Obs::Delivery {
                        channel: channel.into(),
                        position: p.position,
                        seq: p.data["seq"].as_u64().unwrap_or(u64::MAX),
                        resume_from: None,
                    });
                }
                SubscriptionEvent::Notice(_) => {}
                other => {
                    log.push(Obs::Lost(format!("{other:?}")));
                    return;
                }
            },
        }
    }
}
