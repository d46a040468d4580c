//! Getting a calendar's text: over HTTP(S) (through
//! [`athena_runtime::fetch`], with its deadline and size limit) or from a
//! local file. Errors never contain the URL's query string (booking sites
//! put a secret there).

use std::time::Duration;

pub use athena_runtime::fetch::shown;
use athena_runtime::fetch::{self, Limits};

/// Why a fetch failed, for people (and the calendar's status).
pub type FetchError = String;

/// The text at `url` (http, https, file:// or an absolute path).
pub async fn fetch(
    http: &reqwest::Client,
    url: &str,
    timeout: Duration,
    max_bytes: usize,
) -> Result<String, FetchError> {
    let bytes = if url.starts_with("http://") || url.starts_with("https://") {
        let limits = Limits { timeout, max_bytes };
        fetch::get(http, url, "text/calendar, */*;q=0.5", limits)
            .await
            .map_err(|e| e.to_string())?
            .bytes
    } else {
        let path = url.strip_prefix("file://").unwrap_or(url);
        let len = tokio::fs::metadata(path)
            .await
            .map_err(|e| format!("cannot read {path}: {e}"))?
            .len();
        if len > max_bytes as u64 {
            return Err(format!("{len} bytes is more than the {max_bytes} allowed"));
        }
        tokio::fs::read(path)
            .await
            .map_err(|e| format!("cannot read {path}: {e}"))?
    };
    String::from_utf8(bytes).map_err(|_| "not UTF-8 text".to_owned())
}
