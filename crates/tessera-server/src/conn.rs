//! The accept loop: HTTP/1.1 and HTTP/2 (cleartext) connections with time limits against slow
//! clients (the "slowloris" family; OWASP ASVS 5.0 V13.1 resource limits), and graceful shutdown.
//!
//! hyper's own `header_read_timeout` also runs while a keep-alive connection waits for its next
//! request, so it cannot tell the header limit from the idle limit; instead each connection's
//! socket is wrapped in [`Watched`], which knows (from the service) whether a request is in
//! progress:
//! - no request in progress and no byte of the next one yet: the **idle** limit (or the header
//!   limit on a fresh connection, which must send its first request promptly);
//! - bytes of a request head received: the **header** limit, counted from its first byte;
//! - a request in progress: no socket limit; its body has the **body** limit ([`DeadlineBody`]).
//!
//! When a limit passes, the socket read fails and hyper drops the connection.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::ConnectInfo;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, Sleep};
use tower::ServiceExt;

use crate::config::HttpTimeouts;

/// Serves `app` on `listener` until `shutdown` resolves, then lets in-flight requests finish.
/// Each request carries `ConnectInfo<SocketAddr>` (the socket peer).
pub(crate) async fn serve_router(
    listener: TcpListener,
    app: Router,
    timeouts: HttpTimeouts,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(());
    let mut shutdown = std::pin::pin!(shutdown);
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        while connections.try_join_next().is_some() {}
        match accepted {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                connections.spawn(connection(
                    stream,
                    peer,
                    app.clone(),
                    timeouts,
                    stop_rx.clone(),
                ));
            }
            // The peer gave up before we accepted: nothing to do.
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionAborted
                        | io::ErrorKind::ConnectionReset
                        | io::ErrorKind::ConnectionRefused
                ) => {}
            // Out of file descriptors and the like: back off instead of spinning.
            Err(e) => {
                tracing::warn!(error = %e, "accepting a connection failed; retrying in 1 s");
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    () = &mut shutdown => break,
                }
            }
        }
    }
    drop(listener);
    // Tell every connection to finish its current request and close.
    let _ = stop_tx.send(());
    while connections.join_next().await.is_some() {}
    Ok(())
}

/// What the service tells the socket wrapper about its connection.
#[derive(Default)]
struct ConnState {
    /// Requests whose response is not complete yet (several on HTTP/2).
    in_flight: AtomicUsize,
    /// Requests finished so far: a change means "a response just completed".
    finished: AtomicU64,
    /// The connection task, as last seen waiting on a read while busy: woken when the last
    /// request finishes, so that the idle limit starts even if the client sends nothing.
    reader: Mutex<Option<Waker>>,
}

/// Counts a request in flight from the moment hyper hands it over until its response future
/// ends (or is dropped).
struct InFlight(Arc<ConnState>);

impl InFlight {
    fn enter(state: &Arc<ConnState>) -> InFlight {
        state.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(state.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.finished.fetch_add(1, Ordering::AcqRel);
        if self.0.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            let waker = self
                .0
                .reader
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take();
            if let Some(waker) = waker {
                waker.wake();
            }
        }
    }
}

async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    app: Router,
    timeouts: HttpTimeouts,
    mut stop: tokio::sync::watch::Receiver<()>,
) {
    let state = Arc::new(ConnState::default());
    let io = TokioIo::new(Watched::new(stream, state.clone(), timeouts));
    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
        // Counted before the future first runs: the socket wrapper must see "busy" as soon as
        // hyper has parsed a head.
        let guard = InFlight::enter(&state);
        let mut request = request.map(|body| {
            if http_body::Body::is_end_stream(&body) {
                Body::new(body)
            } else {
                Body::new(DeadlineBody::new(body, timeouts.body))
            }
        });
        request.extensions_mut().insert(ConnectInfo(peer));
        let response = app.clone().oneshot(request);
        async move {
            let response = response.await;
            drop(guard);
            response
        }
    });
    let builder = Builder::new(TokioExecutor::new());
    let conn = builder.serve_connection_with_upgrades(io, service);
    let mut conn = std::pin::pin!(conn);
    let mut stopping = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, %peer, "connection ended with an error");
                }
                return;
            }
            changed = stop.changed(), if !stopping => {
                let _ = changed;
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Waiting for the first byte of the next request.
    Idle,
    /// Reading a request head.
    Head,
    /// A request is being answered.
    Busy,
}

/// The socket, failing reads once the connection has been idle or slow for too long.
struct Watched {
    inner: TcpStream,
    state: Arc<ConnState>,
    timeouts: HttpTimeouts,
    phase: Phase,
    seen_finished: u64,
    sleep: Pin<Box<Sleep>>,
}

impl Watched {
    fn new(inner: TcpStream, state: Arc<ConnState>, timeouts: HttpTimeouts) -> Watched {
        Watched {
            inner,
            state,
            timeouts,
            // A fresh connection must send a complete head within the header limit.
            phase: Phase::Head,
            seen_finished: 0,
            sleep: Box::pin(tokio::time::sleep(timeouts.header)),
        }
    }

    /// Moves the phase on after a read that returned `got` bytes (or none).
    fn update(&mut self, got: bool) {
        if self.state.in_flight.load(Ordering::Acquire) > 0 {
            self.phase = Phase::Busy;
            return;
        }
        let finished = self.state.finished.load(Ordering::Acquire);
        if self.phase == Phase::Busy || finished != self.seen_finished {
            self.seen_finished = finished;
            self.phase = Phase::Idle;
            self.sleep
                .as_mut()
                .reset(Instant::now() + self.timeouts.idle);
        }
        if got && self.phase == Phase::Idle {
            self.phase = Phase::Head;
            self.sleep
                .as_mut()
                .reset(Instant::now() + self.timeouts.header);
        }
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let result = Pin::new(&mut this.inner).poll_read(cx, buf);
        let got = matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before;
        this.update(got);
        if result.is_pending() && this.phase == Phase::Busy {
            let mut reader = this.state.reader.lock().unwrap_or_else(|e| e.into_inner());
            if !reader.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                *reader = Some(cx.waker().clone());
            }
            drop(reader);
            // The request may have ended between the check and the registration.
            if this.state.in_flight.load(Ordering::Acquire) == 0 {
                cx.waker().wake_by_ref();
            }
        }
        if result.is_pending()
            && this.phase != Phase::Busy
            && this.sleep.as_mut().poll(cx).is_ready()
        {
            let what = if this.phase == Phase::Idle {
                "idle connection"
            } else {
                "request header"
            };
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("{what} timeout"),
            )));
        }
        result
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// A request body that fails once its total reading time passes the body limit (counted from
/// when the request head was parsed), however the client paces its bytes.
struct DeadlineBody {
    inner: Incoming,
    deadline: Instant,
    /// Armed on the first wait only: most bodies arrive with their head.
    sleep: Option<Pin<Box<Sleep>>>,
}

impl DeadlineBody {
    fn new(inner: Incoming, limit: Duration) -> DeadlineBody {
        DeadlineBody {
            inner,
            deadline: Instant::now() + limit,
            sleep: None,
        }
    }
}

/// The error of a body that took too long; the handler sees an unreadable body.
#[derive(Debug)]
struct BodyTimeout;

impl std::fmt::Display for BodyTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("request body timeout")
    }
}

impl std::error::Error for BodyTimeout {}

impl http_body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => Poll::Ready(frame.map(|f| f.map_err(Into::into))),
            Poll::Pending => {
                let deadline = this.deadline;
                let sleep = this
                    .sleep
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                match sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyTimeout)))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
