//! A raw OP_MSG client for tests that must control exactly what reaches one member.

use mongodb::bson::Document;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// `moreToCome`: the client expects no reply.
pub const MORE_TO_COME: u32 = 1 << 1;

/// One raw connection.
pub struct Raw {
    pub stream: TcpStream,
    next_id: i32,
}

impl Raw {
    pub async fn connect(addr: std::net::SocketAddr) -> Self {
        Self {
            stream: TcpStream::connect(addr).await.unwrap(),
            next_id: 1,
        }
    }

    /// Sends `body` (which must contain `$db`) with `flags`.
    pub async fn send(&mut self, body: &Document, flags: u32) {
        let mut payload = flags.to_le_bytes().to_vec();
        payload.push(0);
        body.to_writer(&mut payload).unwrap();
        let mut msg = Vec::new();
        msg.extend_from_slice(&i32::try_from(16 + payload.len()).unwrap().to_le_bytes());
        msg.extend_from_slice(&self.next_id.to_le_bytes());
        msg.extend_from_slice(&0i32.to_le_bytes());
        msg.extend_from_slice(&2013i32.to_le_bytes());
        msg.extend_from_slice(&payload);
        self.next_id += 1;
        self.stream.write_all(&msg).await.unwrap();
    }

    /// Reads one OP_MSG reply; `None` when the server closed the connection.
    pub async fn receive(&mut self) -> Option<Document> {
        let mut h = [0u8; 16];
        self.stream.read_exact(&mut h).await.ok()?;
        let len = usize::try_from(i32::from_le_bytes(h[0..4].try_into().unwrap())).unwrap();
        let mut body = vec![0u8; len - 16];
        self.stream.read_exact(&mut body).await.ok()?;
        Some(Document::from_reader(&mut &body[5..]).unwrap())
    }

    /// Sends a command and awaits its reply.
    pub async fn command(&mut self, body: Document) -> Document {
        self.send(&body, 0).await;
        super::within(self.receive()).await.expect("a reply")
    }
}
