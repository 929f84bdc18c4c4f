//! The WireGuard device: boringtun's userspace tunnel on a tun interface,
//! driven over its UAPI on one end of a socketpair.
//!
//! [`Device::create`] makes the tun interface (in the network namespace of
//! the calling thread: boringtun's worker threads start from it), sets the
//! private key and UDP port over the UAPI, then gives the interface its
//! address and brings it up with iproute2's `ip` (see [`crate::iface`]).
//!
//! Design notes:
//! - The UAPI goes over a socketpair (`uapi_fd`), never boringtun's default
//!   (-1): that opens `/var/run/wireguard/<if>.sock` and installs SIGTERM
//!   and SIGINT handlers that swallow the signals for the whole process.
//! - Our end is a blocking std socket with a read timeout, behind a mutex:
//!   one request, then its whole answer, then the next request (boringtun
//!   drops whatever it read past the first request). The service calls it
//!   from `spawn_blocking`. A device that does not answer in time is
//!   broken: the socket is dropped and every later call fails.
//! - Shutdown closes our end: boringtun sees the hang-up and stops its
//!   threads, which we join; the tun file closes with them and the kernel
//!   removes the interface.
//! - boringtun first listens on a random port and keeps that socket open
//!   after `listen_port` moves it (it leaks the clone its event loop
//!   polls); harmless, it is the same device on one more port.
//! - `use_connected_socket: false`: every reply leaves from the one
//!   listening socket, so it comes from the published port (Docker's
//!   port mapping), and one socket serves every peer.

use std::io::{Read, Write};
use std::os::fd::IntoRawFd;
use std::os::unix::net::UnixStream;
use std::sync::Mutex;
use std::time::Duration;

use boringtun::device::{DeviceConfig, DeviceHandle};

use crate::cidr::Cidr;
use crate::iface::{self, IfaceError};
use crate::keys::Key;
use crate::peers::Changes;
use crate::uapi::{self, DeviceState, UapiError};

/// How long the device may take to answer one UAPI request.
const UAPI_TIMEOUT: Duration = Duration::from_secs(5);

/// The MTU of the tunnel: 1500 minus WireGuard's overhead over IPv6 (80).
pub const MTU: u16 = 1420;

/// What the device is made of.
#[derive(Debug, Clone)]
pub struct DeviceSettings {
    /// The interface name (1..=15 bytes).
    pub interface: String,
    pub private_key: Key,
    /// The UDP port (0: any free port; [`Device::listen_port`] says which).
    pub listen_port: u16,
    /// The interface's own address and the tunnel network's prefix.
    pub address: Cidr,
    /// boringtun worker threads.
    pub threads: usize,
}

