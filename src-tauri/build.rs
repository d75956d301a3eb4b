fn main() {
    // The app's capabilities are declared inline in tauri.conf.json, which tauri-build
    // watches. Left to its default, tauri-build also watches a `capabilities` folder
    // that does not exist, and cargo counts a missing file as changed: the app was
    // compiled again on every build (about a minute in release). Capability files put
    // in such a folder later would need their own `rerun-if-changed`.
    let attributes = tauri_build::Attributes::new().capabilities_path_pattern("./capabilities/**/*");
    tauri_build::try_build(attributes).expect("tauri-build failed");
}
