//! Hand-rolled OpenAI-compatible providers on loopback, for bodies wiremock
//! cannot serve: one that trickles text and never finishes, and one that
//! resets the connection mid-stream.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Clone, Copy)]
enum Behaviour {
    /// One `tick ` delta every interval, forever (until the client leaves).
    Trickle(Duration),
    /// One `Hel` delta, then a TCP reset.
    Reset,
}

/// A fake provider; its base URL goes into `LLM_BASE_URL`.
pub struct FakeProvider {
    pub base_url: String,
}

impl FakeProvider {
    pub async fn trickling(every: Duration) -> Self {
        Self::start(Behaviour::Trickle(every)).await
    }

    pub async fn resetting() -> Self {
        Self::start(Behaviour::Reset).await
    }

    async fn start(behaviour: Behaviour) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind a loopback port");
        let port = listener.local_addr().expect("a local address").port();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(answer(socket, behaviour));
            }
        });
        Self { base_url: format!("http://127.0.0.1:{port}/v1") }
    }
}

async fn answer(mut socket: TcpStream, behaviour: Behaviour) {
    if read_request(&mut socket).await.is_none() {
        return;
    }
    let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n";
    if socket.write_all(head.as_bytes()).await.is_err() {
        return;
    }
    match behaviour {
        Behaviour::Trickle(every) => {
            while write_delta(&mut socket, "tick ").await.is_some() {
                tokio::time::sleep(every).await;
            }
        }
        Behaviour::Reset => {
            let _ = write_delta(&mut socket, "Hel").await;
            tokio::time::sleep(Duration::from_millis(100)).await;
            let _ = socket.set_zero_linger();
            drop(socket);
        }
    }
}

async fn write_delta(socket: &mut TcpStream, text: &str) -> Option<()> {
    let event = format!("data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{text}\"}}}}]}}\n\n");
    socket.write_all(format!("{:x}\r\n{event}\r\n", event.len()).as_bytes()).await.ok()?;
    socket.flush().await.ok()
}

/// Reads one request: its head and its `Content-Length` body.
async fn read_request(socket: &mut TcpStream) -> Option<()> {
    let mut buffer = vec![0_u8; 64 * 1024];
    let mut received = Vec::new();
    loop {
        let n = socket.read(&mut buffer).await.ok().filter(|n| *n > 0)?;
        received.extend_from_slice(&buffer[..n]);
        let text = String::from_utf8_lossy(&received).to_string();
        if let Some(head_end) = text.find("\r\n\r\n") {
            let length = text[..head_end]
                .lines()
                .find_map(|line| line.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_owned()))
                .and_then(|v| v.parse::<usize>().ok())
                .unwrap_or(0);
            if received.len() >= head_end + 4 + length {
                return Some(());
            }
        }
    }
}