/// Why the device could not be made or used.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error(
        "{0:?} is not a usable interface name: 1 to 15 characters, not only digits, no '/' or spaces"
    )]
    Name(String),
    #[error("cannot make the UAPI socketpair: {0}")]
    Socketpair(std::io::Error),
    #[error(
        "cannot create the tun interface {interface}: {reason}: the service needs /dev/net/tun and NET_ADMIN (docker: --device /dev/net/tun --cap-add NET_ADMIN), and no other interface of that name"
    )]
    Create { interface: String, reason: String },
    #[error("the WireGuard device stopped answering its UAPI: {0}")]
    Io(std::io::Error),
    #[error("the WireGuard device did not answer its UAPI within {0:?}")]
    Timeout(Duration),
    #[error("the WireGuard device's UAPI was closed after an earlier failure")]
    Closed,
    #[error(transparent)]
    Uapi(#[from] UapiError),
    #[error("the answer to a UAPI request is not UTF-8")]
    NotText,
    #[error(transparent)]
    Iface(#[from] IfaceError),
}

/// A running WireGuard device. Dropping it stops it (see [`Device::shutdown`]).
pub struct Device {
    handle: Option<DeviceHandle>,
    uapi: Mutex<Option<UnixStream>>,
    interface: String,
    public_key: Key,
    listen_port: u16,
}

impl Device {
    /// Creates and configures the device (blocking; see the module docs
    /// for the namespace it lands in).
    pub fn create(s: &DeviceSettings) -> Result<Device, DeviceError> {
        check_name(&s.interface)?;
        iface::ensure_absent(&s.interface)?;
        let (ours, theirs) = UnixStream::pair().map_err(DeviceError::Socketpair)?;
        ours.set_read_timeout(Some(UAPI_TIMEOUT))
            .and_then(|()| ours.set_write_timeout(Some(UAPI_TIMEOUT)))
            .map_err(DeviceError::Socketpair)?;
        let config = DeviceConfig {
            n_threads: s.threads.max(1),
            use_connected_socket: false,
            use_multi_queue: true,
            // boringtun owns this end from here on (it closes it).
            uapi_fd: theirs.into_raw_fd(),
        };
        let handle = DeviceHandle::new(&s.interface, config).map_err(|e| DeviceError::Create {
            interface: s.interface.clone(),
            reason: e.to_string(),
        })?;
        let mut device = Device {
            handle: Some(handle),
            uapi: Mutex::new(Some(ours)),
            interface: s.interface.clone(),
            public_key: s.private_key.public(),
            listen_port: s.listen_port,
        };
        device.request(&uapi::set_device(&s.private_key, s.listen_port))?;
        device.listen_port = device.get()?.listen_port.unwrap_or(s.listen_port);
        iface::configure(&s.interface, s.address, MTU)?;
        Ok(device)
    }

    pub fn interface(&self) -> &str {
        &self.interface
    }

    pub fn public_key(&self) -> Key {
        self.public_key
    }

    /// The UDP port the device listens on.
    pub fn listen_port(&self) -> u16 {
        self.listen_port
    }

    /// Reads the device's state (blocking).
    pub fn get(&self) -> Result<DeviceState, DeviceError> {
        Ok(uapi::parse_get(&self.request(uapi::GET)?)?)
    }

    /// Applies peer changes (blocking); nothing to do is not a request.
    pub fn apply(&self, changes: &Changes) -> Result<(), DeviceError> {
        match uapi::set_peers(changes) {
            Some(text) => self.request(&text).map(drop),
            None => Ok(()),
        }
    }

    /// Adds the server this device joins as its one peer (blocking; see
    /// [`uapi::add_server_peer`]). Once: boringtun cannot set a peer it has.
    pub fn add_server(
        &self,
        public_key: &Key,
        endpoint: std::net::SocketAddr,
        allowed: Cidr,
        keepalive_secs: u16,
    ) -> Result<(), DeviceError> {
        self.request(&uapi::add_server_peer(
            public_key,
            endpoint,
            allowed,
            keepalive_secs,
        ))
        .map(drop)
    }

    /// Sends one request and reads its whole answer, checking its errno.
    fn request(&self, text: &str) -> Result<String, DeviceError> {
        let mut guard = self.uapi.lock().unwrap_or_else(|e| e.into_inner());
        let stream = guard.as_mut().ok_or(DeviceError::Closed)?;
        match exchange(stream, text) {
            Ok(answer) => {
                uapi::parse_answer(&answer)?;
                Ok(answer)
            }
            Err(e) => {
                // The request/answer pairing is lost: never use it again.
                *guard = None;
                Err(e)
            }
        }
    }

    /// Stops the device and waits for its threads (blocking): the interface
    /// is gone when this returns.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        // Closing our end is boringtun's signal to stop (it sees the hang-up).
        drop(self.uapi.lock().unwrap_or_else(|e| e.into_inner()).take());
        if let Some(mut handle) = self.handle.take() {
            // `wait` unwraps each thread's result: a worker that panicked
            // must not take the caller down with it.
            let joined = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handle.wait()));
            if joined.is_err() {
                tracing::error!(interface = %self.interface, "a WireGuard worker thread had panicked");
            }
            drop(handle);
        }
    }
}

impl Drop for Device {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Writes a request and reads until the answer's closing empty line.
fn exchange(stream: &mut UnixStream, text: &str) -> Result<String, DeviceError> {
    let io = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
            DeviceError::Timeout(UAPI_TIMEOUT)
        }
        _ => DeviceError::Io(e),
    };
    stream.write_all(text.as_bytes()).map_err(io)?;
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while !uapi::is_complete(&answer) {
        let n = stream.read(&mut buf).map_err(io)?;
        if n == 0 {
            return Err(DeviceError::Io(std::io::ErrorKind::UnexpectedEof.into()));
        }
        answer.extend_from_slice(&buf[..n]);
    }
    String::from_utf8(answer).map_err(|_| DeviceError::NotText)
}

/// Interface names the kernel takes. boringtun reads an all-digit name as a
/// file descriptor number, so those are refused too.
fn check_name(name: &str) -> Result<(), DeviceError> {
    let ok = (1..=15).contains(&name.len())
        && !name.bytes().all(|b| b.is_ascii_digit())
        && !name
            .bytes()
            .any(|b| b == b'/' || b.is_ascii_whitespace() || b == 0)
        && name != "."
        && name != "..";
    if ok {
        Ok(())
    } else {
        Err(DeviceError::Name(name.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_names() {
        for good in ["wg0", "turtle-vpn-1234"] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in ["", "3", "0123", "a/b", "wg 0", "sixteen-chars-xx", ".."] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn exchange_reads_the_whole_answer_in_pieces() {
        let (mut a, mut b) = UnixStream::pair().unwrap();
        let server = std::thread::spawn(move || {
            let mut req = [0u8; 6];
            b.read_exact(&mut req).unwrap();
            assert_eq!(&req, b"get=1\n");
            b.write_all(b"listen_port=7\n").unwrap();
            b.write_all(b"errno=0\n").unwrap();
            b.write_all(b"\n").unwrap();
        });
        let answer = exchange(&mut a, uapi::GET).unwrap();
        assert_eq!(answer, "listen_port=7\nerrno=0\n\n");
        server.join().unwrap();
    }

    #[test]
    fn a_closed_device_is_an_error_not_a_hang() {
        let (mut a, b) = UnixStream::pair().unwrap();
        drop(b);
        assert!(exchange(&mut a, uapi::GET).is_err());
    }
}
