//! Warden's protocol and rule book.
//!
//! Everything here is shared by the server (`crates/server`) and the SPA (the
//! root package, compiled to wasm): the JSON shapes of the API, the route
//! paths, and the pure rules both sides must agree on. Nothing here does I/O,
//! and nothing here may panic (it runs in the browser).

pub mod api;
pub mod api_keys;
pub mod authz;
pub mod error;
pub mod events;
pub mod fleet;
pub mod fleet_api;
pub mod kuery;
pub mod paths;
pub mod tasks;
