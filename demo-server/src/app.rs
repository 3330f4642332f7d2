//! The web application each worker runs: a login form, logout, two counters, which
//! worker served the request, and the same as a JSON API for tests.
//!
//! - `GET /`: the page. `POST /login` (form `user`), `POST /logout`, `POST /incr`.
//! - `GET /api/session`: [`Info`] as JSON.
//! - `POST /api/login` (`{"user": "..."}`), `POST /api/logout`.
//! - `POST /api/incr`: the counter through tower-sessions' load-then-save (concurrent
//!   requests of one session lose increments: each saves what it loaded plus one).
//! - `POST /api/incr-atomic`: the counter through [`TowerStore::update_data`], atomic in
//!   the store (loses nothing); needs a logged-in session.
//! - `PUT /api/note`: a text saved in the session; over the store's value limit it is
//!   413, never a silently dropped value. `GET /api/limits` says the limit.

use axum::Router;
use axum::extract::{Form, Json, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post, put};
use serde::{Deserialize, Serialize};
use serde_json::json;
use session_tower::TowerStore;
use tower_sessions::{Expiry, Session, SessionManagerLayer};

/// What every handler shares.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The sessions.
    pub sessions: TowerStore,
    /// This worker's number (0-based) and process id.
    pub worker: (usize, u32),
    /// Largest session record the store takes, in bytes.
    pub max_record: usize,
}

/// A session as the JSON API shows it.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Info {
    /// The worker that served the request.
    pub worker: usize,
    /// Its process id.
    pub pid: u32,
    /// The logged-in user, if any.
    pub user: Option<String>,
    /// The load-then-save counter.
    pub counter: u64,
    /// The atomic counter.
    pub atomic: u64,
    /// The saved note's length.
    pub note_len: usize,
}

/// The router, sessions layer included, for sessions idle at most `ttl`.
pub fn router(state: AppState, ttl: std::time::Duration) -> Router {
    let ttl = time::Duration::try_from(ttl).unwrap_or(time::Duration::days(1));
    let layer = SessionManagerLayer::new(state.sessions.clone())
        .with_name("demo_sid")
        .with_secure(false)
        .with_expiry(Expiry::OnInactivity(ttl));
    let worker = HeaderValue::from(state.worker.0);
    Router::new()
        .route("/", get(page))
        .route("/login", post(login_form))
        .route("/logout", post(logout_form))
        .route("/incr", post(incr_form))
        .route("/api/session", get(info_json))
        .route("/api/login", post(login_json))
        .route("/api/logout", post(logout_json))
        .route("/api/incr", post(incr_json))
        .route("/api/incr-atomic", post(incr_atomic_json))
        .route("/api/note", put(note_json))
        .route("/api/limits", get(limits_json))
        .with_state(state)
        .layer(layer)
        .layer(axum::middleware::map_response(move |mut res: Response| {
            let worker = worker.clone();
            async move {
                res.headers_mut().insert("x-worker", worker);
                res
            }
        }))
}

/// A failed session operation: a 500 and a log line.
fn failed(what: &str, e: impl std::fmt::Display) -> Response {
    tracing::error!("{what}: {e}");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        Json(json!({"error": format!("{what}: {e}")})),
    )
        .into_response()
}

fn bad_request(msg: String) -> Response {
    tracing::warn!("bad request: {msg}");
    (StatusCode::BAD_REQUEST, Json(json!({"error": msg}))).into_response()
}

async fn info(st: &AppState, session: &Session) -> Result<Info, Response> {
    let get = async |k: &str| -> Result<Option<serde_json::Value>, Response> {
        session
            .get(k)
            .await
            .map_err(|e| failed("reading the session", e))
    };
    let user = get("user")
        .await?
        .and_then(|v| v.as_str().map(str::to_owned));
    let num = |v: Option<serde_json::Value>| v.and_then(|v| v.as_u64()).unwrap_or(0);
    Ok(Info {
        worker: st.worker.0,
        pid: st.worker.1,
        user,
        counter: num(get("counter").await?),
        atomic: num(get("atomic").await?),
        note_len: get("note")
            .await?
            .and_then(|v| v.as_str().map(str::len))
            .unwrap_or(0),
    })
}

#[derive(Deserialize)]
struct Login {
    user: String,
}

async fn login(session: &Session, user: &str) -> Result<(), Response> {
    if user.is_empty() || user.chars().count() > 64 || user.chars().any(char::is_control) {
        return Err(bad_request(
            "a user name is 1 to 64 characters without control characters".into(),
        ));
    }
    // A new id at login: an id planted before login (session fixation) is worthless.
    session
        .cycle_id()
        .await
        .map_err(|e| failed("rotating the session id", e))?;
    session
        .insert("user", user)
        .await
        .map_err(|e| failed("logging in", e))
}

async fn incr(session: &Session) -> Result<u64, Response> {
    let n: u64 = session
        .get("counter")
        .await
        .map_err(|e| failed("reading the counter", e))?
        .unwrap_or(0);
    session
        .insert("counter", n + 1)
        .await
        .map_err(|e| failed("saving the counter", e))?;
    Ok(n + 1)
}

