//! System notifications. On Linux they go straight to the desktop's notification
//! server (freedesktop D-Bus) so a click can open the matching screen; elsewhere
//! through tauri-plugin-notification.

use tauri::AppHandle;

/// Raises a notification; clicking it (where the platform tells) opens `screen`.
pub fn raise(app: &AppHandle, title: &str, body: &str, screen: &'static str) {
    tracing::info!(title, body, "notification");
    #[cfg(target_os = "linux")]
    {
        let app = app.clone();
        let (title, body) = (title.to_string(), body.to_string());
        std::thread::spawn(move || {
            let shown = notify_rust::Notification::new()
                .appname("RepairOps Backup")
                .summary(&title)
                .body(&body)
                .action("default", "Open")
                .timeout(notify_rust::Timeout::Never)
                .show();
            match shown {
                Ok(handle) => handle.wait_for_action(|action| {
                    if action == "default" {
                        crate::tray::open(&app, Some(screen));
                    }
                }),
                Err(e) => tracing::warn!(error = %e, "no notification server"),
            }
        });
    }
    #[cfg(not(target_os = "linux"))]
    {
        use tauri_plugin_notification::NotificationExt;
        let _ = screen;
        if let Err(e) = app.notification().builder().title(title).body(body).show() {
            tracing::warn!(error = %e, "notification not shown");
        }
    }
}
