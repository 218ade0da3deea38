// Collects every component's `style!` block into one stylesheet that
// index.html links (component-scoped CSS by stylers).
fn main() {
    println!("cargo:rerun-if-changed=src");
    stylers::build(Some("./target/stylers/main.css".into()));
}
