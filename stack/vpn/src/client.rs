//! A WireGuard client with no tun device: boringtun's `noise::Tunn` over a
//! UDP socket, carrying IPv4 packets the program writes itself. It is the
//! stand-in device of the stack's tests (the `turtle-wg-peer` binary) and
//! the peer of this crate's own tunnel tests.
//!
//! Everything happens in [`Client::next_event`]: it waits for a datagram
//! from the server or the next 250 ms timer tick (handshake retries,
//! keepalives, as boringtun's own device does), decrypts, answers echo
//! requests addressed to us, and hands back what happened. A handshake is
//! complete when `Tunn` has a session.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use boringtun::noise::{Tunn, TunnResult};
use tokio::net::UdpSocket;
use tokio::time::Instant;

use crate::icmp::{Echo, EchoKind};
use crate::keys::Key;

/// boringtun's timers want a call about every 250 ms.
const TICK: Duration = Duration::from_millis(250);

/// A datagram's worth of buffer (boringtun needs room for its overhead).
const BUF: usize = 65_536;

/// What [`Client::next_event`] saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The first session is established (the handshake completed).
    Established,
    /// An echo request to our address came through the tunnel and was answered.
    EchoAnswered(Echo),
    /// Any other packet from the tunnel.
    Packet(Vec<u8>),
}

/// Why the client gave up.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(
        "no handshake with {endpoint} within {secs} s: is its UDP port reachable, is the server key {server} right, and is our public key {ours} among its peers?"
    )]
    NoHandshake {
        endpoint: SocketAddr,
        secs: u64,
        server: Key,
        ours: Key,
    },
    #[error(
        "no echo reply from {dst} through the tunnel within {secs} s (the handshake worked): are {src}'s allowed IPs on the server right, and does {dst} answer pings?"
    )]
    NoReply {
        src: Ipv4Addr,
        dst: Ipv4Addr,
        secs: u64,
    },
    #[error("the UDP socket failed: {0}")]
    Io(#[from] std::io::Error),
}

/// One tunnel to one server.
pub struct Client {
    tunn: Tunn,
    socket: UdpSocket,
    endpoint: SocketAddr,
    address: Ipv4Addr,
    public_key: Key,
    server_key: Key,
    next_tick: Instant,
    /// Whether [`Event::Established`] was handed out.
    reported_established: bool,
    recv_buf: Vec<u8>,
    out_buf: Vec<u8>,
}

impl Client {
    /// A client sending from `socket` to the server at `endpoint`; our
    /// tunnel address is `address`. `keepalive` is WireGuard's persistent
    /// keepalive (keeps NAT mappings, so the server can reach us).
    pub fn new(
        socket: UdpSocket,
        endpoint: SocketAddr,
        private_key: &Key,
        server_key: Key,
        address: Ipv4Addr,
        keepalive: Option<u16>,
    ) -> Client {
        // Any index will do: we have one session; boringtun's device uses
        // random ones too.
        let index = u32::from_be_bytes([0, private_key.0[0], private_key.0[1], private_key.0[2]]);
        Client {
            tunn: Tunn::new(
                private_key.secret(),
                server_key.as_public(),
                None,
                keepalive,
                index,
                None,
            ),
            socket,
            endpoint,
            address,
            public_key: private_key.public(),
            server_key,
            next_tick: Instant::now(),
            reported_established: false,
            recv_buf: vec![0; BUF],
            out_buf: vec![0; BUF],
        }
    }

    /// Whether a session is established.
    pub fn is_established(&self) -> bool {
        self.tunn.time_since_last_handshake().is_some()
    }

    pub fn public_key(&self) -> Key {
        self.public_key
    }

    /// Starts a handshake and waits for it until `deadline`. Packets
    /// arriving meanwhile are dropped (there are none before a session).
    pub async fn handshake(&mut self, deadline: Instant) -> Result<(), ClientError> {
        let started = Instant::now();
        if let TunnResult::WriteToNetwork(p) = self
            .tunn
            .format_handshake_initiation(&mut self.out_buf, false)
        {
            self.socket.send_to(p, self.endpoint).await?;
        }
        while !self.is_established() {
            // None: the deadline passed.
            if self.next_event(deadline).await?.is_none() {
                return Err(ClientError::NoHandshake {
                    endpoint: self.endpoint,
                    secs: deadline.saturating_duration_since(started).as_secs(),
                    server: self.server_key,
                    ours: self.public_key,
                });
            }
        }
        Ok(())
    }

    /// Sends an IPv4 packet through the tunnel (queued by boringtun until
    /// a session exists).
    pub async fn send(&mut self, packet: &[u8]) -> Result<(), ClientError> {
        if let TunnResult::WriteToNetwork(p) = self.tunn.encapsulate(packet, &mut self.out_buf) {
            self.socket.send_to(p, self.endpoint).await?;
        }
        Ok(())
    }

