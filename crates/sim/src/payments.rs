//! A fake of the payment provider behind the wallet's top-ups: the subset of Stripe's API the
//! control plane calls, in Stripe's shapes, with Stripe's rules where the control plane could
//! get them wrong.
//!
//! - **Requests** are `application/x-www-form-urlencoded`, with `Authorization: Bearer
//!   sk_test_…` ([`SECRET_KEY`]); nested fields as `metadata[workspace]=…`. No key is 401, a
//!   wrong key 401, a parameter the endpoint does not take 400 `parameter_unknown`, a missing
//!   one 400 `parameter_missing`. Errors are Stripe's envelope: `{"error": {"type", "code",
//!   "message", "param"}}`.
//! - **`Idempotency-Key`**: the same key with the same parameters replays the first answer
//!   (with `Idempotent-Replayed: true`); with other parameters it is 400
//!   `idempotency_error`.
//! - **Customers** (`POST /v1/customers`), **payment methods** attached from Stripe's test
//!   tokens (`POST /v1/payment_methods/{pm_card_visa|pm_card_mastercard|
//!   pm_card_chargeDeclined|pm_card_chargeDeclinedInsufficientFunds}/attach`, each attach
//!   making a new `pm_…`), **PaymentIntents** (`POST /v1/payment_intents` with `confirm=true`,
//!   `off_session=true`; `GET /v1/payment_intents/{id}`): amounts in integer cents, at least
//!   50 for USD; a declined card is **402** `card_error` with the intent inside, status
//!   `requires_payment_method`.
//! - **Webhook endpoints** (`POST /v1/webhook_endpoints`, the `whsec_…` secret answered once)
//!   and **events** (`payment_intent.succeeded`, `payment_intent.payment_failed`) delivered
//!   to them with `Stripe-Signature: t=…,v1=…` (HMAC-SHA256 of `"{t}.{body}"` under the
//!   endpoint's secret). A delivery answered with anything but 2xx is retried, re-signed with
//!   a fresh timestamp, as Stripe does.
//!
//! What it leaves out is listed in DECISIONS (decision 85): no 3-D Secure, no refunds through
//! the provider, retries over seconds instead of Stripe's three days.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::{
    Json, Router,
    body::Bytes,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use hmac::{Hmac, Mac};
use rand::Rng;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The secret key the fake accepts (test mode, as a real one starts).
pub const SECRET_KEY: &str = "sk_test_51GenesisFakeProviderKey000000000000";

/// The API version events are stamped with.
pub const API_VERSION: &str = "2024-06-20";

/// The smallest USD charge Stripe takes, in cents.
pub const MIN_AMOUNT_CENTS: i64 = 50;

/// Stripe's test cards: the token, brand, last four digits, and the decline code if it
/// declines.
const TEST_CARDS: &[(&str, &str, &str, Option<&str>)] = &[
    ("pm_card_visa", "visa", "4242", None),
    ("pm_card_mastercard", "mastercard", "4444", None),
    (
        "pm_card_chargeDeclined",
        "visa",
        "0002",
        Some("generic_decline"),
    ),
    (
        "pm_card_chargeDeclinedInsufficientFunds",
        "visa",
        "9995",
        Some("insufficient_funds"),
    ),
];

struct PaymentMethod {
    object: Value,
    customer: Option<String>,
    decline: Option<&'static str>,
}

struct Endpoint {
    url: String,
    secret: String,
    events: Vec<String>,
}

#[derive(Default)]
struct Inner {
    customers: HashMap<String, Value>,
    methods: HashMap<String, PaymentMethod>,
    intents: HashMap<String, Value>,
    /// Idempotency key → (digest of method, path and parameters; status; body).
    replies: HashMap<String, ([u8; 32], StatusCode, Value)>,
    endpoints: Vec<Endpoint>,
}

/// The fake. Cheap to clone.
#[derive(Clone)]
pub struct FakeStripe {
    inner: Arc<Mutex<Inner>>,
    http: reqwest::Client,
    retry_after: Duration,
}

impl Default for FakeStripe {
    fn default() -> Self {
        Self::new()
    }
}

