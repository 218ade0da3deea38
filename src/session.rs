//! Who is signed in, shared by every page through a context. Any API call that
//! answers 401 (session expired or revoked) signs the app out, and the shell
//! sends the user to the login page with a way back.

use std::cell::RefCell;

use leptos::prelude::*;
use warden_core::api::CurrentUser;

use crate::api;

#[derive(Debug, Clone, PartialEq)]
pub enum AuthState {
    /// Asking the server who we are.
    Checking,
    SignedOut,
    SignedIn(CurrentUser),
}

#[derive(Clone, Copy)]
pub struct Session(pub RwSignal<AuthState>);

thread_local! {
    static CURRENT: RefCell<Option<RwSignal<AuthState>>> = const { RefCell::new(None) };
}

/// Creates the session context and asks the server who is signed in.
pub fn provide() -> Session {
    let state = RwSignal::new(AuthState::Checking);
    CURRENT.with(|current| *current.borrow_mut() = Some(state));
    let session = Session(state);
    provide_context(session);
    leptos::task::spawn_local(async move {
        let next = match api::session::me().await {
            Ok(user) => AuthState::SignedIn(user),
            Err(_) => AuthState::SignedOut,
        };
        state.set(next);
    });
    session
}

pub fn use_session() -> Session {
    use_context::<Session>().unwrap_or_else(provide)
}

pub(crate) fn on_unauthorized() {
    CURRENT.with(|current| {
        if let Some(state) = *current.borrow()
            && matches!(state.get_untracked(), AuthState::SignedIn(_))
        {
            state.set(AuthState::SignedOut);
        }
    });
}

impl Session {
    pub fn user(&self) -> Option<CurrentUser> {
        match self.0.get() {
            AuthState::SignedIn(user) => Some(user),
            _ => None,
        }
    }

    pub fn sign_in(&self, user: CurrentUser) {
        self.0.set(AuthState::SignedIn(user));
    }

    pub async fn sign_out(&self) -> api::ApiResult<()> {
        let result = api::session::logout().await;
        self.0.set(AuthState::SignedOut);
        result
    }
}
