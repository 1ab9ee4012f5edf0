//! Socket helpers shared by the server and the proxy.

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpSocket};

use crate::error::TestkitError;

/// Binds with `SO_REUSEADDR`, so a restarted server gets its old port back even while
/// connections from its previous life linger in `TIME_WAIT`.
pub(crate) fn bind_reusable(addr: SocketAddr) -> Result<TcpListener, TestkitError> {
    let err = |source| TestkitError::Bind { addr, source };
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(err)?;
    socket.set_reuseaddr(true).map_err(err)?;
    socket.bind(addr).map_err(err)?;
    socket.listen(1024).map_err(err)
}
