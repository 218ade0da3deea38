//! What each connector type does when it runs, and the guard on every
//! outbound call: the host must be in `actions_allowed_hosts`, the address it
//! resolves to must not be link-local or cloud metadata unless named, the
//! call goes to that checked address (no second lookup to rebind), TLS
//! certificates are verified, and redirects are followed only on the same
//! host and port (which resolve to the checked address).

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{Map, Value};
use warden_core::actions::{AllowedHosts, ConnectorTypeSpec, EMAIL, ExecuteConnectorResponse, MICROSOFT_DEFENDER_ENDPOINT, SERVER_LOG, WEBHOOK};

use super::validate::MAX_TEXT_BYTES;

/// The outbound-call guard, from the settings.
#[derive(Debug, Clone)]
pub struct OutboundGuard {
    pub allowed_hosts: AllowedHosts,
    pub timeout: Duration,
}

impl OutboundGuard {
    /// Why `url`'s host may not be called, or `None`.
    pub fn check_url(&self, url: &reqwest::Url) -> Option<String> {
        self.allowed_hosts.check_url(url.as_str(), url.host_str().unwrap_or_default())
    }

    /// The address to call for `url`: resolved once and checked.
    async fn resolve(&self, url: &reqwest::Url) -> Result<SocketAddr, String> {
        self.resolve_host(url.as_str(), url.host_str().unwrap_or_default(), url.port_or_known_default().unwrap_or(443)).await
    }

    /// The address to reach `host:port` at (`target` names it in refusals):
    /// the host allowed, resolved once, and every address checked.
    async fn resolve_host(&self, target: &str, host: &str, port: u16) -> Result<SocketAddr, String> {
        if let Some(refusal) = self.allowed_hosts.check_url(target, host) {
            return Err(refusal);
        }
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let addresses: Vec<SocketAddr> =
            tokio::net::lookup_host((bare, port)).await.map_err(|err| format!("cannot resolve {host}: {err}"))?.collect();
        let first = *addresses.first().ok_or_else(|| format!("cannot resolve {host}: no address"))?;
        // Every address must pass: the resolver may hand any of them out next time.
        if let Some(refusal) = addresses.iter().find_map(|address| self.allowed_hosts.check_address(target, address.ip())) {
            return Err(refusal);
        }
        Ok(first)
    }

    /// A client for `url` alone: its host allowed, resolved once and checked,
    /// the connection pinned to that address, no proxy, no redirects, the
    /// guard's timeout on each request.
    pub(super) async fn pinned_client(&self, url: &reqwest::Url) -> Result<reqwest::Client, String> {
        let address = self.resolve(url).await?;
        reqwest::Client::builder()
            .resolve(url.host_str().unwrap_or_default().trim_start_matches('[').trim_end_matches(']'), address)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(self.timeout)
            .build()
            .map_err(|err| format!("cannot build an HTTP client: {err}"))
    }
}

/// Runs the connector; the whole call (lookup, connection, exchange) takes at
/// most the guard's timeout. Texts from the other side lose NUL characters,
/// which PostgreSQL cannot store.
pub async fn run(
    spec: &ConnectorTypeSpec,
    id: &str,
    name: &str,
    config: &Map<String, Value>,
    secrets: &Map<String, Value>,
    params: &Map<String, Value>,
    guard: &OutboundGuard,
) -> ExecuteConnectorResponse {
    let call = async {
        match spec.id {
            WEBHOOK => webhook(id, config, secrets, params, guard).await,
            EMAIL => email(id, config, secrets, params, guard).await,
            SERVER_LOG => server_log(id, name, params),
            MICROSOFT_DEFENDER_ENDPOINT => super::mde::execute(id, config, secrets, params, guard).await,
            other => ExecuteConnectorResponse::failed(id, &format!("{other} has no executor in Warden yet"), None, false),
        }
    };
    let mut result = match tokio::time::timeout(guard.timeout, call).await {
        Ok(result) => result,
        Err(_) => ExecuteConnectorResponse::failed(id, &format!("no answer within {}", humantime::format_duration(guard.timeout)), None, true),
    };
    for text in [&mut result.message, &mut result.service_message].into_iter().flatten() {
        text.retain(|c| c != '\0');
    }
    result
}

fn text<'a>(fields: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    fields.get(key).and_then(Value::as_str)
}

