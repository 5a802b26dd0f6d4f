//! One POST to the server, retried: connection errors, timeouts, a body cut short, 408, 429 and 5xx are
//! retried with exponential backoff and full jitter (429 and 503 wait at least their `Retry-After`),
//! so a run rides out a busy server or one that restarts; other 4xx answers fail at once, since
//! asking again would get the same answer. The API key goes only into the `Authorization` header and is
//! scrubbed from every message built here (a server may echo it back in an error body).

use serde_json::Value;
use std::time::Duration;

/// How to retry.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Attempts after the first.
    pub retries: u32,
    /// The first backoff; each further one doubles, up to `max_delay`.
    pub base_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { retries: 10, base_delay: Duration::from_millis(500), max_delay: Duration::from_secs(30) }
    }
}

impl RetryPolicy {
    /// The wait before retry number `attempt` (0-based): uniformly drawn from the upper half of the
    /// doubled delay, so replicas of a sharded run that failed together do not come back together,
    /// and never shorter than what the server asked for.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let doubled = self.base_delay.saturating_mul(1u32 << attempt.min(20)).min(self.max_delay);
        let jittered = doubled.mul_f64(0.5 + 0.5 * rand::random::<f64>());
        retry_after.map_or(jittered, |r| r.min(MAX_RETRY_AFTER).max(jittered))
    }
}

/// The longest `Retry-After` honoured: a server asking for more is treated as asking for this.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(600);

/// What one attempt came to.
pub enum Attempt {
    Answer(Value),
    /// Worth asking again (after the server's `Retry-After`, when it gave one).
    Retry {
        why: String,
        after: Option<Duration>,
    },
    /// Asking again would not help.
    Fail(String),
}

/// Sends `body` to `url` once.
pub fn attempt(agent: &ureq::Agent, url: &str, key: Option<&str>, body: &Value) -> Attempt {
    let mut req = agent.post(url);
    if let Some(k) = key {
        req = req.set("Authorization", &format!("Bearer {k}"));
    }
    match req.send_json(body) {
        Ok(resp) => match resp.into_json::<Value>() {
            Ok(v) => Attempt::Answer(v),
            // A connection closed while the body was read, or a proxy's HTML page: both pass.
            Err(e) => Attempt::Retry { why: format!("reading the answer: {e}"), after: None },
        },
        Err(ureq::Error::Status(code, resp)) => {
            let after = resp.header("Retry-After").and_then(parse_retry_after);
            let text = resp.into_string().unwrap_or_default();
            let why = format!("HTTP {code}: {}", snippet(&text));
            if code == 408 || code == 429 || code >= 500 {
                Attempt::Retry { why, after }
            } else {
                Attempt::Fail(why)
            }
        }
        Err(ureq::Error::Transport(t)) => match t.kind() {
            ureq::ErrorKind::InvalidUrl | ureq::ErrorKind::UnknownScheme | ureq::ErrorKind::InvalidProxyUrl => {
                Attempt::Fail(t.to_string())
            }
            _ => Attempt::Retry { why: t.to_string(), after: None },
        },
    }
}

/// `Retry-After` in seconds (the HTTP-date form is rare from model servers and falls back to backoff).
pub fn parse_retry_after(v: &str) -> Option<Duration> {
    let secs: f64 = v.trim().parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs.min(MAX_RETRY_AFTER.as_secs_f64())))
}

/// The start of an error body, on one line.
fn snippet(text: &str) -> String {
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match one_line.char_indices().nth(300) {
        Some((i, _)) => format!("{}...", &one_line[..i]),
        None if one_line.is_empty() => "(empty body)".to_string(),
        None => one_line,
    }
}

/// `text` with every occurrence of the key replaced.
pub fn scrub(text: &str, key: Option<&str>) -> String {
    match key {
        Some(k) if !k.is_empty() => text.replace(k, "[api key]"),
        _ => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_cap_and_honours_retry_after() {
        let p = RetryPolicy { retries: 5, base_delay: Duration::from_millis(100), max_delay: Duration::from_secs(1) };
        for attempt in 0..8 {
            let full = Duration::from_millis(100 * (1 << attempt)).min(Duration::from_secs(1));
            let d = p.delay(attempt, None);
            assert!(d >= full / 2 && d <= full, "attempt {attempt}: {d:?} not in [{:?}, {full:?}]", full / 2);
        }
        assert_eq!(p.delay(0, Some(Duration::from_secs(3))), Duration::from_secs(3));
        assert_eq!(p.delay(0, Some(Duration::from_secs(99_999))), MAX_RETRY_AFTER);
    }

    #[test]
    fn retry_after_is_read_in_seconds() {
        assert_eq!(parse_retry_after(" 2 "), Some(Duration::from_secs(2)));
        assert_eq!(parse_retry_after("0.5"), Some(Duration::from_millis(500)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(parse_retry_after("-1"), None);
    }

    #[test]
    fn the_key_is_scrubbed_and_long_bodies_cut() {
        assert_eq!(scrub("bad key sk-123 given", Some("sk-123")), "bad key [api key] given");
        assert_eq!(scrub("x", Some("")), "x");
        let long = "word ".repeat(200);
        assert!(snippet(&long).ends_with("...") && snippet(&long).len() < 320);
        assert_eq!(snippet(" \n "), "(empty body)");
    }

    #[test]
    fn a_refused_connection_is_retried_and_a_bad_url_is_not() {
        // A port nothing listens on: bind one, then free it.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(5)).build();
        let url = format!("http://127.0.0.1:{port}/v1/completions");
        assert!(matches!(attempt(&agent, &url, None, &Value::Null), Attempt::Retry { .. }));
        assert!(matches!(attempt(&agent, "nope://x", None, &Value::Null), Attempt::Fail(_)));
    }
}
