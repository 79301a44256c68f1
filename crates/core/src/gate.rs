//! Per-connection stream gate: merges a subscription's catch-up with live deliveries.
//!
//! The connection registers with the hub *before* reading history, so nothing published in
//! between can be missed; live deliveries that arrive while history is being read are held
//! here, then released after the catch-up with everything already covered dropped. The result
//! is each channel's publications in offset order with no gap and no duplicate, whatever the
//! broker. Sans-IO: the writer task feeds it [`Outbound`] items and writes what comes out.

use std::sync::Arc;

use bytes::Bytes;
use hashbrown::HashTable;

use crate::channel::ChannelName;
use crate::hub::{Completion, Encoded, Outbound, Unsubscription};

enum ChannelState {
    /// Waiting for the catch-up; holding live deliveries.
    Pending(Vec<Arc<Encoded>>),
    /// Live: the epoch and the last offset written. A delivery of another epoch starts the
    /// stream anew (the broker lost the channel's history and restarted its offsets): it is
    /// written, whatever its offset, and the client sees the epoch change on it.
    Live { epoch: Arc<str>, last: u64 },
}

/// One frame the gate releases. Deliveries carry the channel, offset and epoch they advance
/// to, so a writer that labels its frames with a position (SSE `id:`, the long-poll cursor)
/// knows it.
#[derive(Debug, Clone)]
pub struct Released {
    /// The bytes to write.
    pub frame: Bytes,
    /// For a publication: its channel, offset and epoch; `None` for replies and notices.
    pub position: Option<(ChannelName, u64, Arc<str>)>,
}

/// Where the gate hands each released frame, with the position a delivery advances.
type Emit<'a> = dyn FnMut(Option<(&ChannelName, u64, &Arc<str>)>, Bytes) + 'a;

/// A live delivery: written when it is after `last` in `epoch`, or of another epoch.
///
/// The epochs are compared by pointer first. When only their text is equal, the delivery's
/// allocation is kept: the brokers share one per channel and epoch, so every later delivery
/// compares by pointer instead of reading this connection's own copy of the text (a cache miss
/// per subscriber in the fan-out profile).
fn live(epoch: &mut Arc<str>, last: &mut u64, d: &Encoded, emit: &mut Emit<'_>) {
    let same_epoch = Arc::ptr_eq(epoch, &d.epoch) || {
        let same = **epoch == *d.epoch;
        *epoch = Arc::clone(&d.epoch);
        same
    };
    if same_epoch && d.offset <= *last {
        return; // already written (a catch-up overlap): drop the duplicate
    }
    *last = d.offset;
    emit(Some((&d.channel, d.offset, epoch)), d.frame.clone());
}

/// One subscribed channel in the gate's table.
struct Slot {
    channel: ChannelName,
    state: ChannelState,
}

/// Tracks each subscribed channel's stream position for one connection.
///
/// The table is keyed by [`ChannelName::key`], the name's hash computed once when the name was
/// parsed: a delivery, looked up here once per receiving connection, costs no hashing of the
/// name (hashbrown's `HashTable` takes the hash as given; the names are still compared).
#[derive(Default)]
pub struct StreamGate {
    channels: HashTable<Slot>,
}

impl StreamGate {
    fn get(&self, channel: &ChannelName) -> Option<&ChannelState> {
        self.channels
            .find(channel.key(), |s| s.channel == *channel)
            .map(|s| &s.state)
    }

    fn insert(&mut self, channel: ChannelName, state: ChannelState) {
        match self
            .channels
            .entry(channel.key(), |s| s.channel == channel, |s| s.channel.key())
        {
            hashbrown::hash_table::Entry::Occupied(mut slot) => slot.get_mut().state = state,
            hashbrown::hash_table::Entry::Vacant(slot) => {
                slot.insert(Slot { channel, state });
            }
        }
    }

