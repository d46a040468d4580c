//! Getting a resource over HTTP(S) with a deadline and a size limit, and
//! conditionally (ETag, Last-Modified) when the caller has validators from
//! an earlier answer. Shared by the services that poll URLs (mode-service's
//! calendars, rag-api's URL connectors).
//!
//! Errors never contain the URL: its query string may hold a secret
//! (booking sites and wikis put tokens there). [`shown`] is what may be
//! logged or shown of a URL.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{self, HeaderMap};

/// `url` without credentials or query: what may be shown and logged.
pub fn shown(url: &str) -> String {
    let without_query = url.split(['?', '#']).next().unwrap_or(url);
    match (without_query.find("://"), without_query.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            format!("{}{}", &without_query[..s + 3], &without_query[at + 1..])
        }
        _ => without_query.to_owned(),
    }
}

/// Why a fetch failed; the message never contains the URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// No complete answer within the deadline.
    #[error("no answer in {}", seconds(*.0))]
    Timeout(Duration),
    /// An answer other than 2xx (or 304 to a conditional request).
    #[error("HTTP {0}")]
    Status(StatusCode),
    /// The body is larger than the limit.
    #[error("more than the {0} bytes allowed")]
    TooLarge(usize),
    /// No answer at all: refused, reset, DNS, TLS.
    #[error("{0}")]
    Transport(String),
}

impl FetchError {
    /// A stable, machine-readable code, for status reports.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Timeout(_) => "timeout",
            Self::Status(_) => "http_status",
            Self::TooLarge(_) => "too_large",
            Self::Transport(_) => "unreachable",
        }
    }
}

fn seconds(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
    }
}

/// The deadline and size limit of one fetch.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// For the whole exchange, body included.
    pub timeout: Duration,
    /// Largest body accepted.
    pub max_bytes: usize,
}

/// What a server said identifies the version it sent, to ask next time
/// whether it changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Validators {
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

impl Validators {
    fn of(headers: &HeaderMap) -> Self {
        let text = |name| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        Self {
            etag: text(header::ETAG),
            last_modified: text(header::LAST_MODIFIED),
        }
    }

    /// Whether there is anything to ask with.
    pub fn is_empty(&self) -> bool {
        self.etag.is_none() && self.last_modified.is_none()
    }
}

/// A body as received.
#[derive(Debug, Clone)]
pub struct Body {
    pub bytes: Vec<u8>,
    /// The `Content-Type` header, if the server sent one.
    pub content_type: Option<String>,
    /// For the next conditional request.
    pub validators: Validators,
}

/// The body at `url` (http or https).
pub async fn get(
    http: &reqwest::Client,
    url: &str,
    accept: &str,
    limits: Limits,
) -> Result<Body, FetchError> {
    let fetched = get_if_changed(http, url, accept, limits, &Validators::default()).await?;
    // Without validators there is no 304 to expect: `exchange` refuses one.
    fetched.ok_or(FetchError::Status(StatusCode::NOT_MODIFIED))
}

/// The body at `url`, or `None` when the server says (304) that the
/// version `since` identifies is still current.
pub async fn get_if_changed(
    http: &reqwest::Client,
    url: &str,
    accept: &str,
    limits: Limits,
    since: &Validators,
) -> Result<Option<Body>, FetchError> {
    tokio::time::timeout(limits.timeout, exchange(http, url, accept, limits, since))
        .await
        .map_err(|_| FetchError::Timeout(limits.timeout))?
}

async fn exchange(
    http: &reqwest::Client,
    url: &str,
    accept: &str,
    limits: Limits,
    since: &Validators,
) -> Result<Option<Body>, FetchError> {
    let transport = |e: reqwest::Error| FetchError::Transport(cause(e, url));
    let mut request = http.get(url).header(header::ACCEPT, accept);
    if let Some(etag) = &since.etag {
        request = request.header(header::IF_NONE_MATCH, etag);
    }
    if let Some(date) = &since.last_modified {
        request = request.header(header::IF_MODIFIED_SINCE, date);
    }
    let mut response = request.send().await.map_err(transport)?;
    let status = response.status();
    if status == StatusCode::NOT_MODIFIED && !since.is_empty() {
        return Ok(None);
    }
    if !status.is_success() {
        return Err(FetchError::Status(status));
    }
    let max = limits.max_bytes;
    if response.content_length().is_some_and(|n| n > max as u64) {
        return Err(FetchError::TooLarge(max));
    }
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let validators = Validators::of(response.headers());
    let mut bytes = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(transport)? {
        if bytes.len() + chunk.len() > max {
            return Err(FetchError::TooLarge(max));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(Some(Body {
        bytes,
        content_type,
        validators,
    }))
}

/// `e` and its causes ("error sending request: client error (Connect):
/// tcp connect error: Connection refused"), the URL shown as [`shown`] does
/// should any layer have put it in.
fn cause(e: reqwest::Error, url: &str) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text.replace(url, &shown(url))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_in_urls_are_not_shown() {
        assert_eq!(
            shown("https://www.example.com/calendar/ical/123.ics?s=abcdef"),
            "https://www.example.com/calendar/ical/123.ics"
        );
        assert_eq!(
            shown("https://user:pw@cal.example/x.ics"),
            "https://cal.example/x.ics"
        );
        assert_eq!(shown("/etc/athena/owner.ics"), "/etc/athena/owner.ics");
    }

    #[test]
    fn deadlines_read_as_people_write_them() {
        assert_eq!(
            FetchError::Timeout(Duration::from_secs(1)).to_string(),
            "no answer in 1 s"
        );
        assert_eq!(
            FetchError::Timeout(Duration::from_millis(300)).to_string(),
            "no answer in 300 ms"
        );
        assert_eq!(
            FetchError::Status(StatusCode::INTERNAL_SERVER_ERROR).to_string(),
            "HTTP 500 Internal Server Error"
        );
    }
}
