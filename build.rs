// Collects every component's `style!` block into one stylesheet that
// index.html links (component-scoped CSS by stylers). stylers creates only
// ./target, so make the folder it writes into.
fn main() {
    println!("cargo:rerun-if-changed=src");
    if let Err(err) = std::fs::create_dir_all("target/stylers") {
        println!("cargo:warning=cannot create target/stylers: {err}");
    }
    stylers::build(Some("./target/stylers/main.css".into()));
}
