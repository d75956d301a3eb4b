//! Named points where tests stop the server, so kill and fault tests act at a known
//! step instead of after a sleep.
//!
//! With `REPAIROPS_PAUSE_AT` naming one or more points (comma-separated) and
//! `REPAIROPS_PAUSE_DIR` a folder, reaching a named point creates `DIR/NAME.reached`
//! and waits until `DIR/NAME.go` exists (a test may instead kill the process there).
//! Unset, a point costs one environment lookup.

/// Marks a point; pauses here when a test asked to.
pub fn point(name: &str) {
    let Ok(at) = std::env::var("REPAIROPS_PAUSE_AT") else {
        return;
    };
    if !at.split(',').any(|p| p.trim() == name) {
        return;
    }
    let Ok(dir) = std::env::var("REPAIROPS_PAUSE_DIR") else {
        return;
    };
    let dir = std::path::Path::new(&dir);
    let _ = std::fs::write(dir.join(format!("{name}.reached")), b"");
    tracing::warn!(point = name, "paused for a test");
    while !dir.join(format!("{name}.go")).exists() {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
