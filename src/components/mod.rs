pub mod planned;
pub mod shell;
pub mod states;
pub mod status_badge;
pub mod theme;
pub mod time;
pub mod user_menu;
