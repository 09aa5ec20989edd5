use std::fmt;
use std::path::PathBuf;

/// The socket a sidecar serves when no other address is configured.
pub const DEFAULT_SOCKET: &str = "/var/run/cachee/cachee.sock";
/// The TCP port for gRPC and RESP when `CACHE_HOST` is set without `CACHE_PORT`.
pub const DEFAULT_PORT: u16 = 6380;

/// Where to reach cachee. Its `Display` is the normal form of docs/sdk-contract.md:
/// `unix:///abs/path.sock` or `host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    /// A Unix socket.
    Unix(PathBuf),
    /// A TCP `host:port`.
    Tcp(String),
}

impl Address {
    /// Parses an explicit address: `unix:///path.sock`, `unix:/path.sock`, an absolute
    /// socket path, or `host:port` (`[v6]:port`).
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

    /// The address the environment names: the socket `CACHEE_SOCKET`, else TCP at
    /// `CACHE_HOST`/`CACHE_PORT` when either is set (a missing host is `localhost`, a
    /// missing port 6380), else the default socket. A variable set but empty counts as
    /// unset.
    pub fn from_env() -> Address {
        Address::from_vars(|k| std::env::var(k).ok())
    }

    /// [`Address::from_env`] over any lookup of variables.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Address {
        let var = |k: &str| var(k).filter(|v| !v.is_empty());
        if let Some(sock) = var("CACHEE_SOCKET") {
            return Address::Unix(sock.into());
        }
        let (host, port) = (var("CACHE_HOST"), var("CACHE_PORT"));
        if host.is_some() || port.is_some() {
            let mut host = host.unwrap_or_else(|| "localhost".into());
            if host.contains(':') && !host.starts_with('[') {
                host = format!("[{host}]"); // an IPv6 literal
            }
            let port = port.unwrap_or_else(|| DEFAULT_PORT.to_string());
            return Address::Tcp(format!("{host}:{port}"));
        }
        Address::Unix(DEFAULT_SOCKET.into())
    }

    /// The address a client dials: the explicit one (an empty string counts as none),
    /// else the environment's.
    pub fn resolve(explicit: Option<&str>, var: impl Fn(&str) -> Option<String>) -> Option<Address> {
        match explicit.filter(|a| !a.is_empty()) {
            Some(a) => Address::parse(a),
            None => Some(Address::from_vars(var)),
        }
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Address::Unix(p) => write!(f, "unix://{}", p.display()),
            Address::Tcp(hp) => f.write_str(hp),
        }
    }
}

/// The bearer token a client sends: the explicit one, else `CACHEE_AUTH_TOKEN` (the
/// variable the sidecar reads, so one Secret can feed both containers); set but empty
/// counts as unset.
pub fn resolve_token(explicit: Option<&str>, var: impl Fn(&str) -> Option<String>) -> Option<String> {
    match explicit {
        Some(t) => Some(t.to_string()),
        None => var("CACHEE_AUTH_TOKEN").filter(|t| !t.is_empty()),
    }
}
