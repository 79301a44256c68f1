//! Per-connection stream gate: merges a subscription's catch-up with live deliveries.
//!
//! The connection registers with the hub *before* reading history, so nothing published in
//! between can be missed; live deliveries that arrive while history is being read are held
//! here, then released after the catch-up with everything already covered dropped. The result
//! is each channel's publications in offset order with no gap and no duplicate, whatever the
//! broker. Sans-IO: the writer task feeds it [`Outbound`] items and writes what comes out.

use std::collections::HashMap;

use bytes::Bytes;

use crate::channel::ChannelName;
use crate::hub::{Completion, Outbound, Unsubscription};

enum ChannelState {
    /// Waiting for the catch-up; holding live deliveries.
    Pending(Vec<(u64, Bytes)>),
    /// Live: the last offset written.
    Live(u64),
}

/// One frame the gate releases. Deliveries carry the channel and offset they advance, so a
/// writer that labels its frames with a position (SSE `id:`, the long-poll cursor) knows it.
#[derive(Debug, Clone)]
pub struct Released {
    /// The bytes to write.
    pub frame: Bytes,
    /// For a publication: its channel and offset; `None` for replies and notices.
    pub position: Option<(ChannelName, u64)>,
}

/// Where the gate hands each released frame, with the position a delivery advances.
type Emit<'a> = dyn FnMut(Option<(&ChannelName, u64)>, Bytes) + 'a;

/// Tracks each subscribed channel's stream position for one connection.
#[derive(Default)]
pub struct StreamGate {
    channels: HashMap<ChannelName, ChannelState>,
}

impl StreamGate {
    /// Processes one queue item and appends the frames to write, in order, to `out`.
    pub fn process(&mut self, item: Outbound, out: &mut Vec<Bytes>) {
        self.step(item, &mut |_, frame| out.push(frame));
    }

    /// Like [`process`](Self::process), but says which channel position each delivery
    /// advances.
    pub fn process_tracked(&mut self, item: Outbound, out: &mut Vec<Released>) {
        self.step(item, &mut |position, frame| {
            out.push(Released {
                frame,
                position: position.map(|(c, o)| (c.clone(), o)),
            });
        });
    }

