fn main() {
    // The app's capabilities are declared inline in tauri.conf.json, which tauri-build
    // watches. Left to its default, tauri-build also watches a `capabilities` folder
    // that does not exist, and cargo counts a missing file as changed: the app was
    // compiled again on every build (about a minute in release).
    let attributes = tauri_build::Attributes::new().capabilities_path_pattern("./capabilities/**/*");
    if let Err(e) = tauri_build::try_build(attributes) {
        panic!("tauri-build failed: {e:#}");
    }
}
