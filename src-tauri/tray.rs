//! The tray (menu-bar) icon: its colour is the overall health, its tooltip says when the
//! last backup ran, and its menu opens the app, backs up now, or quits. Closing the
//! window keeps the app here, listening.

use tauri::image::Image;
use tauri::menu::{Menu, MenuItem};
use tauri::tray::{MouseButton, MouseButtonState, TrayIconBuilder, TrayIconEvent};
use tauri::{AppHandle, Emitter, Manager};

use crate::state::{Health, Overview, health};

const TRAY_ID: &str = "status";

fn icon(h: Health) -> Option<Image<'static>> {
    let bytes: &'static [u8] = match h {
        Health::Healthy => include_bytes!("../icons/tray-healthy.png"),
        Health::Running => include_bytes!("../icons/tray-running.png"),
        Health::Warning => include_bytes!("../icons/tray-warning.png"),
        Health::Failed => include_bytes!("../icons/tray-failed.png"),
        Health::Offline => include_bytes!("../icons/tray-offline.png"),
    };
    Image::from_bytes(bytes).ok()
}

/// Brings the main window back (from the tray or a notification) on `screen`,
/// creating it again when it was closed.
pub fn open(app: &AppHandle, screen: Option<&str>) {
    let window = match app.get_webview_window("main") {
        Some(w) => Some(w),
        None => {
            let config = app.config().app.windows.iter().find(|w| w.label == "main").cloned();
            let mut url = config.as_ref().map(|c| c.url.clone());
            if let (Some(screen), Some(tauri::WebviewUrl::App(path))) = (screen, url.as_mut()) {
                // A new window starts on the asked-for screen.
                *path = format!("index.html#{screen}").into();
            }
            config.and_then(|mut c| {
                if let Some(u) = url {
                    c.url = u;
                }
                tauri::WebviewWindowBuilder::from_config(app, &c)
                    .and_then(|b| b.build())
                    .ok()
            })
        }
    };
    if let Some(w) = window {
        let _ = w.show();
        let _ = w.unminimize();
        let _ = w.set_focus();
    }
    if let Some(screen) = screen {
        let _ = app.emit("navigate", screen);
    }
}

/// Creates the tray icon.
pub fn create(app: &AppHandle) -> tauri::Result<()> {
    let open_item = MenuItem::with_id(app, "open", "Open RepairOps Backup", true, None::<&str>)?;
    let backup_item = MenuItem::with_id(app, "backup", "Back Up Now", true, None::<&str>)?;
    let quit_item = MenuItem::with_id(app, "quit", "Quit", true, None::<&str>)?;
    let menu = Menu::with_items(app, &[&open_item, &backup_item, &quit_item])?;
    let mut builder = TrayIconBuilder::with_id(TRAY_ID)
        .tooltip("RepairOps Backup")
        .menu(&menu)
        .show_menu_on_left_click(false)
        .on_menu_event(|app, event| match event.id.as_ref() {
            "open" => open(app, None),
            "backup" => open(app, Some("backups")),
            "quit" => app.exit(0),
            _ => {}
        })
        .on_tray_icon_event(|tray, event| {
            if let TrayIconEvent::Click {
                button: MouseButton::Left,
                button_state: MouseButtonState::Up,
                ..
            } = event
            {
                open(tray.app_handle(), None);
            }
        });
    if let Some(i) = icon(Health::Offline) {
        builder = builder.icon(i);
    }
    builder.build(app)?;
    Ok(())
}

/// Shows `o`'s health on the tray icon and tooltip.
pub fn show(app: &AppHandle, o: &Overview) {
    let (h, tooltip) = health(o, chrono::Utc::now());
    if let Some(tray) = app.tray_by_id(TRAY_ID) {
        let _ = tray.set_icon(icon(h));
        let _ = tray.set_tooltip(Some(&tooltip));
    }
}
