//! repairops-api: the wire types of RepairOps Backup's HTTP API v1 and a typed client.
//!
//! The server (`repairops-server`) and the desktop app share these types, so a field
//! renamed here is renamed on both sides; the OpenAPI document the server serves at
//! `/api/v1/openapi.json` is generated from them.
//!
//! ```no_run
//! use repairops_api::{Client, Trust, Ticket};
//! # async fn demo(ca_pem: Vec<u8>) -> Result<(), repairops_api::ClientError> {
//! let client = Client::new("https://127.0.0.1:8443", Trust::PinnedCa(ca_pem))?;
//! let (client, session) = client.login("owner@demo.repairops.test", "demo-owner").await?;
//! let open = client.list::<Ticket>(&[("status", "In Repair")]).await?;
//! println!("{} has {} tickets in repair", session.account.name, open.items.len());
//! # Ok(()) }
//! ```

mod client;
pub mod types;

pub use client::{Client, ClientError, Resource, Trust};
pub use types::*;
