//! The HTTP client the kolla area shares: deadlines, TLS roots (the platform's plus a CA
//! bundle), and error messages that name the URL and the cause.

use std::time::Duration;

/// How a client trusts servers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tls {
    /// A PEM bundle of extra roots (a private CA), added to the platform's.
    pub cacert: Option<String>,
    /// Accept any certificate. Only ever explicit, and recorded in the evidence.
    pub insecure: bool,
}

impl Tls {
    /// One line for the evidence.
    pub fn describe(&self) -> String {
        match (&self.cacert, self.insecure) {
            (_, true) => "certificate verification disabled (insecure)".to_owned(),
            (Some(ca), false) => format!("platform roots plus CA bundle {ca}"),
            (None, false) => "platform roots".to_owned(),
        }
    }
}

/// Per-request deadline; no call waits longer.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A client with the deadlines and the trust of `tls`. Connections are not pooled: uWSGI's
/// http-socket (Keystone under Kolla and in the lab) closes every connection after one
/// response, and a pooled one would fail on reuse.
pub fn client(tls: &Tls) -> Result<reqwest::Client, String> {
    // The ring provider, once per process (a second install is refused harmlessly).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut b = reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .connect_timeout(Duration::from_secs(5))
        .pool_max_idle_per_host(0);
    if let Some(path) = &tls.cacert {
        let pem = std::fs::read(path).map_err(|e| format!("cannot read CA bundle {path}: {e}"))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| format!("CA bundle {path} is not PEM certificates: {e}"))?;
        if certs.is_empty() {
            return Err(format!(
                "CA bundle {path} holds no certificate; expected PEM `BEGIN CERTIFICATE` blocks"
            ));
        }
        b = b.tls_certs_merge(certs);
    }
    if tls.insecure {
        b = b.tls_danger_accept_invalid_certs(true);
    }
    b.build().map_err(|e| {
        format!(
            "cannot build an HTTP client: {}",
            nfvi_harness::error_with_causes(&e)
        )
    })
}

/// Whether a message from [`describe`] means the server was not reached at all (an
/// undecided outcome rather than the server's failure).
pub fn unreachable(message: &str) -> bool {
    message.starts_with("cannot reach") || message.contains("did not answer")
}

/// What went wrong sending to `url`: a timeout, a certificate the client does not trust (with
/// `hint`: where to give the CA bundle), or the connection error with its causes.
pub fn describe(e: &reqwest::Error, url: &str, hint: &str) -> String {
    if e.is_timeout() {
        return format!(
            "{url} did not answer within {} s",
            REQUEST_TIMEOUT.as_secs()
        );
    }
    // reqwest's own text repeats the URL; its causes say what happened.
    let why =
        std::error::Error::source(e).map_or_else(|| e.to_string(), nfvi_harness::error_with_causes);
    let lower = why.to_ascii_lowercase();
    if lower.contains("certificate") || lower.contains("unknownissuer") {
        format!(
            "cannot reach {url}: TLS: the server's certificate is not trusted ({why}); give its CA bundle in {hint}"
        )
    } else {
        format!("cannot reach {url}: {why}")
    }
}
