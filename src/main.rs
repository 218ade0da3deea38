//! Warden's single-page app: Leptos in CSR mode, built by Trunk.

mod api;
mod app;
mod components;
mod live;
mod pages;
mod session;

fn main() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(app::App);
}
