//! The signed-in layout: navigation, theme and user menu around the page.

use leptos::prelude::*;
use leptos_router::components::{A, Outlet, Redirect};
use stylers_macro::style;
use warden_core::authz::Section;

use crate::app::{current_app_path, href};
use crate::components::states::Loading;
use crate::components::theme::ThemeToggle;
use crate::components::user_menu::UserMenu;
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
    let class = style! {
        .topbar {
            display: flex;
            align-items: center;
            gap: 16px;
            flex-wrap: wrap;
            padding: 8px 20px;
            background: var(--surface);
            border-bottom: 1px solid var(--border);
        }
        nav {
            display: flex;
            gap: 4px;
            flex-wrap: wrap;
            flex: 1;
        }
        .tools {
            display: flex;
            gap: 8px;
            align-items: center;
        }
        main {
            padding: 24px;
            max-width: 1400px;
            margin: 0 auto;
        }
    };
    view! { class = class,
        <header class="topbar">
            <A href=href("/") attr:class="brand"><img src="favicon.svg" alt="" />"Warden"</A>
            <nav aria-label="Main">
                {sections.into_iter().map(|section| view! { <A href=href(section.path()) attr:class="navlink">{section.title()}</A> }).collect_view()}
            </nav>
            <div class="tools">
                <ThemeToggle />
                <UserMenu user />
            </div>
        </header>
        <main id="main"><Outlet /></main>
    }
}

/// Percent-encodes a path for a query parameter.
fn encode(text: &str) -> String {
    String::from(web_sys::js_sys::encode_uri_component(text))
}
