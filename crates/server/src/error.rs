//! HTTP errors.
//!
//! Policy: a handler returns [`ApiError`]; it becomes `{"error": {"code", "message"}}`
//! with a fitting status. Named constructors (`ApiError::not_found(..)`) keep codes
//! consistent. Unexpected failures (database, disk) are logged once with their cause and
//! answered as a plain 500 whose message says what to do, never with internals. The
//! [`Json`] extractor wraps axum's so malformed bodies get our error shape too.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use repairops_api::{ErrorBody, ErrorDetail};
use serde::de::DeserializeOwned;

/// An error answered to an HTTP client.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", message)
    }

    pub fn not_found(what: &str) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("{what} not found"))
    }

    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, "conflict", message)
    }

    pub fn too_many(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::TOO_MANY_REQUESTS, "too_many_requests", message)
    }

    /// The account is being restored: reads work, writes wait.
    pub fn read_only() -> ApiError {
        ApiError::new(
            StatusCode::LOCKED,
            "read_only",
            "A restore is in progress: the shop's data can be viewed but not changed until it finishes.",
        )
    }

    /// Something failed that the caller cannot fix; the cause is logged, not sent.
    pub fn internal(context: &str, cause: impl std::fmt::Display) -> ApiError {
        tracing::error!(%cause, "{context}");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!(
                "The server could not {context}. Try again; if it keeps failing, tell your administrator (the server log has details)."
            ),
        )
    }
}

/// The answer to a request whose handler panicked (a bug): the same readable 500 as any
/// internal error, instead of a connection closed with no answer. The panic itself,
/// with where it happened, is logged by the hook `main` installs. (A panic inside a
/// database task is answered by `db::run_blocking`.)
pub fn panicked(_panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    ApiError::internal("answer this request", "its handler panicked (logged just before)").into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_string(),
                message: self.message,
            },
        };
        (self.status, axum::Json(body)).into_response()
    }
}

impl From<rusqlite::Error> for ApiError {
    fn from(e: rusqlite::Error) -> ApiError {
        if let rusqlite::Error::SqliteFailure(f, msg) = &e {
            let msg = msg.as_deref().unwrap_or("");
            if f.code == rusqlite::ErrorCode::ConstraintViolation {
                if msg.contains("FOREIGN KEY") {
                    return ApiError::invalid("a referenced record does not exist (check the ids you gave)");
                }
                if msg.contains("UNIQUE") {
                    return ApiError::conflict(format!("a record with that value already exists ({msg})"));
                }
                return ApiError::invalid(format!("the record breaks a rule of the shop's data ({msg})"));
            }
            if f.code == rusqlite::ErrorCode::DatabaseBusy || f.code == rusqlite::ErrorCode::DatabaseLocked {
                return ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "busy",
                    "The shop's data is busy; try again in a moment.",
                );
            }
        }
        ApiError::internal("read or write the shop's data", e)
    }
}

/// `axum::Json`, but a malformed body is answered in our error shape with a message that
/// says what is wrong (unknown field, wrong type, bad JSON, too large).
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let json = req
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(is_json_type);
        if !json {
            return Err(not_json());
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(bytes_rejection)?;
        match axum::Json::<T>::from_bytes(&bytes) {
            Ok(axum::Json(v)) => Ok(Json(v)),
            // serde_json reports some values of the wrong kind (a null where one of a
            // list of words is needed) as a syntax error: when the body is JSON, it is
            // the body that does not fit, and saying "not valid JSON" would mislead.
            Err(JsonRejection::JsonSyntaxError(e))
                if serde_json::from_slice::<serde::de::IgnoredAny>(&bytes).is_ok() =>
            {
                let text = e.body_text();
                let detail = text
                    .strip_prefix("Failed to parse the request body as JSON: ")
                    .unwrap_or(&text);
                Err(ApiError::invalid(format!("the request body does not fit: {detail}")))
            }
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

/// A JSON body as [`Json`] reads it, whose errors wait until the handler asks for the
/// value ([`Deferred::parse`]), after its role checks: a caller without the role hears
/// 403 whatever they sent, before anything about the body's rules.
pub struct Deferred<T>(Result<T, ApiError>);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Deferred<T> {
    type Rejection = std::convert::Infallible;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        Ok(Deferred(Json::<T>::from_request(req, state).await.map(|Json(v)| v)))
    }
}

impl<T> Deferred<T> {
    /// The body, or the 400, 413, 415 or 422 that [`Json`] would have answered.
    pub fn parse(self) -> Result<T, ApiError> {
        self.0
    }
}

/// `application/json`, or a `+json` type, with any parameters (`; charset=utf-8`).
fn is_json_type(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

fn not_json() -> ApiError {
    ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        "send the body as JSON with the header Content-Type: application/json",
    )
}

fn bytes_rejection(e: axum::extract::rejection::BytesRejection) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            "the request body is too large",
        )
    } else {
        ApiError::bad_request(format!("the request body could not be read: {}", e.body_text()))
    }
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::JsonDataError(e) => {
            ApiError::invalid(format!("the request body does not fit: {}", e.body_text()))
        }
        JsonRejection::JsonSyntaxError(e) => {
            ApiError::bad_request(format!("the request body is not valid JSON: {}", e.body_text()))
        }
        JsonRejection::MissingJsonContentType(_) => not_json(),
        JsonRejection::BytesRejection(e) => bytes_rejection(e),
        other => ApiError::bad_request(other.body_text()),
    }
}

/// Answers a request that matched no route.
pub async fn no_route() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no_route",
        "there is no such API route; see /api/v1/openapi.json",
    )
}

/// `axum::extract::Path` whose rejection (an id that is not a number) is our error shape.
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> axum::extract::FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(Path(v)),
            Err(e) => Err(ApiError::bad_request(format!(
                "the address is not valid: {}",
                e.body_text()
            ))),
        }
    }
}

/// `axum::extract::Query` whose rejection (a missing or malformed parameter) is our
/// error shape.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> axum::extract::FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(Query(v)),
            Err(e) => Err(ApiError::bad_request(format!(
                "the query parameters are not valid: {}",
                e.body_text()
            ))),
        }
    }
}

/// Answers a route that exists with a method it does not take.
pub async fn wrong_method() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this API route does not take that method; see /api/v1/openapi.json",
    )
}
