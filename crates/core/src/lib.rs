//! Warden's protocol and rule book.
//!
//! Everything here is shared by the server (`crates/server`) and the SPA (the
//! root package, compiled to wasm): the JSON shapes of the API, the route
//! paths, and the pure rules both sides must agree on. Nothing here does I/O,
//! and nothing here may panic (it runs in the browser).

/// Defines a closed set that travels as text: serde and the database both
/// use `as_str`, and `parse` reads it back.
#[macro_export]
macro_rules! text_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        pub enum $name {
            $(#[serde(rename = $text)] $variant),+
        }

        // By hand: utoipa's derive does not see a `rename` passed through a macro.
        #[cfg(feature = "openapi")]
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::schema::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .enum_values(Some([$($text),+]))
                    .into()
            }
        }

        #[cfg(feature = "openapi")]
        impl utoipa::ToSchema for $name {
            fn name() -> std::borrow::Cow<'static, str> {
                std::borrow::Cow::Borrowed(stringify!($name))
            }
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            pub fn parse(text: &str) -> Option<$name> {
                match text {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }
        }
    };
}

pub mod actions;
pub mod api;
pub mod api_keys;
pub mod authz;
pub mod cases;
pub mod cloud_connectors;
pub mod console;
pub mod error;
pub mod events;
pub mod fleet;
pub mod fleet_api;
pub mod ids;
pub mod kuery;
pub mod mde;
pub mod paths;
pub mod response_actions;
pub mod rules;
pub mod tasks;
