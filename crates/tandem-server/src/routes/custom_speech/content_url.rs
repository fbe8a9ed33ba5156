//! Fetching a dataset from its `contentUrl`, only from hosts the operator allowed.
//!
//! The check is on names, never on what they resolve to: a host that is not on the list is
//! never contacted. The URL is parsed once (WHATWG rules, as browsers do: hosts lowercased,
//! IPv4 forms such as `2130706433` normalised to `127.0.0.1`), and the allow-list entries are
//! normalised the same way before comparing. URLs with credentials are refused outright
//! (`http://allowed@evil/` names the host `evil`). Redirects are not followed; the download is
//! bounded in size and time, and no proxy from the environment is used.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use reqwest::Url;
use tandem_core::CustomSpeechConfig;

use crate::ApiError;

fn refused(message: impl Into<String>) -> ApiError {
    ApiError::bad_request("InvalidParameterValue", message)
}

fn failed(message: impl Into<String>) -> ApiError {
    ApiError::bad_request("DataImportFailed", message)
}

/// One allow-list entry: a normalised host and, if given, a port.
fn entry(raw: &str) -> Option<(String, Option<u16>)> {
    let raw = raw.trim();
    let (host, port) = match raw.rsplit_once(':') {
        // `host:port` or `[v6]:port`; a bare IPv6 address has colons but no brackets.
        Some((h, p))
            if !p.is_empty()
                && p.bytes().all(|b| b.is_ascii_digit())
                && (!h.contains(':') || h.ends_with(']')) =>
        {
            (h, Some(p.parse().ok()?))
        }
        _ => (raw, None),
    };
    if host.is_empty() || host.contains(['/', '@', '?', '#', '\\']) {
        return None;
    }
    let parsed = Url::parse(&format!("http://{host}/")).ok()?;
    Some((parsed.host_str()?.to_owned(), port))
}

/// Parses `raw` and checks it against `allow`: `http`/`https`, no credentials, and a host (and
/// port: the scheme's default unless the entry names one) on the list.
pub(crate) fn check(raw: &str, allow: &[String]) -> Result<Url, ApiError> {
    if allow.is_empty() {
        return Err(refused(
            "this region does not fetch datasets from URLs (no content_url_allow_hosts in its \
             [custom_speech] config): upload the data with POST /datasets/upload instead",
        ));
    }
    let url = Url::parse(raw.trim()).map_err(|e| refused(format!("contentUrl: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(refused("contentUrl must be an http or https URL"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(refused("contentUrl must not carry credentials (user@host)"));
    }
    let host = url
        .host_str()
        .ok_or_else(|| refused("contentUrl has no host"))?;
    let port = url.port_or_known_default();
    let default_port = if url.scheme() == "https" { 443 } else { 80 };
    let allowed = allow
        .iter()
        .filter_map(|e| entry(e))
        .any(|(h, p)| h == host && port == Some(p.unwrap_or(default_port)));
    if !allowed {
        return Err(refused(format!(
            "contentUrl host {host}{} is not on this region's allow-list",
            url.port().map(|p| format!(":{p}")).unwrap_or_default()
        )));
    }
    Ok(url)
}

/// Downloads an allowed URL: no redirects, no proxy, at most `max_upload_bytes`, within
/// `content_url_timeout_ms`.
pub(crate) async fn fetch(url: Url, cfg: &CustomSpeechConfig) -> Result<Bytes, ApiError> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(Duration::from_millis(cfg.content_url_timeout_ms))
        .build()
        .map_err(|e| ApiError::Internal(format!("HTTP client: {e}")))?;
    let host = url.host_str().unwrap_or_default().to_owned();
    let mut resp = client.get(url).send().await.map_err(|e| {
        failed(format!(
            "could not fetch the contentUrl from {host}: {}",
            kind(&e)
        ))
    })?;
    let status = resp.status();
    if status.is_redirection() {
        return Err(failed(format!(
            "the contentUrl answered {status}: redirects are not followed; give the final URL"
        )));
    }
    if !status.is_success() {
        return Err(failed(format!("the contentUrl answered {status}")));
    }
    let limit = cfg.max_upload_bytes;
    let too_large = || {
        failed(format!(
            "the contentUrl's data is larger than {limit} bytes"
        ))
    };
    if resp.content_length().is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let mut data = BytesMut::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| failed(format!("reading the contentUrl: {}", kind(&e))))?
    {
        if data.len() + chunk.len() > limit {
            return Err(too_large());
        }
        data.extend_from_slice(&chunk);
    }
    Ok(data.freeze())
}

/// What went wrong, by the error's type (never its text).
fn kind(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_builder() {
        "unsupported URL (this build fetches plain http only)"
    } else {
        "the transfer failed"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allow(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn only_listed_hosts_and_ports_pass() {
        let list = allow(&["data.example.com", "files.example.org:8080", "10.1.2.3"]);
        for ok in [
            "http://data.example.com/set.zip",
            "https://data.example.com/a/b.zip?sig=x",
            "http://DATA.Example.COM/upper.zip",
            "http://data.example.com:80/explicit-default-port.zip",
            "https://data.example.com:443/x",
            "http://files.example.org:8080/x.zip",
            "http://10.1.2.3/x",
        ] {
            assert!(check(ok, &list).is_ok(), "{ok} should pass");
        }
        for bad in [
            // userinfo: the host is the part after '@'.
            "http://data.example.com@evil.com/",
            "http://user:pw@data.example.com/",
            // suffix and prefix tricks
            "http://data.example.com.evil.com/",
            "http://evildata.example.com/",
            "http://data.example.com./trailing-dot",
            // ports
            "http://data.example.com:8080/",
            "http://files.example.org/",
            "http://files.example.org:8081/",
            // IP literals not on the list, in every spelling
            "http://127.0.0.1/",
            "http://2130706433/",
            "http://0x7f.0.0.1/",
            "http://[::1]/",
            "http://169.254.169.254/latest/meta-data",
            "http://10.1.2.3:8080/",
            // schemes
            "ftp://data.example.com/x",
            "file:///etc/passwd",
            "gopher://data.example.com/",
            "not a url",
            "",
        ] {
            let e = check(bad, &list).expect_err(bad);
            assert_eq!(e.status().as_u16(), 400, "{bad}");
        }
    }

    #[test]
    fn an_empty_list_fetches_nothing_and_says_so() {
        let e = check("http://data.example.com/x", &[]).unwrap_err();
        assert!(e.to_string().contains("content_url_allow_hosts"), "{e}");
    }

    #[test]
    fn entries_are_normalised_like_urls() {
        assert_eq!(
            entry("Data.Example.com"),
            Some(("data.example.com".into(), None))
        );
        assert_eq!(
            entry("127.0.0.1:9000"),
            Some(("127.0.0.1".into(), Some(9000)))
        );
        assert_eq!(entry("[::1]:9000"), Some(("[::1]".into(), Some(9000))));
        assert_eq!(entry("evil@data.example.com"), None);
        assert_eq!(entry("data.example.com/path"), None);
        assert_eq!(entry(""), None);
        // A listed IPv6 address matches its bracketed URL form.
        assert!(check("http://[::1]:9000/x", &allow(&["[::1]:9000"])).is_ok());
        // A listed decimal IP is the same address as its dotted form.
        assert!(check("http://127.0.0.1/x", &allow(&["2130706433"])).is_ok());
    }
}
