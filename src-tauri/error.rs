//! What the UI is told when a command fails: a kind it can act on and a sentence it
//! shows as is. Server errors arrive here already as sentences; transport and file
//! errors are turned into sentences here, so no JSON or stack trace reaches a person.

use repairops_api::ClientError;
use serde::Serialize;
use ts_rs::TS;

/// Why a command failed, for the UI to decide what to show next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The server cannot be reached.
    Offline,
    /// No session, or the server no longer accepts its token.
    SignedOut,
    /// The signed-in role may not do this.
    Forbidden,
    /// The request was refused as wrong (bad date, wrong confirmation…).
    Invalid,
    /// Live rows differ from the backup's (single-record restore): `details` lists them.
    Conflict,
    NotFound,
    /// Another job of the same kind is running.
    Busy,
    /// A restore is running: the shop is read-only.
    ReadOnly,
    /// The person closed the save dialog.
    Cancelled,
    /// Writing to this computer or a drive failed (full, removed, not allowed…).
    Storage,
    /// Anything else the server or the app could not do.
    Failed,
}

/// A failed command, as the UI receives it.
#[derive(Debug, Clone, Serialize, TS, thiserror::Error)]
#[error("{message}")]
pub struct UiError {
    pub kind: ErrorKind,
    /// A sentence to show as is.
    pub message: String,
    /// Structured extras, e.g. the rows a record restore would overwrite.
    #[ts(type = "unknown")]
    pub details: Option<serde_json::Value>,
}

impl UiError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> UiError {
        UiError {
            kind,
            message: message.into(),
            details: None,
        }
    }

    pub fn invalid(message: impl Into<String>) -> UiError {
        UiError::new(ErrorKind::Invalid, message)
    }

    pub fn signed_out() -> UiError {
        UiError::new(ErrorKind::SignedOut, "You are not signed in. Sign in to continue.")
    }

    pub fn storage(message: impl Into<String>) -> UiError {
        UiError::new(ErrorKind::Storage, message)
    }

    pub fn failed(message: impl Into<String>) -> UiError {
        UiError::new(ErrorKind::Failed, message)
    }
}

impl From<ClientError> for UiError {
    fn from(e: ClientError) -> UiError {
        match e {
            ClientError::Transport(cause) => UiError::new(
                ErrorKind::Offline,
                format!(
                    "The server cannot be reached ({}). Check that it is running and that this computer is on the shop's network.",
                    short_cause(&cause)
                ),
            ),
            ClientError::Decode(_) => UiError::failed(
                "The server sent an answer this app does not understand. Check that the app and the server are the same version.",
            ),
            ClientError::Setup(m) => UiError::invalid(sentence(&m)),
            ClientError::Api {
                status,
                code,
                message,
                details,
            } => {
                let kind = match (status, code.as_str()) {
                    (401, _) => ErrorKind::SignedOut,
                    (403, _) => ErrorKind::Forbidden,
                    (404, _) | (410, _) => ErrorKind::NotFound,
                    (409, "would_overwrite") => ErrorKind::Conflict,
                    (409, _) => ErrorKind::Busy,
                    (423, _) => ErrorKind::ReadOnly,
                    (400, _) | (413, _) | (416, _) | (422, _) => ErrorKind::Invalid,
                    (503, _) | (502, _) | (504, _) => ErrorKind::Offline,
                    _ => ErrorKind::Failed,
                };
                let message = match kind {
                    ErrorKind::SignedOut => {
                        "Your sign-in has expired or was signed out elsewhere. Sign in again.".to_string()
                    }
                    _ if code == "http_error" => format!(
                        "The server could not do this (it answered HTTP {status}). Try again; if it keeps happening, tell whoever runs the server."
                    ),
                    _ => sentence(&message),
                };
                UiError {
                    kind,
                    message,
                    details: details.and_then(|d| d.get("conflicts").cloned()),
                }
            }
        }
    }
}

impl From<std::io::Error> for UiError {
    fn from(e: std::io::Error) -> UiError {
        UiError::storage(io_sentence(&e))
    }
}

/// An I/O error as something a shop manager can act on.
pub fn io_sentence(e: &std::io::Error) -> String {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::NotFound => "The folder or drive is no longer there (was the drive removed?).".into(),
        K::PermissionDenied => "This app is not allowed to write there. Pick another folder.".into(),
        K::StorageFull => "The drive is full.".into(),
        K::ReadOnlyFilesystem => "The drive is read-only.".into(),
        _ => device_trouble(e).map_or_else(|| format!("Writing the file failed: {e}."), String::from),
    }
}

