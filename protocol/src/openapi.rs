//! OpenAPI schemas for the wire types that print as text (feature `openapi`).
//!
//! The structs derive `utoipa::ToSchema` next to their serde derives; keys, signatures and
//! digests serialise through their own `Serialize`, so their schemas are written here: a string
//! of the alphabet and length they print as.

use std::borrow::Cow;

use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::{PartialSchema, ToSchema};

use crate::{Digest, PublicKey, Signature};

/// `PartialSchema` and `ToSchema` for `$ty`, which serialises as a string: `$description`, its
/// text matching `$pattern`.
macro_rules! text_schema {
    ($ty:ident, $description:literal, $pattern:literal) => {
        impl PartialSchema for $ty {
            fn schema() -> RefOr<Schema> {
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .description(Some($description))
                    .pattern(Some($pattern))
                    .into()
            }
        }

        impl ToSchema for $ty {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed(stringify!($ty))
            }
        }
    };
}

text_schema!(
    PublicKey,
    "An ed25519 public key, base58 (Bitcoin alphabet; also a Solana address).",
    "^[1-9A-HJ-NP-Za-km-z]{32,44}$"
);
text_schema!(
    Signature,
    "An ed25519 signature, base58 (Bitcoin alphabet).",
    "^[1-9A-HJ-NP-Za-km-z]{64,88}$"
);
text_schema!(Digest, "A 32-byte digest, lowercase hex.", "^[0-9a-f]{64}$");
