//! A lazy page's own stylesheet, fetched when the page first opens instead
//! of with the first load (scripts/build-spa.sh copies it beside warden.css).

/// Adds `<link rel="stylesheet">` for `file` from the build's folder, once.
pub fn use_page_style(file: &'static str) {
    let Some(document) = web_sys::window().and_then(|w| w.document()) else {
        return;
    };
    let id = format!("page-style-{file}");
    if document.get_element_by_id(&id).is_some() {
        return;
    }
    // The build's folder is where warden.css comes from (`app-<hash>/`).
    let Some(folder) = document
        .query_selector(r#"link[rel="stylesheet"][href$="warden.css"]"#)
        .ok()
        .flatten()
        .and_then(|main| main.get_attribute("href"))
        .and_then(|href| href.strip_suffix("warden.css").map(str::to_owned))
    else {
        return;
    };
    let (Ok(link), Some(head)) = (document.create_element("link"), document.head()) else {
        return;
    };
    for (name, value) in [("rel", "stylesheet"), ("id", id.as_str()), ("href", &format!("{folder}{file}"))] {
        let _ = link.set_attribute(name, value);
    }
    let _ = head.append_child(&link);
}
