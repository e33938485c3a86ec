//! Where the authkey comes from.

use std::path::Path;

use anyhow::{Context, bail};

/// The environment variable holding the authkey (its UTF-8 bytes).
pub const AUTHKEY_ENV: &str = "IRIS_AUTHKEY";

/// Loads the authkey: from `file` when given, else from [`AUTHKEY_ENV`].
///
/// A key file's bytes are the key, byte for byte, except that one trailing
/// newline (`\n` or `\r\n`) is dropped so that `echo secret > key` works;
/// binary keys are fine. The environment variable's value is used as is.
/// Either way an empty key is an error: there is no "no authentication".
pub fn load_authkey(file: Option<&Path>) -> anyhow::Result<Vec<u8>> {
    if let Some(path) = file {
        return read_authkey_file(path);
    }
    match std::env::var_os(AUTHKEY_ENV) {
        Some(value) => {
            let Some(text) = value.to_str() else {
                bail!(
                    "{AUTHKEY_ENV} is not valid UTF-8; put a binary key in a file and pass --authkey-file"
                );
            };
            if text.is_empty() {
                bail!(
                    "{AUTHKEY_ENV} is empty; set it to the shared secret (an empty key would disable authentication)"
                );
            }
            Ok(text.as_bytes().to_vec())
        }
        None => bail!(
            "no authkey: set {AUTHKEY_ENV} or pass --authkey-file PATH (keys are never taken on the command line, where `ps` would show them)"
        ),
    }
}

/// Reads a key file as [`load_authkey`] describes.
pub fn read_authkey_file(path: &Path) -> anyhow::Result<Vec<u8>> {
    let mut key = std::fs::read(path)
        .with_context(|| format!("cannot read the authkey file {}", path.display()))?;
    if key.ends_with(b"\r\n") {
        key.truncate(key.len() - 2);
    } else if key.ends_with(b"\n") {
        key.truncate(key.len() - 1);
    }
    if key.is_empty() {
        bail!(
            "the authkey file {} is empty; write the shared secret into it",
            path.display()
        );
    }
    warn_if_readable_by_others(path);
    Ok(key)
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(metadata) = std::fs::metadata(path) {
        if metadata.permissions().mode() & 0o004 != 0 {
            tracing::warn!(
                path = %path.display(),
                "the authkey file is readable by every user; consider chmod 600"
            );
        }
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path) {}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_file(contents: &[u8]) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().expect("temp file");
        std::fs::write(file.path(), contents).expect("write");
        file
    }

    #[test]
    fn one_trailing_newline_is_dropped_and_the_rest_kept() {
        let cases: [(&[u8], &[u8]); 5] = [
            (b"secret", b"secret"),
            (b"secret\n", b"secret"),
            (b"secret\r\n", b"secret"),
            (b"secret\n\n", b"secret\n"),
            (b" \x00\xffbinary ", b" \x00\xffbinary "),
        ];
        for (contents, expected) in cases {
            let file = key_file(contents);
            assert_eq!(read_authkey_file(file.path()).expect("key"), expected);
        }
    }

    #[test]
    fn empty_and_missing_files_are_errors_that_name_the_file() {
        for contents in [&b""[..], b"\n"] {
            let file = key_file(contents);
            let err = read_authkey_file(file.path()).expect_err("empty");
            assert!(err.to_string().contains("is empty"), "{err}");
        }
        let err = read_authkey_file(Path::new("/nonexistent/key")).expect_err("missing");
        assert!(err.to_string().contains("/nonexistent/key"), "{err}");
    }
}