    fn step(&mut self, item: Outbound, emit: &mut Emit<'_>) {
        match item {
            Outbound::Frame(frame) => emit(None, frame),
            Outbound::Delivery(d) => match self.channels.get_mut(&d.channel) {
                Some(ChannelState::Pending(held)) => held.push((d.offset, d.frame.clone())),
                Some(ChannelState::Live(last)) if d.offset > *last => {
                    *last = d.offset;
                    emit(Some((&d.channel, d.offset)), d.frame.clone());
                }
                // Already written (a catch-up overlap): drop the duplicate.
                Some(ChannelState::Live(_)) => {}
                // Not (or no longer) subscribed from the client's point of view.
                None => {}
            },
            // Live-only: written while the channel is live; a subscription still catching up
            // has no place to put it in offset order, and a notice that late is stale anyway.
            Outbound::Transient(t) => {
                if matches!(self.channels.get(&t.channel), Some(ChannelState::Live(_))) {
                    emit(None, t.frame.clone());
                }
            }
            Outbound::BeginSubscribe { channel } => {
                self.channels
                    .insert(channel, ChannelState::Pending(Vec::new()));
            }
            Outbound::CompleteSubscribe(completion) => {
                let Completion {
                    channel,
                    reply,
                    after,
                    catch_up,
                    ok,
                } = *completion;
                if let Some(reply) = reply {
                    emit(None, reply);
                }
                if !ok {
                    self.channels.remove(&channel);
                    return;
                }
                let held = match self.channels.remove(&channel) {
                    Some(ChannelState::Pending(held)) => held,
                    _ => Vec::new(),
                };
                let mut last = after;
                for (offset, frame) in catch_up.into_iter().chain(held) {
                    if offset > last {
                        last = offset;
                        emit(Some((&channel, offset)), frame);
                    }
                }
                self.channels.insert(channel, ChannelState::Live(last));
            }
            Outbound::Unsubscribed(u) => {
                let Unsubscription { channel, reply } = *u;
                self.channels.remove(&channel);
                emit(None, reply);
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use crate::hub::Encoded;

    fn encoded(ch: &ChannelName, offset: u64, frame: Bytes) -> Arc<Encoded> {
        Arc::new(Encoded {
            channel: ch.clone(),
            offset,
            frame,
        })
    }

    fn d(ch: &ChannelName, offset: u64) -> Outbound {
        Outbound::Delivery(encoded(ch, offset, Bytes::from(offset.to_string())))
    }

    fn run(items: Vec<Outbound>) -> Vec<String> {
        let mut gate = StreamGate::default();
        let mut out = Vec::new();
        for i in items {
            gate.process(i, &mut out);
        }
        out.into_iter()
            .map(|b| String::from_utf8(b.to_vec()).unwrap())
            .collect()
    }

    #[test]
    fn catch_up_then_held_without_duplicates() {
        let ch = ChannelName::parse("missions").unwrap();
        let out = run(vec![
            Outbound::BeginSubscribe {
                channel: ch.clone(),
            },
            d(&ch, 7), // live, published while history was read: also in catch_up
            d(&ch, 8),
            Outbound::CompleteSubscribe(Box::new(Completion {
                channel: ch.clone(),
                reply: Some(Bytes::from("sub")),
                after: 4,
                catch_up: (5..=7).map(|o| (o, Bytes::from(o.to_string()))).collect(),
                ok: true,
            })),
            d(&ch, 8), // duplicate
            d(&ch, 9),
        ]);
        assert_eq!(out, ["sub", "5", "6", "7", "8", "9"]);
    }

    #[test]
    fn no_since_drops_what_the_position_already_covers() {
        let ch = ChannelName::parse("lobby").unwrap();
        let out = run(vec![
            Outbound::BeginSubscribe {
                channel: ch.clone(),
            },
            d(&ch, 3),
            d(&ch, 4),
            Outbound::CompleteSubscribe(Box::new(Completion {
                channel: ch.clone(),
                reply: Some(Bytes::from("sub")),
                after: 3,
                catch_up: vec![],
                ok: true,
            })),
        ]);
        assert_eq!(out, ["sub", "4"]);
    }

    #[test]
    fn transient_passes_only_while_live_and_keeps_the_offset() {
        let ch = ChannelName::parse("room:1").unwrap();
        let t = |s: &'static str| Outbound::Transient(encoded(&ch, 0, Bytes::from(s)));
        let out = run(vec![
            t("before"),
            Outbound::BeginSubscribe {
                channel: ch.clone(),
            },
            t("pending"),
            Outbound::CompleteSubscribe(Box::new(Completion {
                channel: ch.clone(),
                reply: None,
                after: 2,
                catch_up: vec![],
                ok: true,
            })),
            t("typing"),
            d(&ch, 2), // not after the position: still a duplicate
            d(&ch, 3),
            Outbound::Unsubscribed(Box::new(Unsubscription {
                channel: ch.clone(),
                reply: Bytes::from("unsub"),
            })),
            t("after"),
        ]);
        assert_eq!(out, ["typing", "3", "unsub"]);
    }

    #[test]
    fn failed_or_left_channels_deliver_nothing() {
        let ch = ChannelName::parse("lobby").unwrap();
        let out = run(vec![
            Outbound::BeginSubscribe {
                channel: ch.clone(),
            },
            d(&ch, 1),
            Outbound::CompleteSubscribe(Box::new(Completion {
                channel: ch.clone(),
                reply: Some(Bytes::from("err")),
                after: 0,
                catch_up: vec![],
                ok: false,
            })),
            d(&ch, 2),
            Outbound::Unsubscribed(Box::new(Unsubscription {
                channel: ch.clone(),
                reply: Bytes::from("unsub"),
            })),
        ]);
        assert_eq!(out, ["err", "unsub"]);
    }

    #[test]
    fn tracked_output_names_each_delivery_position() {
        let ch = ChannelName::parse("missions").unwrap();
        let mut gate = StreamGate::default();
        let mut out = Vec::new();
        gate.process_tracked(
            Outbound::BeginSubscribe {
                channel: ch.clone(),
            },
            &mut out,
        );
        gate.process_tracked(d(&ch, 3), &mut out);
        gate.process_tracked(
            Outbound::CompleteSubscribe(Box::new(Completion {
                channel: ch.clone(),
                reply: None,
                after: 1,
                catch_up: vec![(2, Bytes::from("2")), (3, Bytes::from("3"))],
                ok: true,
            })),
            &mut out,
        );
        gate.process_tracked(Outbound::Frame(Bytes::from("note")), &mut out);
        gate.process_tracked(d(&ch, 4), &mut out);
        let got: Vec<_> = out
            .iter()
            .map(|r| (r.frame.clone(), r.position.as_ref().map(|(_, o)| *o)))
            .collect();
        assert_eq!(
            got,
            [
                (Bytes::from("2"), Some(2)),
                (Bytes::from("3"), Some(3)),
                (Bytes::from("note"), None),
                (Bytes::from("4"), Some(4)),
            ]
        );
    }
}
