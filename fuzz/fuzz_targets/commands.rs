//! The stateful target: random command sequences — connect, auth, subscribe, publish,
//! unsubscribe, presence, ack, chat rooms, server publications, disconnect — from up to four
//! clients against one in-process node, driven through the real command layer.
//!
//! The node is `switchboard::node::Node` with every app, the memory broker and hub, and one
//! in-memory SQLite store shared by all runs (opening and migrating one per run would cost more
//! than the run). Connections 0–1 speak the native protocol (each message is JSON text decoded
//! by `protocol::decode` and handled by `transports::native::handle`); 2–3 behave like Socket.IO
//! sockets (`transports::socketio::decode` then `Client::apply`, repeated subscribes reported).
//! There is no socket and no write loop: after every step the harness drains each connection's
//! queue itself, which is exactly what the hub and the command layer hand to the writer.
//!
//! Checked after every step:
//! - nobody receives a delivery, a catch-up, or a completed subscription on a channel that
//!   SPEC §3 (re-stated here as an oracle, not taken from `AccessPolicy`) says they may not
//!   read, or on a channel they are not subscribed to;
//! - an agent-audience connection never receives the HQ DTO;
//! - the identity after each `auth` is the one the rules give (a user cannot become another);
//! - the hub's subscriber count of every channel equals the number of connections subscribed to
//!   it, and `HubStats::subscriptions` equals their sum.
//!
//! At the end every connection is dropped, and the hub must hold no subscription, no channel
//! and no presence member.
#![no_main]

use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};
use switchboard::apps;
use switchboard::commands::auth::admit;
use switchboard::commands::client::{Client, Resubscribe};
use switchboard::commands::request::{Next, Reply, Request, Responder};
use switchboard::config::Config;
use switchboard::node::{Apps, Node, Notice, PRESENCE_EVENTS, Parts};
use switchboard::transports::{native, socketio};
use switchboard_core::auth::Identity;
use switchboard_core::broker::MemoryBroker;
use switchboard_core::channel::ChannelName;
use switchboard_core::hub::{ConnectionHandle, Hub, Outbound, OutboundReceiver, WireFormat};
use switchboard_core::protocol;
use switchboard_core::publication::{Audience, PublicationData};
use switchboard_core::refusal::Refusal;
use switchboard_store::Store;
use tokio::runtime::Runtime;

use switchboard_fuzz::commands_model::*;

/// Answers nothing and remembers nothing: a Socket.IO ack would go out of band.
struct OutOfBand;

impl Responder for OutOfBand {
    fn answer(&mut self, _: Result<Reply<'_>, Refusal>) -> Option<Bytes> {
        None
    }
    fn notice(&mut self, _: &ChannelName, _: &Notice) -> Option<Bytes> {
        None
    }
}

struct Conn {
    client: Client,
    rx: OutboundReceiver,
    /// The identity the rules say this connection has.
    expected: Identity,
}

struct World {
    node: Arc<Node>,
    conns: [Option<Conn>; SLOTS],
    _stop: tokio::sync::watch::Sender<bool>,
}

fn runtime_and_store() -> &'static (Runtime, Arc<dyn Store>) {
    static SHARED: OnceLock<(Runtime, Arc<dyn Store>)> = OnceLock::new();
    SHARED.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let store = rt
            .block_on(switchboard_store::open("sqlite::memory:"))
            .unwrap();
        (rt, store)
    })
}

fn node(store: Arc<dyn Store>) -> (Arc<Node>, tokio::sync::watch::Sender<bool>) {
    let mut config = Config::default();
    config.auth.jwt_secret = SECRET.into();
    config.limits.max_subscriptions_per_connection = 6;
    config.limits.outbound_queue = 4096;
    if let Some(room) = config.namespaces.get_mut("room") {
        room.join_leave = true;
    }
    let config = Arc::new(config);
    let hub = Arc::new(Hub::new(4));
    let broker = Arc::new(MemoryBroker::new(Arc::clone(&hub)));
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let mut reserved = PRESENCE_EVENTS.to_vec();
    reserved.push(socketio::SOCKET_ID_EVENT);
    let node = Node::new(Parts {
        config,
        store,
        broker,
        hub,
        verifier: switchboard_core::auth::JwtVerifier::hs256(SECRET.as_bytes()),
        apps: Apps::new(apps::all(), &reserved),
        cluster: Arc::new(switchboard_core::cluster::LocalCluster::new("fuzz")),
        shutdown,
    });
    (Arc::new(node), stop)
}

