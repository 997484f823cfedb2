//! Running the HTTP server in-process for tests (optionally recording every request it answers),
//! and a raw HTTP/1.1 client for requests that ordinary clients would normalise (`..`, `%2e%2e`)
//! before sending.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use floe::server::{router, ServeOptions, Server};
use floe::Repository;
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::StatusCode;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A server bound to 127.0.0.1 on a free port, stopped when dropped.
pub struct TestServer {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<floe::Result<()>>>,
}

impl TestServer {
    /// Serves `repo` with `options` (whose address is replaced by 127.0.0.1:0).
    pub async fn start_with(repo: Repository, mut options: ServeOptions) -> TestServer {
        options.addr = "127.0.0.1:0".parse().unwrap();
        Self::start_router(router(repo, &options)).await
    }

    /// Serves `repo` without authentication, recording every request in the returned log.
    pub async fn start_recording(repo: Repository) -> (TestServer, RequestLog) {
        let log = RequestLog::default();
        let options = ServeOptions::new("127.0.0.1:0".parse().unwrap());
        let app = router(repo, &options).layer(axum::middleware::from_fn_with_state(
            log.clone(),
            record_request,
        ));
        (Self::start_router(app).await, log)
    }

    /// Serves `app` on 127.0.0.1 at a free port.
    async fn start_router(app: axum::Router) -> TestServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let server = Server::from_listener(listener, app).unwrap();
        let addr = server.local_addr();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.run(async {
            let _ = stopped.await;
        }));
        TestServer {
            addr,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Serves `repo` without authentication.
    pub async fn start(repo: Repository) -> TestServer {
        Self::start_with(repo, ServeOptions::new("127.0.0.1:0".parse().unwrap())).await
    }

    /// The absolute URL of `path` (which starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Stops the server and waits until it has stopped, asserting it ended cleanly.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// One request a recording server answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recorded {
    pub method: String,
    /// The raw path, as sent (percent-encoding kept).
    pub path: String,
    pub status: u16,
}

/// The requests a server started with [`TestServer::start_recording`] answered, in order: the
/// test-side twin of the server's access log.
#[derive(Clone, Debug, Default)]
pub struct RequestLog(Arc<Mutex<Vec<Recorded>>>);

impl RequestLog {
    /// Every request so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.0.lock().unwrap().clone()
    }
}

async fn record_request(
    axum::extract::State(log): axum::extract::State<RequestLog>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let method = request.method().to_string();
    let path = request.uri().path().to_string();
    let response = next.run(request).await;
    log.0.lock().unwrap().push(Recorded {
        method,
        path,
        status: response.status().as_u16(),
    });
    response
}

/// The status code and the whole response (head and body, as text with invalid UTF-8
/// replaced) of `GET <target>` sent verbatim over a new connection.
pub async fn raw_get(addr: SocketAddr, target: &[u8]) -> (u16, String) {
    let target = target.to_vec();
    tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(addr).unwrap();
        let mut request = b"GET ".to_vec();
        request.extend_from_slice(&target);
        request.extend_from_slice(b" HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
        stream.write_all(&request).unwrap();
        let mut response = Vec::new();
        stream.read_to_end(&mut response).unwrap();
        let text = String::from_utf8_lossy(&response).into_owned();
        let status = text
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("no status line in {text:?}"));
        (status, text)
    })
    .await
    .unwrap()
}

/// A client that does not follow redirects.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A whole response.
pub struct Got {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Got {
    /// The value of header `name`; panics when absent.
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header in {:?}", self.headers))
            .to_str()
            .unwrap()
    }

    /// The body as UTF-8 text.
    pub fn text(&self) -> String {
        String::from_utf8(self.body.to_vec()).unwrap()
    }
}

/// Sends the request and reads the whole response.
pub async fn send(builder: reqwest::RequestBuilder) -> Got {
    let response = builder.send().await.unwrap();
    Got {
        status: response.status(),
        headers: response.headers().clone(),
        body: response.bytes().await.unwrap(),
    }
}

/// `GET path` with extra headers.
pub async fn get(server: &TestServer, path: &str, headers: &[(&str, &str)]) -> Got {
    let mut builder = client().get(server.url(path));
    for (name, value) in headers {
        builder = builder.header(*name, HeaderValue::from_str(value).unwrap());
    }
    send(builder).await
}

/// `HEAD path` with extra headers.
pub async fn head(server: &TestServer, path: &str, headers: &[(&str, &str)]) -> Got {
    let mut builder = client().head(server.url(path));
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    send(builder).await
}

/// A `floe serve` child process, killed when dropped (also when an assertion failed).
#[cfg(feature = "cli")]
pub struct ServeProcess(pub std::process::Child);

#[cfg(feature = "cli")]
impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the real `floe -r repo serve --addr 127.0.0.1:0 <extra args>` binary and returns it
/// with the base URL it printed on its first line.
#[cfg(feature = "cli")]
pub async fn spawn_floe_serve(
    repo: &std::path::Path,
    extra: &[&std::ffi::OsStr],
) -> (ServeProcess, String) {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let mut child = ServeProcess(
        Command::new(env!("CARGO_BIN_EXE_floe"))
            .arg("-r")
            .arg(repo)
            .args(["serve", "--addr", "127.0.0.1:0"])
            .args(extra)
            .env_remove("FLOE_SERVE_TOKEN")
            .env("FLOE_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let stdout = child.0.stdout.take().unwrap();
    let first_line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        line
    });
    let line = tokio::time::timeout(std::time::Duration::from_secs(60), first_line)
        .await
        .expect("floe serve printed no address within 60 s")
        .unwrap();
    let base = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    (child, base)
}
