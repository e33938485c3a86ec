//! Typed messages: postcard encoding behind the `serde` feature, with an
//! error type that does not expose postcard, so that upgrading it is not a
//! breaking change of this crate.

use std::fmt;

/// Why a value could not be encoded, or a payload decoded into the
/// requested type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodecError {
    message: String,
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CodecError {}

#[cfg(feature = "serde")]
impl From<postcard::Error> for CodecError {
    fn from(error: postcard::Error) -> Self {
        CodecError {
            message: error.to_string(),
        }
    }
}

/// Appends `value`'s postcard encoding to `out`.
#[cfg(feature = "serde")]
pub(crate) fn encode_into<T: serde::Serialize + ?Sized>(
    value: &T,
    out: &mut Vec<u8>,
) -> Result<(), CodecError> {
    postcard::serialize_with_flavor(value, AppendToVec(out)).map_err(CodecError::from)
}

/// Decodes `payload` as exactly one `T`: trailing bytes are an error.
#[cfg(feature = "serde")]
pub(crate) fn decode_whole<T: serde::de::DeserializeOwned>(
    payload: &[u8],
) -> Result<T, CodecError> {
    let (value, rest) = postcard::take_from_bytes(payload)?;
    if !rest.is_empty() {
        return Err(CodecError {
            message: format!(
                "{} bytes after the end of the value: the message is not of the expected type",
                rest.len()
            ),
        });
    }
    Ok(value)
}

/// A postcard output flavor that appends to an existing vector, so a message
/// is encoded in place behind the ones already queued.
#[cfg(feature = "serde")]
struct AppendToVec<'a>(&'a mut Vec<u8>);

#[cfg(feature = "serde")]
impl postcard::ser_flavors::Flavor for AppendToVec<'_> {
    type Output = ();

    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        self.0.push(data);
        Ok(())
    }

    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        self.0.extend_from_slice(data);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}
