//! The chaos test's checker, sans-IO: what each subscriber observed (a log of connections,
//! (re)subscriptions and deliveries), what the publisher was told (the ledger), and the rules
//! that hold between them (docs/reliability.md, "Chaos test"). Per subscriber and channel:
//!
//! - every delivery is a publication the publisher made: its `(epoch, offset)` carries the
//!   `seq` the API acknowledged there (or a `seq` whose publish had an unknown outcome);
//! - within an epoch, offsets go up by exactly one: a repeat is a duplicate, a lower one out of
//!   order, a jump a silent hole;
//! - a resume presents the last position seen, and `recovered: true` means what follows
//!   continues from it;
//! - a hole is allowed only where the server said so: `recovered: false` (SSE `subscribed`,
//!   native `subscribed`, long-poll `unrecovered`) or a delivery in another epoch — and
//!   `recovered: false` within one epoch is allowed only when history really no longer reaches
//!   back (more than `HISTORY` publications missed). Each such hole is a gap, with the number of
//!   acknowledged publications the subscriber lost in it;
//! - where the client keeps a resume position of its own (SSE `id:`, the long-poll cursor), it
//!   names the position of the delivery it follows.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use switchboard_core::publication::StreamPosition;

/// `history_size` of the namespaces the test uses.
pub const HISTORY: u64 = 100;

#[derive(Debug, Clone)]
pub enum Obs {
    /// A connection (or, for long-poll, a request) to this node succeeded.
    Connected(std::net::SocketAddr),
    /// The connection failed or ended.
    Lost(String),
    /// The server's answer to a (re)subscription: `asked` is what the client presented,
    /// `position` where the server says the stream continues (`None`: from the next delivery,
    /// as a long-poll `unrecovered` channel does).
    Sync {
        channel: String,
        asked: Option<StreamPosition>,
        position: Option<StreamPosition>,
        recovered: bool,
    },
    /// A publication; `resume_from` is the client's own resume position for the channel after
    /// it (the SSE `id:`, the poll cursor), when it keeps one.
    Delivery {
        channel: String,
        position: StreamPosition,
        seq: u64,
        resume_from: Option<StreamPosition>,
    },
}

/// What one subscriber saw, in order.
pub struct Log {
    pub name: String,
    entries: Mutex<Vec<(Instant, Obs)>>,
}

impl Log {
    pub fn new(name: impl Into<String>) -> Log {
        Log {
            name: name.into(),
            entries: Mutex::default(),
        }
    }

    pub fn push(&self, obs: Obs) {
        self.entries.lock().unwrap().push((Instant::now(), obs));
    }

    pub fn entries(&self) -> Vec<(Instant, Obs)> {
        self.entries.lock().unwrap().clone()
    }

    /// Whether every channel in `channels` got its first position.
    pub fn synced(&self, channels: &[&str]) -> bool {
        let entries = self.entries.lock().unwrap();
        channels.iter().all(|c| {
            entries
                .iter()
                .any(|(_, o)| matches!(o, Obs::Sync { channel, .. } if channel == c))
        })
    }
}

/// One publication the API acknowledged.
#[derive(Debug, Clone)]
pub struct Published {
    pub seq: u64,
    pub channel: String,
    pub position: StreamPosition,
    pub acked: Instant,
}

/// What the publisher knows.
#[derive(Debug, Default)]
pub struct Ledger {
    pub acked: Vec<Published>,
    /// Publishes whose outcome is unknown (an error after the request may have run).
    pub uncertain: HashSet<u64>,
    /// Publishes that certainly did not happen (connection refused, 4xx).
    pub refused: Vec<Instant>,
    pub sent: HashMap<u64, Instant>,
}

impl Ledger {
    /// Problems of the ledger itself: one `(channel, epoch, offset)` acknowledged twice.
    pub fn violations(&self) -> Vec<String> {
        let mut seen = HashMap::new();
        let mut out = Vec::new();
        for p in &self.acked {
            let key = (&p.channel, &p.position.epoch, p.position.offset);
            if let Some(other) = seen.insert(key, p.seq) {
                out.push(format!(
                    "{} {}:{} acknowledged for seq {other} and seq {}",
                    p.channel, p.position.epoch, p.position.offset, p.seq
                ));
            }
        }
        out
    }

