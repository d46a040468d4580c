//! Getting a calendar's text: over HTTP(S) or from a local file, with a
//! deadline and a size limit. Errors never contain the URL's query string
//! (booking sites put a secret there).

use std::time::Duration;

/// Why a fetch failed, for people (and the calendar's status).
pub type FetchError = String;

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

/// The text at `url` (http, https, file:// or an absolute path).
pub async fn fetch(
    http: &reqwest::Client,
    url: &str,
    timeout: Duration,
    max_bytes: usize,
) -> Result<String, FetchError> {
    let bytes = if url.starts_with("http://") || url.starts_with("https://") {
        tokio::time::timeout(timeout, fetch_http(http, url, max_bytes))
            .await
            .map_err(|_| format!("no answer in {} s", timeout.as_secs()))??
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

async fn fetch_http(
    http: &reqwest::Client,
    url: &str,
    max_bytes: usize,
) -> Result<Vec<u8>, FetchError> {
    let mut response = http
        .get(url)
        .header("accept", "text/calendar, */*;q=0.5")
        .send()
        .await
        .map_err(|e| e.without_url().to_string())?;
    if !response.status().is_success() {
        return Err(format!("HTTP {}", response.status()));
    }
    if response
        .content_length()
        .is_some_and(|n| n > max_bytes as u64)
    {
        return Err(format!("more than the {max_bytes} bytes allowed"));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| e.without_url().to_string())?
    {
        if body.len() + chunk.len() > max_bytes {
            return Err(format!("more than the {max_bytes} bytes allowed"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::shown;

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
}
