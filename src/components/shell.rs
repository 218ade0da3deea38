//! The signed-in layout: navigation, theme and user menu around the page.

use leptos::prelude::*;
use leptos_router::components::{A, Outlet, Redirect};
use warden_core::authz::Section;

use crate::app::{current_app_path, href};
use crate::components::states::Loading;
use crate::components::theme::ThemeToggle;
use crate::components::toast::ToastRegion;
use crate::components::user_menu::UserMenu;
use crate::live::provide_live;
use crate::session::{AuthState, use_session};

#[component]
pub fn Shell() -> impl IntoView {
    let session = use_session();
    move || match session.0.get() {
        AuthState::Checking => view! { <div class="fullpage"><Loading label="Checking your session…" /></div> }.into_any(),
        AuthState::SignedOut => {
            let next = current_app_path();
            let target = if next == "/" { "/login".to_owned() } else { format!("/login?next={}", encode(&next)) };
            view! { <Redirect path=target /> }.into_any()
        }
        AuthState::SignedIn(user) => {
            let sections: Vec<Section> = Section::ALL.into_iter().filter(|s| s.visible_to(&user.privileges)).collect();
            view! { <Layout sections user /> }.into_any()
        }
    }
}

#[component]
fn Layout(sections: Vec<Section>, user: warden_core::api::CurrentUser) -> impl IntoView {
    provide_live();
    view! {
        <header class="topbar">
            <A href=href("/") attr:class="brand"><img src="favicon.svg" alt="" />"Warden"</A>
            <nav aria-label="Main">
                {sections.into_iter().map(|section| view! { <A href=href(section.path()) attr:class="navlink">{section.title()}</A> }).collect_view()}
            </nav>
            <div class="topbar-tools">
                <ThemeToggle />
                <UserMenu user />
            </div>
        </header>
        <main id="main" class="main"><Outlet /></main>
        <ToastRegion />
    }
}

/// Percent-encodes a path for a query parameter.
fn encode(text: &str) -> String {
    String::from(web_sys::js_sys::encode_uri_component(text))
}