    /// The last acknowledged position of `channel`.
    pub fn last(&self, channel: &str) -> Option<&StreamPosition> {
        self.acked
            .iter()
            .filter(|p| p.channel == channel)
            .max_by_key(|p| p.acked)
            .map(|p| &p.position)
    }

    /// Acknowledged publications of `channel` in `epoch` with `from < offset < to`.
    fn count(&self, channel: &str, epoch: &str, from: u64, to: u64) -> u64 {
        self.acked
            .iter()
            .filter(|p| p.channel == channel && p.position.epoch == epoch)
            .filter(|p| p.position.offset > from && p.position.offset < to)
            .count() as u64
    }
}

/// A hole the server announced.
#[derive(Debug, Clone)]
pub struct Gap {
    pub at: Instant,
    /// `recovered:false` or `epoch change`.
    pub how: &'static str,
    /// Acknowledged publications of the old epoch after the subscriber's position: gone
    /// with the history (or, within one epoch, trimmed from it).
    pub lost: u64,
    /// Acknowledged publications of the new epoch before where its stream continued: still in
    /// the new epoch's history, but not delivered (a snapshot refetch covers them).
    pub skipped: u64,
}

/// The checker's findings for one subscriber.
#[derive(Debug, Default)]
pub struct Verdict {
    /// `(received at, seq)` of every delivery.
    pub deliveries: Vec<(Instant, u64)>,
    /// When each successful reconnection after a loss happened.
    pub resumes: Vec<Instant>,
    /// When a resubscription from a position answered `recovered: true`.
    pub recovered: Vec<Instant>,
    /// Why connections ended.
    pub losses: Vec<String>,
    /// Which node it was connected to from when.
    pub nodes: Vec<(Instant, std::net::SocketAddr)>,
    pub gaps: Vec<Gap>,
    pub violations: Vec<String>,
    /// Each channel's last position.
    pub last: HashMap<String, StreamPosition>,
}

/// Where a channel stands for the checker.
#[derive(Clone)]
enum Track {
    /// Continues after this position.
    At(StreamPosition),
    /// Continues from whatever comes next (after an explicit `unrecovered`).
    Anywhere,
}

fn show(p: &StreamPosition) -> String {
    format!("{}:{}", p.epoch, p.offset)
}

impl Verdict {
    /// The node it was connected to at `at`.
    pub fn node_at(&self, at: Instant) -> Option<std::net::SocketAddr> {
        self.nodes
            .iter()
            .rev()
            .find(|(t, _)| *t <= at)
            .map(|(_, n)| *n)
    }
}

