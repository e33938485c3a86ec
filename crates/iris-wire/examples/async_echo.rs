//! An async echo server on tokio: every frame a client sends comes back.
//! CPython clients work too:
//!
//! ```text
//! cargo run -p iris-wire --features tokio --example async_echo -- localhost:6001
//! python3 -c "from multiprocessing.connection import Client
//! c = Client(('localhost', 6001), authkey=b'echo key'); c.send_bytes(b'hi'); print(c.recv_bytes())"
//! ```
//!
//! Each connection is authenticated and served on a task of its own, so a
//! slow or hostile peer never holds up the others; the handshake timeout
//! bounds how long an unauthenticated one can take.

use iris_wire::handshake::Role;
use iris_wire::{AsyncConnection, AsyncListener, Error};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let address = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "localhost:0".into());
    let listener = AsyncListener::bind(&address, b"echo key")?;
    println!("echoing on {}", listener.local_addr());
    loop {
        let (stream, peer) = listener.accept_stream().await?;
        let key = listener.authkey().clone();
        let options = listener.options().clone();
        tokio::spawn(async move {
            let result = async {
                let mut connection =
                    AsyncConnection::authenticate(stream, Role::Listener, &key, &options).await?;
                loop {
                    match connection.recv_bytes().await {
                        Ok(frame) => connection.send_bytes(&frame).await?,
                        Err(Error::Closed) => return Ok(()),
                        Err(e) => return Err(e),
                    }
                    // Flush only when no further request is already here,
                    // so that pipelined requests are answered in one write.
                    if !connection.has_buffered_frame() {
                        connection.flush().await?;
                    }
                }
            };
            if let Err(e) = result.await {
                eprintln!("{peer}: {e}");
            }
        });
    }
}
