//! Saves one export from a running server to a file exactly as the app's "Save to
//! drive…" does after its dialog (`files::save_chunks`: temporary file beside the
//! target, fsync, read back and checked against the server's SHA-256, rename), and
//! prints `BYTES SECONDS`. Used by `bench/desktop/run.sh`.
//!
//!   save_export URL CA_PEM EMAIL PASSWORD EXPORT_ID TARGET

use std::path::PathBuf;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, ca, email, password, id, target] = args.as_slice() else {
        eprintln!("usage: save_export URL CA_PEM EMAIL PASSWORD EXPORT_ID TARGET");
        std::process::exit(2);
    };
    if let Err(e) = run(url, ca, email, password, id, target).await {
        eprintln!("save_export: {e}");
        std::process::exit(1);
    }
}

async fn run(url: &str, ca: &str, email: &str, password: &str, id: &str, target: &str) -> Result<(), String> {
    let pem = std::fs::read(ca).map_err(|e| format!("{ca}: {e}"))?;
    let client = repairops_api::Client::new(url, repairops_api::Trust::PinnedCa(pem)).map_err(|e| e.to_string())?;
    let (client, _) = client.login(email, password).await.map_err(|e| e.to_string())?;
    let id: i64 = id.parse().map_err(|_| format!("{id:?} is not an export id"))?;
    let started = std::time::Instant::now();
    let resp = client.export_download(id, 0).await.map_err(|e| e.to_string())?;
    let sha = resp
        .headers()
        .get("x-content-sha256")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let (_, bytes) = repairops_desktop::files::save_chunks(
        repairops_desktop::files::response_chunks(resp),
        &PathBuf::from(target),
        sha.as_deref(),
        |_| {},
    )
    .await
    .map_err(|e| e.message)?;
    println!("{bytes} {:.3}", started.elapsed().as_secs_f64());
    Ok(())
}