/// Applies the rules to one subscriber's log. `strict`: a delivery in another epoch must
/// follow a `Sync` (the Rust client's `Gap`); a raw protocol client sees the epoch change on
/// the delivery itself, which is its notice.
pub fn check(log: &[(Instant, Obs)], ledger: &Ledger, strict: bool) -> Verdict {
    let published: HashMap<(&str, &str, u64), u64> = ledger
        .acked
        .iter()
        .map(|p| ((&*p.channel, &*p.position.epoch, p.position.offset), p.seq))
        .collect();
    let mut v = Verdict::default();
    let mut tracks: HashMap<String, Track> = HashMap::new();
    let mut lost = false;
    for (at, obs) in log {
        match obs {
            Obs::Connected(node) => {
                v.nodes.push((*at, *node));
                if std::mem::take(&mut lost) {
                    v.resumes.push(*at);
                }
            }
            Obs::Lost(why) => {
                lost = true;
                v.losses.push(why.clone());
            }
            Obs::Sync {
                channel,
                asked,
                position,
                recovered,
            } => {
                let current = tracks.get(channel).cloned();
                if let (Some(a), Some(Track::At(c))) = (asked, &current)
                    && a != c
                {
                    v.violations.push(format!(
                        "{channel}: resumed from {} but the last position seen was {}",
                        show(a),
                        show(c)
                    ));
                }
                let next = match (asked, recovered, position) {
                    (Some(a), true, Some(p)) => {
                        v.recovered.push(*at);
                        if p.epoch != a.epoch || p.offset < a.offset {
                            v.violations.push(format!(
                                "{channel}: recovered:true from {} to {}",
                                show(a),
                                show(p)
                            ));
                        }
                        Track::At(a.clone())
                    }
                    (Some(a), false, p) => {
                        let same_epoch = p.as_ref().is_some_and(|p| p.epoch == a.epoch);
                        if let Some(p) = p.as_ref().filter(|_| same_epoch)
                            && p.offset.saturating_sub(a.offset) <= HISTORY
                        {
                            v.violations.push(format!(
                                "{channel}: recovered:false from {} to {} though history holds it",
                                show(a),
                                show(p)
                            ));
                        }
                        // Within one epoch: what history no longer had; across epochs: the
                        // rest of the old one, and the new one up to where the stream goes on.
                        let (lost, skipped) = match p {
                            Some(p) if same_epoch => {
                                (ledger.count(channel, &a.epoch, a.offset, p.offset + 1), 0)
                            }
                            Some(p) => (
                                ledger.count(channel, &a.epoch, a.offset, u64::MAX),
                                ledger.count(channel, &p.epoch, 0, p.offset + 1),
                            ),
                            None => (ledger.count(channel, &a.epoch, a.offset, u64::MAX), 0),
                        };
                        v.gaps.push(Gap {
                            at: *at,
                            how: "recovered:false",
                            lost,
                            skipped,
                        });
                        p.clone().map_or(Track::Anywhere, Track::At)
                    }
                    (None, _, Some(p)) => Track::At(p.clone()),
                    (_, _, None) => {
                        v.violations
                            .push(format!("{channel}: a subscription without a position"));
                        Track::Anywhere
                    }
                };
                tracks.insert(channel.clone(), next);
            }
            Obs::Delivery {
                channel,
                position: p,
                seq,
                resume_from,
            } => {
                match published.get(&(&**channel, &*p.epoch, p.offset)) {
                    Some(s) if s == seq => {}
                    Some(s) => v.violations.push(format!(
                        "{channel} {}: delivered seq {seq}, the API acknowledged seq {s} there",
                        show(p)
                    )),
                    None if ledger.uncertain.contains(seq) => {}
                    None => v.violations.push(format!(
                        "{channel} {}: delivered seq {seq}, which nobody published there",
                        show(p)
                    )),
                }
                match tracks.get(channel) {
                    None => v.violations.push(format!(
                        "{channel} {}: a delivery before any position",
                        show(p)
                    )),
                    Some(Track::Anywhere) => {}
                    Some(Track::At(c)) if c.epoch == p.epoch => {
                        if p.offset <= c.offset {
                            v.violations.push(format!(
                                "{channel}: {} after {}: duplicate or out of order",
                                show(p),
                                show(c)
                            ));
                        } else if p.offset > c.offset + 1 {
                            v.violations.push(format!(
                                "{channel}: silent hole, {} follows {} ({} missing)",
                                show(p),
                                show(c),
                                p.offset - c.offset - 1
                            ));
                        }
                    }
                    Some(Track::At(c)) if strict => v.violations.push(format!(
                        "{channel}: {} after {}: an epoch change without a gap",
                        show(p),
                        show(c)
                    )),
                    Some(Track::At(c)) => v.gaps.push(Gap {
                        at: *at,
                        how: "epoch change",
                        lost: ledger.count(channel, &c.epoch, c.offset, u64::MAX),
                        skipped: ledger.count(channel, &p.epoch, 0, p.offset),
                    }),
                }
                if let Some(r) = resume_from
                    && r != p
                {
                    v.violations.push(format!(
                        "{channel}: the resume position after {} is {}",
                        show(p),
                        show(r)
                    ));
                }
                tracks.insert(channel.clone(), Track::At(p.clone()));
                v.deliveries.push((*at, *seq));
            }
        }
    }
    for (channel, t) in tracks {
        if let Track::At(p) = t {
            v.last.insert(channel, p);
        }
    }
    v
}

/// The `q`-quantile (0..=1) of `xs`, nearest rank; `None` when empty.
pub fn quantile(xs: &mut [Duration], q: f64) -> Option<Duration> {
    if xs.is_empty() {
        return None;
    }
    xs.sort();
    let rank = ((q * xs.len() as f64).ceil() as usize).clamp(1, xs.len());
    Some(xs[rank - 1])
}