    fn remove(&mut self, channel: &ChannelName) -> Option<ChannelState> {
        let slot = self
            .channels
            .find_entry(channel.key(), |s| s.channel == *channel)
            .ok()?;
        Some(slot.remove().0.state)
    }

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
                position: position.map(|(c, o, e)| (c.clone(), o, Arc::clone(e))),
            });
        });
    }

    fn step(&mut self, item: Outbound, emit: &mut Emit<'_>) {
        match item {
            Outbound::Frame(frame) => emit(None, *frame),
            Outbound::Delivery(d) => {
                let found = self
                    .channels
                    .find_mut(d.channel.key(), |s| s.channel == d.channel);
                // Not (or no longer) subscribed from the client's point of view.
                let Some(slot) = found else { return };
                // The hub hands every delivery of a channel the same name allocation: keeping
                // it makes the next lookups compare names by pointer (see `live`).
                if !slot.channel.same_allocation(&d.channel) {
                    slot.channel = d.channel.clone();
                }
                match &mut slot.state {
                    ChannelState::Pending(held) => held.push(d),
                    ChannelState::Live { epoch, last } => live(epoch, last, &d, emit),
                }
            }
            // Live-only: written while the channel is live; a subscription still catching up
            // has no place to put it in offset order, and a notice that late is stale anyway.
            Outbound::Transient(t) => {
                if matches!(self.get(&t.channel), Some(ChannelState::Live { .. })) {
                    emit(None, t.frame.clone());
                }
            }
            Outbound::BeginSubscribe(channel) => {
                self.insert(*channel, ChannelState::Pending(Vec::new()));
            }
            Outbound::CompleteSubscribe(completion) => {
                let Completion {
                    channel,
                    reply,
                    after,
                    epoch,
                    catch_up,
                    ok,
                } = *completion;
                if let Some(reply) = reply {
                    emit(None, reply);
                }
                if !ok {
                    self.remove(&channel);
                    return;
                }
                let held = match self.remove(&channel) {
                    Some(ChannelState::Pending(held)) => held,
                    _ => Vec::new(),
                };
                let (mut epoch, mut last) = (epoch, after);
                for (offset, frame) in catch_up {
                    if offset > last {
                        last = offset;
                        emit(Some((&channel, offset, &epoch)), frame);
                    }
                }
                for d in held {
                    live(&mut epoch, &mut last, &d, emit);
                }
                self.insert(channel, ChannelState::Live { epoch, last });
            }
            Outbound::Unsubscribed(u) => {
                let Unsubscription { channel, reply } = *u;
                self.remove(&channel);
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
            epoch: Arc::from("e"),
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
            Outbound::begin_subscribe(ch.clone()),
            d(&ch, 7), // live, published while history was read: also in catch_up
            d(&ch, 8),
            Outbound::CompleteSubscribe(Box::new(Completion {
                channel: ch.clone(),
                reply: Some(Bytes::from("sub")),
                after: 4,
                epoch: Arc::from("e"),
                catch_up: (5..=7).map(|o| (o, Bytes::from(o.to_string()))).collect(),
                ok: true,
            })),
            d(&ch, 8), // duplicate
            d(&ch, 9),
        ]);
        assert_eq!(out, ["sub", "5", "6", "7", "8", "9"]);
    }

    #[test]
    fn names_and_epochs_in_other_allocations_are_the_same_stream() {
        // The subscription's name and epoch come from the client and the history read; each
        // delivery's from the hub and the broker. Equal text is the same stream whatever the
        // allocation: duplicates are still dropped and nothing is taken for a new epoch.
        let subscribed = ChannelName::parse("missions").unwrap();
        let delivery = |offset: u64| {
            Outbound::Delivery(Arc::new(Encoded {
                channel: ChannelName::parse("missions").unwrap(),
                offset,
                epoch: Arc::from(String::from("e")),
                frame: Bytes::from(offset.to_string()),
            }))
        };
        let out = run(vec![
            Outbound::begin_subscribe(subscribed.clone()),
            delivery(3),
            Outbound::CompleteSubscribe(Box::new(Completion {
                channel: subscribed.clone(),
                reply: Some(Bytes::from("sub")),
                after: 2,
                epoch: Arc::from("e"),
                catch_up: vec![(3, Bytes::from("3"))],
                ok: true,
            })),
            delivery(3),
            delivery(4),
            delivery(4),
            delivery(5),
        ]);
        assert_eq!(out, ["sub", "3", "4", "5"]);
    }

    #[test]
    fn no_since_drops_what_the_position_already_covers() {
        let ch = ChannelName::parse("lobby").unwrap();
        let out = run(vec![
            Outbound::begin_subscribe(ch.clone()),
            d(&ch, 3),
            d(&ch, 4),
            Outbound::CompleteSubscribe(Box::new(Completion {
                channel: ch.clone(),
                reply: Some(Bytes::from("sub")),
                after: 3,
                epoch: Arc::from("e"),
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
            Outbound::begin_subscribe(ch.clone()),
            t("pending"),
            Outbound::CompleteSubscribe(Box::new(Completion {
                channel: ch.clone(),
                reply: None,
                after: 2,
                epoch: Arc::from("e"),
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
    fn a_new_epoch_starts_the_stream_anew() {
        // The broker restarted without its history: offsets begin again at 1 in a new epoch.
        // They are written (not dropped as at or below the old last offset), with the new
        // epoch as their position; the old epoch's offsets are then behind.
        let ch = ChannelName::parse("missions").unwrap();
        let in_epoch = |offset: u64, epoch: &str| {
            Outbound::Delivery(Arc::new(Encoded {
                channel: ch.clone(),
                offset,
                epoch: Arc::from(epoch),
                frame: Bytes::from(format!("{epoch}{offset}")),
            }))
        };
        let mut gate = StreamGate::default();
        let mut out = Vec::new();
        for item in [
            Outbound::begin_subscribe(ch.clone()),
            in_epoch(9, "e"), // held, and covered by the catch-up
            in_epoch(1, "f"), // held: the restart happened during the subscription
            Outbound::CompleteSubscribe(Box::new(Completion {
                channel: ch.clone(),
                reply: None,
                after: 7,
                epoch: Arc::from("e"),
                catch_up: vec![(8, Bytes::from("e8")), (9, Bytes::from("e9"))],
                ok: true,
            })),
            in_epoch(2, "f"),
            in_epoch(2, "f"), // a duplicate within the new epoch
            in_epoch(3, "f"),
        ] {
            gate.process_tracked(item, &mut out);
        }
        let got: Vec<_> = out
            .iter()
            .map(|r| {
                let (_, offset, epoch) = r.position.clone().unwrap();
                (r.frame.clone(), format!("{epoch}{offset}"))
            })
            .collect();
        let want: Vec<_> = ["e8", "e9", "f1", "f2", "f3"]
            .iter()
            .map(|s| (Bytes::from(*s), (*s).to_owned()))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn failed_or_left_channels_deliver_nothing() {
        let ch = ChannelName::parse("lobby").unwrap();
        let out = run(vec![
            Outbound::begin_subscribe(ch.clone()),
            d(&ch, 1),
            Outbound::CompleteSubscribe(Box::new(Completion {
                channel: ch.clone(),
                reply: Some(Bytes::from("err")),
                after: 0,
                epoch: Arc::from("e"),
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
        gate.process_tracked(Outbound::begin_subscribe(ch.clone()), &mut out);
        gate.process_tracked(d(&ch, 3), &mut out);
        gate.process_tracked(
            Outbound::CompleteSubscribe(Box::new(Completion {
                channel: ch.clone(),
                reply: None,
                after: 1,
                epoch: Arc::from("e"),
                catch_up: vec![(2, Bytes::from("2")), (3, Bytes::from("3"))],
                ok: true,
            })),
            &mut out,
        );
        gate.process_tracked(Outbound::frame(Bytes::from("note")), &mut out);
        gate.process_tracked(d(&ch, 4), &mut out);
        let got: Vec<_> = out
            .iter()
            .map(|r| (r.frame.clone(), r.position.as_ref().map(|(_, o, _)| *o)))
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