fn server_log(id: &str, name: &str, params: &Map<String, Value>) -> ExecuteConnectorResponse {
    let message = text(params, "message").unwrap_or_default();
    match text(params, "level").unwrap_or("info") {
        "trace" => tracing::trace!(connector = %id, connector_name = %name, "{message}"),
        "debug" => tracing::debug!(connector = %id, connector_name = %name, "{message}"),
        "warn" => tracing::warn!(connector = %id, connector_name = %name, "{message}"),
        "error" | "fatal" => tracing::error!(connector = %id, connector_name = %name, "{message}"),
        _ => tracing::info!(connector = %id, connector_name = %name, "{message}"),
    }
    ExecuteConnectorResponse::ok(id, None)
}

async fn webhook(
    id: &str,
    config: &Map<String, Value>,
    secrets: &Map<String, Value>,
    params: &Map<String, Value>,
    guard: &OutboundGuard,
) -> ExecuteConnectorResponse {
    let Some(url) = text(config, "url").and_then(|url| reqwest::Url::parse(url).ok()) else {
        return ExecuteConnectorResponse::failed(id, "error calling webhook, invalid url in the connector's config", None, false);
    };
    let address = match guard.resolve(&url).await {
        Ok(address) => address,
        Err(refusal) => return ExecuteConnectorResponse::failed(id, &format!("error calling webhook, {refusal}"), None, false),
    };
    let host = url.host_str().unwrap_or_default().to_owned();
    let port = url.port_or_known_default();
    let scheme = url.scheme().to_owned();
    let redirects = reqwest::redirect::Policy::custom(move |attempt| {
        // Same scheme too: https → http on the same host would send the credentials in clear.
        let same_origin =
            attempt.url().scheme() == scheme && attempt.url().host_str() == Some(host.as_str()) && attempt.url().port_or_known_default() == port;
        if same_origin && attempt.previous().len() < 5 { attempt.follow() } else { attempt.stop() }
    });
    let client = reqwest::Client::builder()
        .resolve(url.host_str().unwrap_or_default().trim_start_matches('[').trim_end_matches(']'), address)
        .redirect(redirects)
        // A proxy would look the host up again, and the checked address would not decide.
        .no_proxy()
        .timeout(guard.timeout)
        .build();
    let client = match client {
        Ok(client) => client,
        Err(err) => return ExecuteConnectorResponse::failed(id, "error calling webhook, unexpected error", Some(err.to_string()), false),
    };
    let method = text(config, "method").unwrap_or("post");
    let mut request = match method {
        "put" => client.put(url.clone()),
        "patch" => client.patch(url.clone()),
        "get" => client.get(url.clone()),
        "delete" => client.delete(url.clone()),
        _ => client.post(url.clone()),
    };
    if let Some(Value::Object(headers)) = config.get("headers") {
        for (name, value) in headers {
            request = request.header(name, value.as_str().unwrap_or_default());
        }
    }
    if let (Some(user), Some(password)) = (text(secrets, "user"), text(secrets, "password")) {
        request = request.basic_auth(user, Some(password));
    }
    // GET and DELETE send no body, as Kibana's webhook.
    if matches!(method, "post" | "put" | "patch") {
        request = request.body(text(params, "body").unwrap_or_default().to_owned());
    }
    let response = match request.send().await {
        Ok(response) => response,
        Err(err) => {
            let retry = err.is_timeout() || err.is_connect();
            return ExecuteConnectorResponse::failed(id, "error calling webhook, retry later", Some(err.to_string()), retry);
        }
    };
    let status = response.status();
    if status.is_redirection() {
        let to = response.headers().get("location").and_then(|v| v.to_str().ok()).unwrap_or("elsewhere").to_owned();
        return ExecuteConnectorResponse::failed(
            id,
            "error calling webhook, it redirected to another host, which Warden does not follow",
            Some(format!("{status}: to {to}")),
            false,
        );
    }
    let body = read_bounded(response).await;
    if status.is_success() {
        let data = serde_json::from_str(&body).unwrap_or(Value::String(body));
        return ExecuteConnectorResponse::ok(id, Some(data));
    }
    let retry = status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS;
    let message = if retry { "error calling webhook, retry later" } else { "error calling webhook, unexpected error" };
    ExecuteConnectorResponse::failed(id, message, Some(format!("{status}: {}", truncate(&body, 1000))), retry)
}

