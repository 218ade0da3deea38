//! Authorization declared in a handler's signature: `Require<FleetAll>`
//! authenticates the caller and checks the privilege before any later
//! argument is extracted, the body included, so a forbidden caller gets 403
//! (or 401) whatever they sent. The privilege table itself is the core's
//! (`warden_core::authz`), which the SPA reads too.

use std::marker::PhantomData;

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use warden_core::authz::Privilege;

use crate::AppState;
use crate::auth::{AuthKind, AuthUser};
use crate::error::{ApiError, Result};

/// A privilege as a type, so a route can name it in its signature.
pub trait Grant {
    const PRIVILEGE: Privilege;
}

macro_rules! grants {
    ($($name:ident),* $(,)?) => {$(
        #[doc = concat!("`Require<", stringify!($name), ">`: the caller holds `Privilege::", stringify!($name), "`.")]
        pub struct $name;
        impl Grant for $name {
            const PRIVILEGE: Privilege = Privilege::$name;
        }
    )*};
}

grants!(FleetRead, FleetAll, UsersAdmin, ApiKeysManageOwn, TasksAdmin, ActionsRead, ActionsAll, RulesRead, RulesAll, CasesRead, CasesAll);

/// The signed-in caller, who holds `G`'s privilege.
pub struct Require<G>(pub AuthUser, pub PhantomData<G>);

impl<G: Grant> FromRequestParts<AppState> for Require<G> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        let user = AuthUser::from_request_parts(parts, state).await?;
        user.require(G::PRIVILEGE)?;
        Ok(Require(user, PhantomData))
    }
}

/// `Require<G>`, and the caller signed in as themselves: an API key cannot
/// create API keys.
pub struct RequireSignedIn<G>(pub AuthUser, pub PhantomData<G>);

impl<G: Grant> FromRequestParts<AppState> for RequireSignedIn<G> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        let Require(user, _) = Require::<G>::from_request_parts(parts, state).await?;
        if user.kind == AuthKind::ApiKey {
            return Err(ApiError::Coded {
                status: StatusCode::FORBIDDEN,
                code: "Forbidden",
                message: "An API key cannot create API keys; sign in as the user to create one".into(),
            });
        }
        Ok(RequireSignedIn(user, PhantomData))
    }
}