impl World {
    async fn connect(&mut self, slot: usize, spec: Option<TokenSpec>) {
        self.conns[slot] = None; // a reconnect drops the old connection first
        let (text, expected) = match &spec {
            Some(s) => token(s),
            None => (String::new(), Some(Identity::anonymous())),
        };
        let identity = admit(&self.node, spec.as_ref().map(|_| text.as_str()));
        let Some(expected) = expected else {
            assert!(identity.is_err(), "a bad token was admitted");
            return;
        };
        let identity = identity.expect("a good token was refused");
        assert_eq!(identity, expected);
        let socketio = slot >= 2;
        let format = if socketio {
            WireFormat::SocketIo
        } else {
            WireFormat::Native
        };
        let (handle, rx) = ConnectionHandle::new(
            Arc::from(IDS[slot]),
            format,
            identity.audience(),
            self.node.config.limits.outbound_queue,
        );
        let resubscribe = if socketio {
            Resubscribe::ReportPosition
        } else {
            Resubscribe::Refuse
        };
        let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let mut client = Client::new(Arc::clone(&self.node), handle, identity, ip, resubscribe);
        client.join_personal_channels().await;
        if socketio {
            // Every Socket.IO socket is put in these on connect.
            for name in ["missions", "lobby"] {
                client.join(ch(name), None, &mut OutOfBand).await;
            }
        }
        self.conns[slot] = Some(Conn {
            client,
            rx,
            expected,
        });
    }

    /// Sends one client message: native JSON text on slots 0–1, a Socket.IO event on 2–3.
    /// (`sio` None: the message has no Socket.IO form, so a Socket.IO slot sends nothing.)
    async fn send(&mut self, slot: usize, native_msg: Value, sio: Option<(&str, Value)>) {
        let Some(conn) = self.conns[slot].as_mut() else {
            return;
        };
        let next = if slot < 2 {
            let envelope = protocol::decode(&native_msg.to_string()).expect("harness message");
            native::handle(&mut conn.client, envelope).await
        } else {
            let Some((event, data)) = sio else { return };
            let node = Arc::clone(&self.node);
            match socketio::decode::decode(event, &data, |e| node.apps.handles(e)) {
                Ok(command) => {
                    conn.client
                        .apply(command.into_request(data), &mut OutOfBand)
                        .await
                }
                Err(_) => Next::Continue,
            }
        };
        if let Next::Close(_) = next {
            self.conns[slot] = None;
        }
    }

    async fn step(&mut self, op: Op) {
        let slot = |s: u8| usize::from(s) % SLOTS;
        match op {
            Op::Connect { slot: s, token } => self.connect(slot(s), token).await,
            Op::Disconnect { slot: s } => self.conns[slot(s)] = None,
            Op::Auth {
                slot: s,
                token: spec,
                city,
            } => {
                let s = slot(s);
                let Some(conn) = self.conns[s].as_mut() else {
                    return;
                };
                let (text, identity) = token(&spec);
                let mut msg = json!({"type": "auth", "token": text});
                if let Some(c) = city {
                    msg["cityId"] = json!(pick(CITIES, c));
                }
                match identity {
                    None => {}
                    Some(new) => {
                        let old = &conn.expected;
                        if old.user.is_none() || new.user == old.user {
                            conn.expected = new;
                        }
                    }
                }
                // Socket.IO has no in-band auth: send it natively on every slot.
                let envelope = protocol::decode(&msg.to_string()).expect("auth message");
                let next = native::handle(&mut conn.client, envelope).await;
                if let Next::Close(_) = next {
                    self.conns[s] = None;
                }
            }
            Op::Subscribe {
                slot: s,
                channel,
                since,
            } => {
                let c = pick(CHANNELS, channel);
                let since =
                    since.map(|(o, e)| json!({"offset": o, "epoch": if e { "x" } else { "y" }}));
                let native_msg = json!({"type": "subscribe", "channel": c, "since": since});
                let data = json!({"channel": c, "since": since});
                self.send(slot(s), native_msg, Some(("subscribe", data)))
                    .await;
            }
            Op::Unsubscribe { slot: s, channel } => {
                let c = pick(CHANNELS, channel);
                let native_msg = json!({"type": "unsubscribe", "channel": c});
                self.send(slot(s), native_msg, Some(("unsubscribe", json!(c))))
                    .await;
            }
            Op::Publish { slot: s, channel } => {
                let c = pick(CHANNELS, channel);
                let native_msg =
                    json!({"type": "publish", "channel": c, "event": "e", "data": {"from": s}});
                // Socket.IO clients cannot publish.
                self.send(slot(s), native_msg, None).await;
            }
            Op::Presence { slot: s, channel } => {
                let c = pick(CHANNELS, channel);
                let native_msg = json!({"type": "presence", "channel": c});
                self.send(slot(s), native_msg, None).await;
            }
            Op::Ack {
                slot: s,
                channel,
                offset,
            } => {
                let c = pick(CHANNELS, channel);
                let native_msg = json!({"type": "ack", "channel": c, "offset": offset});
                let data = json!({"channel": c, "offset": offset});
                self.send(slot(s), native_msg, Some(("ack", data))).await;
            }
            Op::JoinRoom { slot: s, room } => {
                let r = pick(ROOMS, room);
                self.app(slot(s), "join-room", json!(r)).await;
            }
            Op::LeaveRoom { slot: s, room } => {
                let r = pick(ROOMS, room);
                self.app(slot(s), "leave-room", json!({"roomId": r})).await;
            }
            Op::RoomMessage { slot: s, room } => {
                let r = pick(ROOMS, room);
                self.app(
                    slot(s),
                    "chat-message",
                    json!({"roomId": r, "message": "hi"}),
                )
                .await;
            }
            Op::Typing { slot: s, room } => {
                let r = pick(ROOMS, room);
                self.app(slot(s), "typing", json!({"roomId": r})).await;
            }
            Op::Lobby { slot: s } => {
                let native_msg = json!({"type": "chat", "message": "hello"});
                self.send(
                    slot(s),
                    native_msg,
                    Some(("chat", json!({"message": "hello"}))),
                )
                .await;
            }
            Op::ServerPublish { channel, split } => {
                let c = ch(pick(CHANNELS, channel));
                let data = if split {
                    PublicationData::by_audience(&json!({"v": 1}), &json!({"v": 1, "x": HQ_ONLY}))
                } else {
                    PublicationData::shared(&json!({"v": 2}))
                };
                let _ = self.node.publish(&c, "server-event", data.unwrap()).await;
            }
        }
    }