    /// Pings `dst` through the tunnel until a reply comes or `deadline`
    /// passes (a request a second, so one lost packet is not the end).
    /// Every other event goes to `on_event`. Returns the round trip time.
    pub async fn ping(
        &mut self,
        dst: Ipv4Addr,
        deadline: Instant,
        mut on_event: impl FnMut(&Event),
    ) -> Result<Duration, ClientError> {
        let started = Instant::now();
        let id = (std::process::id() & 0xffff) as u16;
        let mut seq: u16 = 0;
        loop {
            seq = seq.wrapping_add(1);
            let sent = Instant::now();
            let request = Echo {
                src: self.address,
                dst,
                kind: EchoKind::Request,
                id,
                seq,
                payload: b"turtle-wg-peer".to_vec(),
            };
            self.send(&request.to_packet()).await?;
            let retry = (sent + Duration::from_secs(1)).min(deadline);
            while let Some(event) = self.next_event(retry).await? {
                if let Event::Packet(p) = &event
                    && let Some(e) = Echo::parse(p)
                    && e.kind == EchoKind::Reply
                    && e.src == dst
                    && e.id == id
                {
                    return Ok(sent.elapsed());
                }
                on_event(&event);
            }
            if Instant::now() >= deadline {
                return Err(ClientError::NoReply {
                    src: self.address,
                    dst,
                    secs: deadline.saturating_duration_since(started).as_secs(),
                });
            }
        }
    }

    /// Waits until `deadline` for something from the tunnel (or the first
    /// session); None when the deadline passed first. Timers run meanwhile; echo requests to our
    /// address are answered here.
    pub async fn next_event(&mut self, deadline: Instant) -> Result<Option<Event>, ClientError> {
        loop {
            let tick = self.next_tick.min(deadline);
            let received = tokio::select! {
                r = self.socket.recv_from(&mut self.recv_buf) => Some(r?),
                _ = tokio::time::sleep_until(tick) => None,
            };
            match received {
                Some((n, from)) => {
                    if from != self.endpoint {
                        continue;
                    }
                    if let Some(packet) = self.decapsulate(n, from).await? {
                        return Ok(Some(self.answer(packet).await?));
                    }
                    if !self.reported_established && self.is_established() {
                        self.reported_established = true;
                        return Ok(Some(Event::Established));
                    }
                }
                None => {
                    let now = Instant::now();
                    if now >= self.next_tick {
                        self.next_tick = now + TICK;
                        self.update_timers().await?;
                    }
                    if now >= deadline {
                        return Ok(None);
                    }
                }
            }
        }
    }

    /// Feeds one datagram to the tunnel: sends what it wants sent, returns
    /// the IP packet it carried, if any.
    async fn decapsulate(
        &mut self,
        n: usize,
        from: SocketAddr,
    ) -> Result<Option<Vec<u8>>, ClientError> {
        let result = self
            .tunn
            .decapsulate(Some(from.ip()), &self.recv_buf[..n], &mut self.out_buf);
        match result {
            TunnResult::WriteToNetwork(p) => {
                self.socket.send_to(p, self.endpoint).await?;
                // After a handshake, queued packets follow: send them all.
                while let TunnResult::WriteToNetwork(p) =
                    self.tunn.decapsulate(None, &[], &mut self.out_buf)
                {
                    self.socket.send_to(p, self.endpoint).await?;
                }
                Ok(None)
            }
            TunnResult::WriteToTunnelV4(p, _) => Ok(Some(p.to_vec())),
            TunnResult::WriteToTunnelV6(p, _) => Ok(Some(p.to_vec())),
            TunnResult::Done => Ok(None),
            TunnResult::Err(e) => {
                tracing::debug!(error = ?e, "dropped a datagram");
                Ok(None)
            }
        }
    }

    async fn update_timers(&mut self) -> Result<(), ClientError> {
        match self.tunn.update_timers(&mut self.out_buf) {
            TunnResult::WriteToNetwork(p) => {
                self.socket.send_to(p, self.endpoint).await?;
            }
            TunnResult::Err(e) => tracing::debug!(error = ?e, "timer"),
            _ => {}
        }
        Ok(())
    }

    /// Answers an echo request to our address; anything else is handed on.
    async fn answer(&mut self, packet: Vec<u8>) -> Result<Event, ClientError> {
        match Echo::parse(&packet) {
            Some(e) if e.kind == EchoKind::Request && e.dst == self.address => {
                self.send(&e.reply().to_packet()).await?;
                Ok(Event::EchoAnswered(e))
            }
            _ => Ok(Event::Packet(packet)),
        }
    }
}