async fn page(State(st): State<AppState>, session: Session) -> Response {
    let i = match info(&st, &session).await {
        Ok(i) => i,
        Err(r) => return r,
    };
    let body = match &i.user {
        None => "<form method=post action=/login><label>User <input name=user required maxlength=64></label> \
                 <button>Log in</button></form>"
            .to_owned(),
        Some(u) => format!(
            "<p>Logged in as <b>{}</b>. Counter: <b>{}</b>.</p>\
             <form method=post action=/incr><button>Count</button></form>\
             <form method=post action=/logout><button>Log out</button></form>",
            escape(u),
            i.counter
        ),
    };
    Html(format!(
        "<!doctype html><html><head><meta charset=utf-8><title>demo-server</title>\
         <style>body{{font:16px sans-serif;margin:3em}}form{{margin:1em 0}}</style></head>\
         <body><h1>Sessions shared by worker processes</h1>{body}\
         <p><small>Served by worker {} (pid {}).</small></p></body></html>",
        i.worker, i.pid
    ))
    .into_response()
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

async fn login_form(session: Session, Form(l): Form<Login>) -> Response {
    match login(&session, &l.user).await {
        Ok(()) => Redirect::to("/").into_response(),
        Err(r) => r,
    }
}

async fn logout_form(session: Session) -> Response {
    match session.flush().await {
        Ok(()) => Redirect::to("/").into_response(),
        Err(e) => failed("logging out", e),
    }
}

async fn incr_form(session: Session) -> Response {
    match incr(&session).await {
        Ok(_) => Redirect::to("/").into_response(),
        Err(r) => r,
    }
}

async fn info_json(State(st): State<AppState>, session: Session) -> Response {
    match info(&st, &session).await {
        Ok(i) => Json(i).into_response(),
        Err(r) => r,
    }
}

async fn login_json(
    State(st): State<AppState>,
    session: Session,
    Json(l): Json<Login>,
) -> Response {
    if let Err(r) = login(&session, &l.user).await {
        return r;
    }
    info_json(State(st), session).await
}

async fn logout_json(session: Session) -> Response {
    match session.flush().await {
        Ok(()) => Json(json!({"logged_out": true})).into_response(),
        Err(e) => failed("logging out", e),
    }
}

async fn incr_json(session: Session) -> Response {
    match incr(&session).await {
        Ok(n) => Json(json!({"counter": n})).into_response(),
        Err(r) => r,
    }
}

async fn incr_atomic_json(State(st): State<AppState>, session: Session) -> Response {
    let logged_in = match session.get::<String>("user").await {
        Ok(u) => u.is_some(),
        Err(e) => return failed("reading the session", e),
    };
    let Some(id) = session.id().filter(|_| logged_in) else {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "log in first"})),
        )
            .into_response();
    };
    let counted = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let seen = std::sync::Arc::clone(&counted);
    let found = st
        .sessions
        .update_data(id, move |data| {
            let n = data.get("atomic").and_then(|v| v.as_u64()).unwrap_or(0) + 1;
            data.insert("atomic".into(), json!(n));
            // Relaxed: read after `update_data` returned, which joined this call.
            seen.store(n, std::sync::atomic::Ordering::Relaxed);
        })
        .await;
    match found {
        Ok(true) => {
            let n = counted.load(std::sync::atomic::Ordering::Relaxed);
            Json(json!({"atomic": n})).into_response()
        }
        Ok(false) => (
            StatusCode::UNAUTHORIZED,
            Json(json!({"error": "the session is gone"})),
        )
            .into_response(),
        Err(e) => failed("counting atomically", e),
    }
}

async fn limits_json(State(st): State<AppState>) -> Response {
    // The note is stored as a JSON string: two quotes, and escapes for some characters.
    let max_note = st.max_record.saturating_sub(NOTE_ROOM + 2);
    Json(json!({"max_record": st.max_record, "max_note": max_note, "note_is_json_escaped": true}))
        .into_response()
}

/// Bytes of a session record kept for everything but the note.
const NOTE_ROOM: usize = 1024;

#[derive(Deserialize)]
struct Note {
    note: String,
}

async fn note_json(State(st): State<AppState>, session: Session, Json(n): Json<Note>) -> Response {
    // The record holds the note and the rest of the session, JSON-escaped: refuse what
    // cannot fit instead of failing in the middleware after the handler returned.
    let escaped = serde_json::to_string(&n.note).map_or(usize::MAX, |s| s.len());
    if escaped.saturating_add(NOTE_ROOM) > st.max_record {
        tracing::warn!(
            len = n.note.len(),
            max = st.max_record,
            "note too large for the session store"
        );
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            Json(json!({"error": format!(
                "a note of {} bytes does not fit in a session (the store takes {} bytes per session)",
                n.note.len(), st.max_record
            )})),
        )
            .into_response();
    }
    match session.insert("note", n.note).await {
        Ok(()) => Json(json!({"saved": true})).into_response(),
        Err(e) => failed("saving the note", e),
    }
}
