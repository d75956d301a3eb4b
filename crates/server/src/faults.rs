//! Named points where tests stop the server, so kill and fault tests act at a known
//! step instead of after a sleep.
//!
//! With `REPAIROPS_PAUSE_AT` naming one or more points (comma-separated) and
//! `REPAIROPS_PAUSE_DIR` a folder, reaching a named point creates `DIR/NAME.reached`
//! and waits until `DIR/NAME.go` exists (a test may instead kill the process there).
//! With `REPAIROPS_PANIC_AT` naming points, reaching one panics, as a bug would there.
//! Unset, a point costs two environment lookups.

/// Whether the environment variable `var` names the point `name`.
fn named(var: &str, name: &str) -> bool {
    std::env::var(var).is_ok_and(|at| at.split(',').any(|p| p.trim() == name))
}

/// Whether a test asked to pause or panic at `name`: async code asks before it moves a
/// point off the runtime's threads, so an ordinary run pays no thread hop for it.
pub fn armed(name: &str) -> bool {
    named("REPAIROPS_PANIC_AT", name) || named("REPAIROPS_PAUSE_AT", name)
}

/// Marks a point; pauses (or panics) here when a test asked to.
pub fn point(name: &str) {
    if named("REPAIROPS_PANIC_AT", name) {
        panic!("a test asked for a panic at {name}");
    }
    if !named("REPAIROPS_PAUSE_AT", name) {
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
