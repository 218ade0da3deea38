pub mod planned;
pub mod shell;
pub mod states;
pub mod theme;
pub mod user_menu;
