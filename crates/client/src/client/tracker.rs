//! Sans-IO bookkeeping of one subscription: its last position, what to resume with, and which
//! deliveries are duplicates. Kept apart from the I/O so the rules are tested on their own.

use switchboard_core::publication::StreamPosition;

use super::{Publication, SubscriptionEvent};
use crate::message::Delivery;

/// Where one subscription's stream stands.
#[derive(Debug, Clone, Default)]
pub(crate) struct Tracker {
    /// The position of the last publication handed to the subscriber (or of the stream when
    /// it was subscribed without one). `None` until the first `subscribed`, unless the caller
    /// gave a `since`.
    position: Option<StreamPosition>,
}

impl Tracker {
    /// Starts from the caller's `since`, if any.
    pub(crate) fn new(since: Option<StreamPosition>) -> Self {
        Self { position: since }
    }

    /// What to send as `since` when (re)subscribing.
    pub(crate) fn since(&self) -> Option<StreamPosition> {
        self.position.clone()
    }

    /// The server's `subscribed`: the events for the subscriber. When a position was asked
    /// for and the server could not recover from it, the subscriber gets a gap and the stream
    /// continues from the server's position; when it recovered, the missed publications
    /// follow and advance the position one by one.
    pub(crate) fn on_subscribed(
        &mut self,
        position: StreamPosition,
        recovered: bool,
    ) -> Vec<SubscriptionEvent> {
        let mut events = vec![SubscriptionEvent::Subscribed {
            position: position.clone(),
            recovered,
        }];
        let asked = self.position.is_some();
        if asked && !recovered {
            events.push(SubscriptionEvent::Gap {
                position: position.clone(),
            });
        }
        if !(asked && recovered) {
            self.position = Some(position);
        }
        events
    }

    /// A delivery on this channel: a publication to hand over, a notice (no position), or
    /// nothing for a duplicate (an offset at or before the last one of the same epoch). A
    /// publication in another epoch than the last one (the broker lost its history and
    /// restarted the channel's offsets), or one that skips offsets, comes after a
    /// [`SubscriptionEvent::Gap`], as the JavaScript client does — except on the personal
    /// channels (`conn:`, `user:`), whose offsets are not a stream.
    pub(crate) fn on_delivery(&mut self, delivery: Delivery) -> Vec<SubscriptionEvent> {
        let Some(pos) = delivery.position.clone() else {
            return vec![SubscriptionEvent::Notice(delivery)];
        };
        let mut events = Vec::with_capacity(1);
        if let Some(last) = &self.position {
            if last.epoch == pos.epoch && pos.offset <= last.offset {
                return events;
            }
            let personal =
                delivery.channel.starts_with("conn:") || delivery.channel.starts_with("user:");
            if !personal && (last.epoch != pos.epoch || pos.offset > last.offset + 1) {
                events.push(SubscriptionEvent::Gap {
                    position: StreamPosition {
                        offset: pos.offset.saturating_sub(1),
                        epoch: pos.epoch.clone(),
                    },
                });
            }
        }
        self.position = Some(pos.clone());
        events.push(SubscriptionEvent::Publication(Publication {
            channel: delivery.channel,
            event: delivery.event,
            data: delivery.data,
            position: pos,
            timestamp: delivery.timestamp,
        }));
        events
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn pos(offset: u64, epoch: &str) -> StreamPosition {
        StreamPosition {
            offset,
            epoch: epoch.into(),
        }
    }

    fn delivery(offset: u64, epoch: &str) -> Delivery {
        Delivery {
            event: "e".into(),
            channel: "c".into(),
            position: Some(pos(offset, epoch)),
            timestamp: None,
            data: serde_json::Value::Null,
        }
    }

    /// The offset of the one publication among `events` (none for a dropped duplicate).
    fn offset_of(events: Vec<SubscriptionEvent>) -> Option<u64> {
        assert!(events.len() <= 1, "{events:?}");
        match events.into_iter().next() {
            Some(SubscriptionEvent::Publication(p)) => Some(p.position.offset),
            _ => None,
        }
    }

    #[test]
    fn fresh_subscription_starts_at_the_server_position_and_drops_duplicates() {
        let mut t = Tracker::new(None);
        let ev = t.on_subscribed(pos(5, "a"), false);
        assert_eq!(ev.len(), 1, "no gap without a since");
        assert_eq!(offset_of(t.on_delivery(delivery(5, "a"))), None);
        assert_eq!(offset_of(t.on_delivery(delivery(6, "a"))), Some(6));
        assert_eq!(offset_of(t.on_delivery(delivery(6, "a"))), None);
        assert_eq!(offset_of(t.on_delivery(delivery(7, "a"))), Some(7));
        assert_eq!(t.since(), Some(pos(7, "a")));
    }

    #[test]
    fn recovered_resume_keeps_the_old_position_until_the_missed_ones_arrive() {
        let mut t = Tracker::new(Some(pos(3, "a")));
        let ev = t.on_subscribed(pos(6, "a"), true);
        assert_eq!(ev.len(), 1);
        assert_eq!(t.since(), Some(pos(3, "a")));
        for o in 4..=6 {
            assert_eq!(offset_of(t.on_delivery(delivery(o, "a"))), Some(o));
        }
    }

    #[test]
    fn unrecovered_resume_is_a_gap_and_moves_to_the_new_epoch() {
        let mut t = Tracker::new(Some(pos(3, "a")));
        let ev = t.on_subscribed(pos(0, "b"), false);
        assert!(matches!(&ev[1], SubscriptionEvent::Gap { position } if *position == pos(0, "b")));
        assert_eq!(offset_of(t.on_delivery(delivery(1, "b"))), Some(1));
    }

    #[test]
    fn a_live_epoch_change_or_skip_is_a_gap_before_the_publication() {
        let mut t = Tracker::new(None);
        t.on_subscribed(pos(5, "a"), false);
        // The broker restarted without its history: the next delivery is b:1.
        let ev = t.on_delivery(delivery(1, "b"));
        assert!(matches!(&ev[0], SubscriptionEvent::Gap { position } if *position == pos(0, "b")));
        assert!(matches!(&ev[1], SubscriptionEvent::Publication(p) if p.position == pos(1, "b")));
        // Offsets that skip within an epoch: a gap too; contiguous ones are not.
        assert_eq!(t.on_delivery(delivery(2, "b")).len(), 1);
        let ev = t.on_delivery(delivery(5, "b"));
        assert!(matches!(&ev[0], SubscriptionEvent::Gap { position } if *position == pos(4, "b")));
        assert_eq!(ev.len(), 2);
    }
}
