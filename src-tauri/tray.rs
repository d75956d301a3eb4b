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

/// Brings the main window back (from the tray or a notification) on `screen`.
pub fn open(app: &AppHandle, screen: Option<&str>) {
    if let Some(w) = app.get_webview_window("main") {
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
