//! The kit every page is built from. A page composes these and its own
//! columns and text; a piece two pages would copy belongs here.

pub mod async_view;
pub mod audit;
pub mod confirm_dialog;
pub mod data_table;
pub mod form;
pub mod page_style;
pub mod pager;
pub mod shell;
pub mod states;
pub mod status_badge;
pub mod tabs;
pub mod theme;
pub mod time;
pub mod toast;
pub mod tooltip;
pub mod user_menu;