/// A removed or failing drive, told apart by its Unix error number.
#[cfg(unix)]
fn device_trouble(e: &std::io::Error) -> Option<&'static str> {
    match e.raw_os_error() {
        // EIO, ENODEV, ENXIO: the device went away or failed mid-write.
        Some(5) | Some(19) | Some(6) => Some("The drive stopped answering (was it removed?)."),
        // EFBIG: past FAT32's 4 GiB per file.
        Some(27) => Some("The file is larger than this drive's format allows."),
        _ => None,
    }
}

/// Windows numbers its errors otherwise (5 is "access denied" there).
#[cfg(windows)]
fn device_trouble(e: &std::io::Error) -> Option<&'static str> {
    match e.raw_os_error() {
        // ERROR_NOT_READY, ERROR_DEV_NOT_EXIST, ERROR_DEVICE_NOT_CONNECTED
        Some(21) | Some(55) | Some(1167) => Some("The drive stopped answering (was it removed?)."),
        // ERROR_FILE_TOO_LARGE
        Some(223) => Some("The file is larger than this drive's format allows."),
        _ => None,
    }
}

#[cfg(not(any(unix, windows)))]
fn device_trouble(_e: &std::io::Error) -> Option<&'static str> {
    None
}

/// The first letter capitalised and a full stop at the end.
fn sentence(s: &str) -> String {
    let s = s.trim();
    let mut out: String = s.chars().take(1).flat_map(char::to_uppercase).collect();
    out.push_str(&s[s.chars().next().map_or(0, char::len_utf8)..]);
    if !out.ends_with(['.', '!', '?']) {
        out.push('.');
    }
    out
}

/// The innermost reason of a transport error ("Connection refused"), not reqwest's chain.
fn short_cause(cause: &str) -> String {
    let last = cause.rsplit(": ").next().unwrap_or(cause).trim();
    let last = last.split(" (os error").next().unwrap_or(last);
    if last.is_empty() {
        "no answer".into()
    } else {
        last.to_lowercase()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16, code: &str, message: &str) -> ClientError {
        ClientError::Api {
            status,
            code: code.into(),
            message: message.into(),
            details: None,
        }
    }

    #[test]
    fn a_failing_drive_is_told_by_this_system_s_error_numbers() {
        let removed = if cfg!(windows) { 55 } else { 5 };
        let e = std::io::Error::from_raw_os_error(removed);
        assert!(io_sentence(&e).contains("stopped answering"), "{}", io_sentence(&e));
        let too_large = if cfg!(windows) { 223 } else { 27 };
        let e = std::io::Error::from_raw_os_error(too_large);
        assert!(io_sentence(&e).contains("larger than"), "{}", io_sentence(&e));
        // Any other number is said as the system says it, not taken for a removed drive.
        let e = std::io::Error::from_raw_os_error(if cfg!(windows) { 6 } else { 22 });
        assert!(
            io_sentence(&e).starts_with("Writing the file failed"),
            "{}",
            io_sentence(&e)
        );
    }

    #[test]
    fn server_errors_become_sentences_and_kinds() {
        let e = UiError::from(api(423, "read_only", "a restore is running; try again when it is done"));
        assert_eq!(e.kind, ErrorKind::ReadOnly);
        assert_eq!(e.message, "A restore is running; try again when it is done.");
        let e = UiError::from(api(401, "unauthorized", "token expired"));
        assert_eq!(e.kind, ErrorKind::SignedOut);
        let e = UiError::from(api(502, "http_error", "the server answered HTTP 502"));
        assert_eq!(e.kind, ErrorKind::Offline);
        assert!(!e.message.contains('{'), "{}", e.message);
    }

    #[test]
    fn transport_errors_name_the_cause_without_the_chain() {
        let e = UiError::from(ClientError::Transport(
            "error sending request for url (https://127.0.0.1:9/api/v1/account): client error (Connect): tcp connect error: Connection refused (os error 111)".into(),
        ));
        assert_eq!(e.kind, ErrorKind::Offline);
        assert!(e.message.contains("(connection refused)"), "{}", e.message);
        assert!(!e.message.contains("https://"), "{}", e.message);
    }

    #[test]
    fn conflicts_travel_as_details() {
        let e = UiError::from(ClientError::Api {
            status: 409,
            code: "would_overwrite".into(),
            message: "2 live records differ".into(),
            details: Some(serde_json::json!({"conflicts": [{"table": "tickets", "id": 4}]})),
        });
        assert_eq!(e.kind, ErrorKind::Conflict);
        assert_eq!(e.details, Some(serde_json::json!([{"table": "tickets", "id": 4}])));
    }
}