    /// An app event: Socket.IO slots emit it; native slots have only the lobby chat, so they
    /// get the same request through the command layer directly.
    async fn app(&mut self, slot: usize, event: &str, data: Value) {
        if slot >= 2 {
            return self.send(slot, Value::Null, Some((event, data))).await;
        }
        let Some(conn) = self.conns[slot].as_mut() else {
            return;
        };
        let request = Request::App {
            event: event.to_owned(),
            data,
        };
        let mut out = native::NativeResponder::new(None);
        if let Next::Close(_) = conn.client.apply(request, &mut out).await {
            self.conns[slot] = None;
        }
    }

    /// Drains every queue and checks what each connection was handed.
    fn check(&mut self) {
        for conn in self.conns.iter_mut().flatten() {
            let id = conn.client.id().to_owned();
            assert_eq!(conn.client.identity(), &conn.expected, "{id}: identity");
            let agent = conn.expected.audience() == Audience::Agent;
            while let Some(item) = conn.rx.try_recv() {
                let (channel, frames): (ChannelName, Vec<Bytes>) = match item {
                    Outbound::Delivery(e) | Outbound::Transient(e) => {
                        (e.channel.clone(), vec![e.frame.clone()])
                    }
                    Outbound::CompleteSubscribe(c) if c.ok => (
                        c.channel.clone(),
                        c.catch_up.iter().map(|(_, b)| b.clone()).collect(),
                    ),
                    _ => continue,
                };
                let name = channel.as_str();
                assert!(
                    may_read(&conn.expected, &id, name),
                    "{id} got {name} it may not read"
                );
                assert!(
                    conn.client.is_subscribed(&channel),
                    "{id} got {name} unsubscribed"
                );
                for frame in frames {
                    let leaked = frame
                        .windows(HQ_ONLY.len())
                        .any(|w| w == HQ_ONLY.as_bytes());
                    assert!(!(agent && leaked), "{id} (agent) got the HQ DTO on {name}");
                }
            }
        }
        let hub = &self.node.hub;
        let mut total = 0;
        for name in CHANNELS {
            let c = ch(name);
            let joined = self
                .conns
                .iter()
                .flatten()
                .filter(|k| k.client.is_subscribed(&c))
                .count();
            assert_eq!(hub.subscriber_count(&c), joined, "{name}: hub count");
            total += joined;
        }
        let stats = hub
            .stats()
            .subscriptions
            .load(std::sync::atomic::Ordering::Relaxed);
        assert_eq!(stats, total, "HubStats::subscriptions");
    }
}

fuzz_target!(|ops: Vec<Op>| {
    let (rt, store) = runtime_and_store();
    rt.block_on(async {
        let (node, stop) = node(Arc::clone(store));
        let mut world = World {
            node,
            conns: Default::default(),
            _stop: stop,
        };
        for op in ops.into_iter().take(64) {
            world.step(op).await;
            world.check();
        }
        world.conns = Default::default();
        world.check();
        let hub = &world.node.hub;
        assert_eq!(
            hub.stats()
                .subscriptions
                .load(std::sync::atomic::Ordering::Relaxed),
            0
        );
        for name in CHANNELS {
            let c = ch(name);
            assert!(
                !hub.has_subscribers(&c),
                "{name} still has a subscriber set"
            );
            assert!(
                world.node.local_presence(&c).is_empty(),
                "{name} still has members"
            );
        }
    });
});