/// Sends one message over SMTP: implicit TLS when `secure` is true (or, when
/// it is not set, on port 465), otherwise STARTTLS when the server offers it,
/// as Kibana's email connector. Certificates are verified against the host
/// name; the connection goes to the address the guard checked.
async fn email(
    id: &str,
    config: &Map<String, Value>,
    secrets: &Map<String, Value>,
    params: &Map<String, Value>,
    guard: &OutboundGuard,
) -> ExecuteConnectorResponse {
    use lettre::message::{Mailbox, MultiPart, header::ContentType};
    use lettre::transport::smtp::authentication::Credentials;
    use lettre::transport::smtp::client::{Tls, TlsParameters};
    use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

    let failed = |message: &str, detail: Option<String>, retry: bool| ExecuteConnectorResponse::failed(id, message, detail, retry);
    let host = text(config, "host").unwrap_or_default();
    let port = config.get("port").and_then(Value::as_u64).and_then(|p| u16::try_from(p).ok()).unwrap_or(25);
    let address = match guard.resolve_host(&format!("smtp://{host}:{port}"), host, port).await {
        Ok(address) => address,
        Err(refusal) => return failed(&format!("error sending email, {refusal}"), None, false),
    };
    let mailbox = |text: &str| text.parse::<Mailbox>();
    let mut message = Message::builder();
    match text(config, "from").map(mailbox) {
        Some(Ok(from)) => message = message.from(from),
        _ => return failed("error sending email, the connector's from address is invalid", None, false),
    }
    for (key, is) in [("to", 0), ("cc", 1), ("bcc", 2)] {
        for address in params.get(key).and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str) {
            let Ok(mailbox) = mailbox(address) else { return failed(&format!("error sending email, {address} is not an address"), None, false) };
            message = match is {
                0 => message.to(mailbox),
                1 => message.cc(mailbox),
                _ => message.bcc(mailbox),
            };
        }
    }
    if let Some(Ok(reply_to)) = text(params, "replyTo").map(mailbox) {
        message = message.reply_to(reply_to);
    }
    let plain = text(params, "message").unwrap_or_default().to_owned();
    let message = message.subject(text(params, "subject").unwrap_or_default());
    let built = match text(params, "messageHTML") {
        Some(html) => message.multipart(MultiPart::alternative_plain_html(plain, html.to_owned())),
        None => message.header(ContentType::TEXT_PLAIN).body(plain),
    };
    let message = match built {
        Ok(message) => message,
        Err(err) => return failed("error sending email, the message cannot be built", Some(err.to_string()), false),
    };
    let tls_parameters = match TlsParameters::new(host.to_owned()) {
        Ok(parameters) => parameters,
        Err(err) => return failed("error sending email, unexpected TLS error", Some(err.to_string()), false),
    };
    let implicit_tls = config.get("secure").and_then(Value::as_bool).unwrap_or(port == 465);
    let logs_in = text(secrets, "user").is_some();
    // STARTTLS is required before a password is sent: opportunistic TLS would
    // send it in clear to a server (or a man in the middle) that offers none.
    let tls = match (implicit_tls, logs_in) {
        (true, _) => Tls::Wrapper(tls_parameters),
        (false, true) => Tls::Required(tls_parameters),
        (false, false) => Tls::Opportunistic(tls_parameters),
    };
    let mut transport =
        AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(address.ip().to_string()).port(address.port()).tls(tls).timeout(Some(guard.timeout));
    if let (Some(user), Some(password)) = (text(secrets, "user"), text(secrets, "password")) {
        transport = transport.credentials(Credentials::new(user.to_owned(), password.to_owned()));
    }
    match transport.build().send(message).await {
        Ok(response) => ExecuteConnectorResponse::ok(id, Some(Value::String(response.message().collect::<Vec<_>>().join(" ")))),
        Err(err) => failed("error sending email", Some(err.to_string()), err.is_transient() || err.is_timeout()),
    }
}

/// The response body, at most `MAX_TEXT_BYTES`: a receiver cannot make Warden
/// hold an unbounded answer.
async fn read_bounded(mut response: reqwest::Response) -> String {
    let mut bytes = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        let room = MAX_TEXT_BYTES.saturating_sub(bytes.len());
        bytes.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if bytes.len() >= MAX_TEXT_BYTES {
            break;
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

fn truncate(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}
