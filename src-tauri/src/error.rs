//! The app's one error type. Commands return it; the UI receives `{ code, message }`.

use serde::ser::SerializeStruct;

/// Everything that can go wrong behind a command. `code()` is a stable snake_case reason the UI
/// shows and tests match on; the message is for people.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The user's settings were refused; `field` names the offending one.
    #[error("{field}: {why}")]
    InvalidSettings { field: &'static str, why: String },
    /// A request argument was out of range.
    #[error("{0}")]
    InvalidArgument(String),
    /// Reading or writing one of the app's files failed.
    #[error("{what} ({path}): {source}")]
    Io {
        what: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// A file of the app's could not be parsed.
    #[error("{what} ({path}) is damaged: {why}")]
    Corrupt {
        what: &'static str,
        path: String,
        why: String,
    },
    /// The node library reported an error.
    #[error("node: {0}")]
    Node(String),
    /// Turning start-at-login on or off failed.
    #[error("start at login: {0}")]
    Autostart(String),
}

impl AppError {
    /// A stable snake_case reason code.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::InvalidSettings { .. } => "invalid_settings",
            AppError::InvalidArgument(_) => "invalid_argument",
            AppError::Io { .. } => "io_error",
            AppError::Corrupt { .. } => "corrupt_file",
            AppError::Node(_) => "node_error",
            AppError::Autostart(_) => "autostart_failed",
        }
    }

    /// An [`AppError::Io`] for `path`.
    pub fn io(what: &'static str, path: &std::path::Path, source: std::io::Error) -> Self {
        AppError::Io {
            what,
            path: path.display().to_string(),
            source,
        }
    }
}

impl serde::Serialize for AppError {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("AppError", 2)?;
        s.serialize_field("code", self.code())?;
        s.serialize_field("message", &self.to_string())?;
        s.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialises_as_code_and_message() {
        let err = AppError::InvalidSettings {
            field: "validators",
            why: "ftp://x is not an http(s) address".into(),
        };
        let json = serde_json::to_value(&err).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"code": "invalid_settings", "message": "validators: ftp://x is not an http(s) address"})
        );
    }
}
