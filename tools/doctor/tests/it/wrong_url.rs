//! Wrong URLs: nothing listening, something that is not Cabital, a redirect.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::{API_KEY, API_SECRET, doctor_with_keys};

#[tokio::test]
async fn nothing_listening_is_a_refused_connection() {
    // A port just freed: nothing listens on it.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
    let port = listener.local_addr().expect("bound").port();
    drop(listener);
    let run = doctor_with_keys(&format!("http://127.0.0.1:{port}"), API_KEY, API_SECRET).await;
    run.assert_failed(1, "connection refused");
}

/// A server that answers every request with `head` (a status line and headers).
async fn answering(head: &'static str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
    let addr = listener.local_addr().expect("bound");
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                // Read the request's head (GETs have no body), then answer and close.
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let answer = format!("{head}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
                let _ = socket.write_all(answer.as_bytes()).await;
            });
        }
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn a_server_answering_404_to_anything_does_not_look_like_cabital() {
    let url = answering("HTTP/1.1 404 Not Found").await;
    let run = doctor_with_keys(&url, API_KEY, API_SECRET).await;
    run.assert_failed(1, "does not look like cabital");
}

#[tokio::test]
async fn a_redirect_is_reported_not_followed() {
    let url = answering("HTTP/1.1 301 Moved Permanently\r\nlocation: https://example.com/").await;
    let run = doctor_with_keys(&url, API_KEY, API_SECRET).await;
    run.assert_failed(1, "redirect to https://example.com/");
}

#[tokio::test]
async fn a_tls_failure_is_named() {
    // https to a server that does not speak TLS: it answers the ClientHello with HTTP.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
    let addr = listener.local_addr().expect("bound");
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let _ = socket.write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n").await;
        }
    });
    let run = doctor_with_keys(&format!("https://{addr}"), API_KEY, API_SECRET).await;
    run.assert_failed(1, &format!("tls with {addr} failed"));
}