fn new_id(prefix: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    let tail: String = (0..24)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect();
    format!("{prefix}_1{tail}")
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// `t=…,v1=…` for `body` under `secret` at `t`: what Stripe puts in `Stripe-Signature`.
pub fn sign(secret: &str, t: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("t={t},v1={hex}")
}

fn error(
    status: StatusCode,
    kind: &str,
    code: Option<&str>,
    message: &str,
    param: Option<&str>,
) -> (StatusCode, Value) {
    let mut e = json!({ "type": kind, "message": message });
    if let Some(c) = code {
        e["code"] = json!(c);
        e["doc_url"] = json!(format!(
            "https://stripe.com/docs/error-codes/{}",
            c.replace('_', "-")
        ));
    }
    if let Some(p) = param {
        e["param"] = json!(p);
    }
    (status, json!({ "error": e }))
}

fn invalid(code: &str, message: &str, param: Option<&str>) -> (StatusCode, Value) {
    error(
        StatusCode::BAD_REQUEST,
        "invalid_request_error",
        Some(code),
        message,
        param,
    )
}

/// A form body as Stripe reads it: flat pairs, `metadata[k]` nested.
struct Form {
    pairs: Vec<(String, String)>,
}

impl Form {
    fn parse(body: &[u8]) -> Self {
        Self {
            pairs: form_urlencoded::parse(body).into_owned().collect(),
        }
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn all(&self, key: &str) -> Vec<String> {
        self.pairs
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    }

    fn metadata(&self) -> Value {
        let mut m = serde_json::Map::new();
        for (k, v) in &self.pairs {
            if let Some(name) = k
                .strip_prefix("metadata[")
                .and_then(|r| r.strip_suffix(']'))
            {
                m.insert(name.to_owned(), json!(v));
            }
        }
        Value::Object(m)
    }

    /// The first parameter not in `known` (`metadata[…]` is always known).
    fn unknown(&self, known: &[&str]) -> Option<(StatusCode, Value)> {
        let (k, _) = self
            .pairs
            .iter()
            .find(|(k, _)| !known.contains(&k.as_str()) && !k.starts_with("metadata["))?;
        Some(invalid(
            "parameter_unknown",
            &format!("Received unknown parameter: {k}"),
            Some(k),
        ))
    }

    fn required(&self, key: &str) -> Result<&str, (StatusCode, Value)> {
        self.get(key).filter(|v| !v.is_empty()).ok_or_else(|| {
            invalid(
                "parameter_missing",
                &format!("Missing required param: {key}."),
                Some(key),
            )
        })
    }

    fn digest(&self, method: &str, path: &str) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(method.as_bytes());
        h.update(path.as_bytes());
        for (k, v) in &self.pairs {
            h.update(k.as_bytes());
            h.update([0]);
            h.update(v.as_bytes());
            h.update([0]);
        }
        h.finalize().into()
    }
}

impl FakeStripe {
    /// An empty account.
    pub fn new() -> Self {
        Self {
            inner: Arc::new(Mutex::new(Inner::default())),
            http: reqwest::Client::new(),
            retry_after: Duration::from_millis(500),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a webhook endpoint, as `POST /v1/webhook_endpoints` does; its secret.
    pub fn add_endpoint(&self, url: &str, events: &[&str]) -> String {
        let secret = format!("whsec_{}", new_id("x").trim_start_matches("x_1"));
        self.lock().endpoints.push(Endpoint {
            url: url.to_owned(),
            secret: secret.clone(),
            events: events.iter().map(|e| (*e).to_owned()).collect(),
        });
        secret
    }

    /// Successful charges so far.
    pub fn succeeded_charges(&self) -> usize {
        self.lock()
            .intents
            .values()
            .filter(|pi| pi["status"] == "succeeded")
            .count()
    }

    /// The routes under `/stripe/v1/…` (Stripe's host is its own; here it shares a
    /// listener).
    pub fn router(&self) -> Router {
        Router::new()
            .route("/stripe/v1/customers", post(customers))
            .route("/stripe/v1/payment_methods/{pm}/attach", post(attach))
            .route("/stripe/v1/payment_intents", post(create_intent))
            .route("/stripe/v1/payment_intents/{id}", get(get_intent))
            .route("/stripe/v1/webhook_endpoints", post(webhook_endpoints))
            .with_state(self.clone())
    }

    /// Checks the key; replays an idempotent request's first answer; otherwise runs `f` and
    /// remembers its answer under the key.
    fn call(
        &self,
        headers: &HeaderMap,
        method: &str,
        path: &str,
        form: &Form,
        f: impl FnOnce(&mut Inner) -> (StatusCode, Value),
    ) -> (StatusCode, Value, bool) {
        let key = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(api_key);
        match key.as_deref() {
            None => {
                let (s, b) = error(
                    StatusCode::UNAUTHORIZED,
                    "invalid_request_error",
                    None,
                    "You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').",
                    None,
                );
                return (s, b, false);
            }
            Some(k) if k != SECRET_KEY => {
                let shown = k.get(k.len().saturating_sub(4)..).unwrap_or("");
                let (s, b) = error(
                    StatusCode::UNAUTHORIZED,
                    "invalid_request_error",
                    Some("api_key_invalid"),
                    &format!("Invalid API Key provided: sk_test_****{shown}"),
                    None,
                );
                return (s, b, false);
            }
            Some(_) => {}
        }
        let idempotency = headers
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let digest = form.digest(method, path);
        let mut inner = self.lock();
        if let Some(k) = &idempotency
            && let Some((seen, status, body)) = inner.replies.get(k)
        {
            if *seen != digest {
                let (s, b) = error(
                    StatusCode::BAD_REQUEST,
                    "idempotency_error",
                    None,
                    &format!(
                        "Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '{k}' if you meant to execute a different request."
                    ),
                    None,
                );
                return (s, b, false);
            }
            return (*status, body.clone(), true);
        }
        let (status, body) = f(&mut inner);
        if let Some(k) = idempotency
            && status != StatusCode::UNAUTHORIZED
        {
            inner.replies.insert(k, (digest, status, body.clone()));
        }
        (status, body, false)
    }

    /// Makes an event and delivers it to every endpoint that wants it, in the background.
    fn emit(&self, inner: &mut Inner, kind: &str, object: &Value, idempotency: Option<String>) {
        let event = json!({
            "id": new_id("evt"),
            "object": "event",
            "api_version": API_VERSION,
            "created": now(),
            "data": { "object": object },
            "livemode": false,
            "pending_webhooks": inner.endpoints.iter().filter(|e| wants(e, kind)).count(),
            "request": { "id": new_id("req"), "idempotency_key": idempotency },
            "type": kind,
        });
        let body = event.to_string();
        for e in inner.endpoints.iter().filter(|e| wants(e, kind)) {
            let this = self.clone();
            let (url, secret, body) = (e.url.clone(), e.secret.clone(), body.clone());
            tokio::spawn(async move { this.deliver(&url, &secret, &body).await });
        }
    }

    /// Posts `body` to `url`, re-signed on each try, until it is answered with 2xx or the
    /// tries run out.
    async fn deliver(&self, url: &str, secret: &str, body: &str) {
        let mut wait = self.retry_after;
        for _ in 0..5 {
            let answer = self
                .http
                .post(url)
                .header("content-type", "application/json; charset=utf-8")
                .header("stripe-signature", sign(secret, now(), body.as_bytes()))
                .header(
                    "user-agent",
                    "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
                )
                .body(body.to_owned())
                .timeout(Duration::from_secs(10))
                .send()
                .await;
            if answer.is_ok_and(|a| a.status().is_success()) {
                return;
            }
            tokio::time::sleep(wait).await;
            wait *= 3;
        }
        tracing::warn!(url, "webhook delivery gave up (simulated provider)");
    }
}

/// The key of `Authorization: Bearer <key>`, or of `Basic base64(<key>:)` as curl's `-u key:`
/// sends it (Stripe takes both).
fn api_key(header: &str) -> Option<String> {
    use base64::Engine as _;
    if let Some(k) = header.strip_prefix("Bearer ") {
        return Some(k.to_owned());
    }
    let raw = header.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD.decode(raw).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    Some(text.split(':').next().unwrap_or_default().to_owned())
}

fn wants(e: &Endpoint, kind: &str) -> bool {
    e.events.iter().any(|w| w == "*" || w == kind)
}

fn reply(status: StatusCode, body: Value, replayed: bool) -> Response {
    let mut r = (status, Json(body)).into_response();
    if replayed {
        r.headers_mut().insert(
            "idempotent-replayed",
            axum::http::HeaderValue::from_static("true"),
        );
    }
    r
}

async fn customers(State(s): State<FakeStripe>, headers: HeaderMap, body: Bytes) -> Response {
    let form = Form::parse(&body);
    let (status, body, replayed) = s.call(&headers, "POST", "/v1/customers", &form, |inner| {
        if let Some(e) = form.unknown(&["email", "name", "description"]) {
            return e;
        }
        let c = json!({
            "id": new_id("cus"),
            "object": "customer",
            "created": now(),
            "email": form.get("email"),
            "name": form.get("name"),
            "description": form.get("description"),
            "metadata": form.metadata(),
            "invoice_settings": { "default_payment_method": null },
            "livemode": false,
        });
        inner
            .customers
            .insert(c["id"].as_str().unwrap_or_default().to_owned(), c.clone());
        (StatusCode::OK, c)
    });
    reply(status, body, replayed)
}

async fn attach(
    State(s): State<FakeStripe>,
    Path(pm): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = Form::parse(&body);
    let path = format!("/v1/payment_methods/{pm}/attach");
    let (status, body, replayed) = s.call(&headers, "POST", &path, &form, |inner| {
        if let Some(e) = form.unknown(&["customer"]) {
            return e;
        }
        let customer = match form.required("customer") {
            Ok(c) => c.to_owned(),
            Err(e) => return e,
        };
        if !inner.customers.contains_key(&customer) {
            return invalid("resource_missing", &format!("No such customer: '{customer}'"), Some("customer"));
        }
        let Some(&(_, brand, last4, decline)) = TEST_CARDS.iter().find(|c| c.0 == pm) else {
            return invalid("resource_missing", &format!("No such PaymentMethod: '{pm}'"), None);
        };
        let object = json!({
            "id": new_id("pm"),
            "object": "payment_method",
            "type": "card",
            "card": { "brand": brand, "last4": last4, "exp_month": 12, "exp_year": 2034, "funding": "credit" },
            "customer": customer,
            "created": now(),
            "metadata": {},
            "livemode": false,
        });
        let id = object["id"].as_str().unwrap_or_default().to_owned();
        inner.methods.insert(id, PaymentMethod {
            object: object.clone(),
            customer: Some(customer),
            decline,
        });
        (StatusCode::OK, object)
    });
    reply(status, body, replayed)
}

async fn create_intent(State(s): State<FakeStripe>, headers: HeaderMap, body: Bytes) -> Response {
    let form = Form::parse(&body);
    let idempotency = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let this = s.clone();
    let (status, body, replayed) = s.call(&headers, "POST", "/v1/payment_intents", &form, |inner| {
        if let Some(e) = form.unknown(&[
            "amount",
            "currency",
            "customer",
            "payment_method",
            "confirm",
            "off_session",
            "description",
        ]) {
            return e;
        }
        let amount = match form.required("amount") {
            Ok(a) => a,
            Err(e) => return e,
        };
        let Ok(amount) = amount.parse::<i64>() else {
            return invalid("parameter_invalid_integer", &format!("Invalid integer: {amount}"), Some("amount"));
        };
        if amount < 1 {
            return invalid("parameter_invalid_integer", "This value must be greater than or equal to 1.", Some("amount"));
        }
        let currency = match form.required("currency") {
            Ok(c) => c.to_owned(),
            Err(e) => return e,
        };
        if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_lowercase()) {
            return invalid("parameter_invalid_string", &format!("Invalid currency: {currency}."), Some("currency"));
        }
        if currency == "usd" && amount < MIN_AMOUNT_CENTS {
            return invalid("amount_too_small", "Amount must be at least $0.50 usd", Some("amount"));
        }
        if amount > 99_999_999 {
            return invalid("amount_too_large", "Amount must be no more than $999,999.99", Some("amount"));
        }
        for flag in ["confirm", "off_session"] {
            if let Some(v) = form.get(flag)
                && v != "true"
                && v != "false"
            {
                return invalid("parameter_invalid_boolean", &format!("Invalid boolean: {v}"), Some(flag));
            }
        }
        let confirm = form.get("confirm") == Some("true");
        let customer = form.get("customer").map(str::to_owned);
        if let Some(c) = &customer
            && !inner.customers.contains_key(c)
        {
            return invalid("resource_missing", &format!("No such customer: '{c}'"), Some("customer"));
        }
        let pm = form.get("payment_method").map(str::to_owned);
        let method = match &pm {
            Some(id) => match inner.methods.get(id) {
                Some(m) => Some(m),
                None => return invalid("resource_missing", &format!("No such PaymentMethod: '{id}'"), Some("payment_method")),
            },
            None => None,
        };
        if let Some(m) = method
            && m.customer != customer
        {
            return invalid(
                "payment_method_unexpected_state",
                "The provided PaymentMethod was previously attached to a different Customer or has been detached. It cannot be used with this PaymentIntent.",
                Some("payment_method"),
            );
        }
        if form.get("off_session") == Some("true") && !confirm {
            return invalid("parameter_invalid_empty", "You may only specify `off_session` when `confirm=true`.", Some("off_session"));
        }
        if confirm && method.is_none() {
            return invalid("parameter_missing", "You must provide a `payment_method` to confirm this PaymentIntent.", Some("payment_method"));
        }
        let mut pi = json!({
            "id": new_id("pi"),
            "object": "payment_intent",
            "amount": amount,
            "amount_received": 0,
            "currency": currency,
            "customer": customer,
            "payment_method": pm,
            "description": form.get("description"),
            "metadata": form.metadata(),
            "capture_method": "automatic",
            "confirmation_method": "automatic",
            "created": now(),
            "latest_charge": null,
            "last_payment_error": null,
            "livemode": false,
            "status": if method.is_some() { "requires_confirmation" } else { "requires_payment_method" },
        });
        let decline = method.and_then(|m| m.decline);
        let pm_object = method.map(|m| m.object.clone());
        let id = pi["id"].as_str().unwrap_or_default().to_owned();
        if !confirm {
            inner.intents.insert(id, pi.clone());
            return (StatusCode::OK, pi);
        }
        match decline {
            None => {
                pi["status"] = json!("succeeded");
                pi["amount_received"] = json!(amount);
                pi["latest_charge"] = json!(new_id("ch"));
                inner.intents.insert(id, pi.clone());
                this.emit(inner, "payment_intent.succeeded", &pi, idempotency.clone());
                (StatusCode::OK, pi)
            }
            Some(code) => {
                let message = if code == "insufficient_funds" {
                    "Your card has insufficient funds."
                } else {
                    "Your card was declined."
                };
                let failure = json!({
                    "type": "card_error", "code": "card_declined", "decline_code": code,
                    "message": message, "payment_method": pm_object,
                });
                pi["status"] = json!("requires_payment_method");
                pi["last_payment_error"] = failure;
                inner.intents.insert(id, pi.clone());
                this.emit(inner, "payment_intent.payment_failed", &pi, idempotency.clone());
                (
                    StatusCode::PAYMENT_REQUIRED,
                    json!({ "error": {
                        "type": "card_error", "code": "card_declined", "decline_code": code,
                        "message": message,
                        "doc_url": "https://stripe.com/docs/error-codes/card-declined",
                        "payment_intent": pi,
                        "payment_method": pm_object,
                    }}),
                )
            }
        }
    });
    reply(status, body, replayed)
}

async fn get_intent(
    State(s): State<FakeStripe>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let path = format!("/v1/payment_intents/{id}");
    let (status, body, _) =
        s.call(
            &headers,
            "GET",
            &path,
            &Form { pairs: vec![] },
            |inner| match inner.intents.get(&id) {
                Some(pi) => (StatusCode::OK, pi.clone()),
                None => error(
                    StatusCode::NOT_FOUND,
                    "invalid_request_error",
                    Some("resource_missing"),
                    &format!("No such payment_intent: '{id}'"),
                    Some("intent"),
                ),
            },
        );
    reply(status, body, false)
}

const EVENT_TYPES: &[&str] = &["payment_intent.succeeded", "payment_intent.payment_failed"];

async fn webhook_endpoints(
    State(s): State<FakeStripe>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = Form::parse(&body);
    let (status, body, replayed) =
        s.call(&headers, "POST", "/v1/webhook_endpoints", &form, |inner| {
            if let Some(e) = form.unknown(&["url", "enabled_events[]", "description"]) {
                return e;
            }
            let url = match form.required("url") {
                Ok(u) => u.to_owned(),
                Err(e) => return e,
            };
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return invalid(
                    "url_invalid",
                    "Invalid URL: URL must be publicly accessible.",
                    Some("url"),
                );
            }
            let events = form.all("enabled_events[]");
            if events.is_empty() {
                return invalid(
                    "parameter_missing",
                    "Missing required param: enabled_events.",
                    Some("enabled_events"),
                );
            }
            if let Some(bad) = events
                .iter()
                .find(|e| *e != "*" && !EVENT_TYPES.contains(&e.as_str()))
            {
                return invalid(
                    "parameter_invalid_string",
                    &format!(
                        "Invalid enabled_events[0]: must be one of {}",
                        EVENT_TYPES.join(", ")
                    ),
                    Some(bad),
                );
            }
            let secret = format!("whsec_{}", new_id("x").trim_start_matches("x_1"));
            let object = json!({
                "id": new_id("we"),
                "object": "webhook_endpoint",
                "url": url,
                "enabled_events": events,
                "secret": secret,
                "status": "enabled",
                "api_version": API_VERSION,
                "created": now(),
                "livemode": false,
            });
            inner.endpoints.push(Endpoint {
                url,
                secret,
                events,
            });
            (StatusCode::OK, object)
        });
    reply(status, body, replayed)
}
