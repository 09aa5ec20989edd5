use std::path::PathBuf;

/// The socket a sidecar serves when no other address is configured.
pub const DEFAULT_SOCKET: &str = "/var/run/cachee/cachee.sock";
/// The TCP port for gRPC and RESP when `CACHE_HOST` is set without `CACHE_PORT`.
pub const DEFAULT_PORT: u16 = 6380;

/// Where to reach cachee.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    /// A Unix socket.
    Unix(PathBuf),
    /// A TCP `host:port`.
    Tcp(String),
}

impl Address {
    /// Parses an explicit address: `unix:///path.sock`, `unix:/path.sock`, an absolute
    /// socket path, or `host:port`.
    pub fn parse(address: &str) -> Option<Address> {
        if let Some(path) = address.strip_prefix("unix://").or_else(|| address.strip_prefix("unix:")) {
            return (!path.is_empty()).then(|| Address::Unix(PathBuf::from(path)));
        }
        if address.starts_with('/') {
            return Some(Address::Unix(PathBuf::from(address)));
        }
        match address.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => Some(Address::Tcp(address.to_string())),
            _ => None,
        }
    }

    /// The address the environment names: `CACHE_HOST`/`CACHE_PORT` (set in the
    /// sidecar's pod spec) select TCP, else `CACHEE_SOCKET` (read by cachee's own CLI)
    /// a socket, else the default socket.
    pub fn from_env() -> Address {
        Address::from_vars(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
    }

    /// [`Address::from_env`] over any lookup of variables.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Address {
        let (host, port) = (var("CACHE_HOST"), var("CACHE_PORT"));
        if host.is_some() || port.is_some() {
            let mut host = host.unwrap_or_else(|| "localhost".into());
            if host.contains(':') && !host.starts_with('[') {
                host = format!("[{host}]"); // an IPv6 literal
            }
            let port = port.unwrap_or_else(|| DEFAULT_PORT.to_string());
            return Address::Tcp(format!("{host}:{port}"));
        }
        Address::Unix(var("CACHEE_SOCKET").unwrap_or_else(|| DEFAULT_SOCKET.into()).into())
    }
}
