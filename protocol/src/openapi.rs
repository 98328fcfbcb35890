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

fn text(description: &str, pattern: &str) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
        .pattern(Some(pattern))
        .into()
}

impl PartialSchema for PublicKey {
    fn schema() -> RefOr<Schema> {
        text(
            "An ed25519 public key, base58 (Bitcoin alphabet; also a Solana address).",
            "^[1-9A-HJ-NP-Za-km-z]{32,44}$",
        )
    }
}

impl ToSchema for PublicKey {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("PublicKey")
    }
}

impl PartialSchema for Signature {
    fn schema() -> RefOr<Schema> {
        text(
            "An ed25519 signature, base58 (Bitcoin alphabet).",
            "^[1-9A-HJ-NP-Za-km-z]{64,88}$",
        )
    }
}

impl ToSchema for Signature {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Signature")
    }
}

impl PartialSchema for Digest {
    fn schema() -> RefOr<Schema> {
        text("A 32-byte digest, lowercase hex.", "^[0-9a-f]{64}$")
    }
}

impl ToSchema for Digest {
    fn name() -> Cow<'static, str> {
        Cow::Borrowed("Digest")
    }
}
