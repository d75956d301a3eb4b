//! Who is calling, and what their role lets them do.
//!
//! [`Auth`] is an extractor: a handler that takes it answers 401 without a valid bearer
//! token. Authorization stays an explicit, visible call in each handler:
//! `auth.require(Permission::DeleteRecords)?`. The matrix is DESIGN.md's.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use repairops_api::{AccountMode, Role};

use crate::app::AppState;
use crate::control::{self, AccountRow, Identity};
use crate::error::ApiError;

/// Something a role may or may not do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// Create and change tickets, customers, invoices, payments, transactions, attachments.
    WriteShopData,
    WriteInventory,
    /// Change shop locations.
    WriteShops,
    /// Delete shop records.
    DeleteRecords,
    /// Write a note in someone else's name (notes moved in from another system).
    WriteAsOthers,
    ViewBackups,
    /// Back up now, delete manual backups, sandboxes, restores, drills.
    RunBackups,
    /// Exports, compliance requests, the audit log.
    Exports,
    NotificationSettings,
    /// Account settings, key rotation, team sign-ins.
    AccountSettings,
}

impl Permission {
    pub fn allows(self, role: Role) -> bool {
        use Permission::*;
        use Role::*;
        match self {
            WriteShopData => true,
            WriteInventory => matches!(role, Owner | Manager | Technician),
            WriteShops | DeleteRecords | WriteAsOthers | RunBackups | Exports | NotificationSettings => {
                matches!(role, Owner | Manager)
            }
            ViewBackups => matches!(role, Owner | Manager | Technician),
            AccountSettings => role == Owner,
        }
    }

    fn describe(self) -> &'static str {
        use Permission::*;
        match self {
            WriteShopData => "change shop records",
            WriteInventory => "change inventory",
            WriteShops => "change shop locations",
            DeleteRecords => "delete shop records",
            WriteAsOthers => "write a note in someone else's name",
            ViewBackups => "see backups",
            RunBackups => "run backups, sandboxes or restores",
            Exports => "export data, handle compliance requests or read the audit log",
            NotificationSettings => "change notification settings",
            AccountSettings => "change account settings, keys or team sign-ins",
        }
    }

    fn who(self) -> &'static str {
        use Permission::*;
        match self {
            WriteInventory => "an owner, manager or technician",
            AccountSettings => "the owner",
            ViewBackups => "an owner, manager or technician",
            _ => "an owner or manager",
        }
    }
}

/// A signed-in caller.
#[derive(Debug, Clone)]
pub struct Auth {
    pub identity: Identity,
    pub account: AccountRow,
    pub token: String,
    /// Set when the request came through `/sandboxes/{id}/api/v1/…`: the shop data it
    /// reads and writes is that sandbox's, never production's.
    pub sandbox: Option<SandboxScope>,
}

/// The sandbox a request is scoped to (put in the request's extensions by the sandbox
/// route after it checked the sandbox belongs to the caller's account).
#[derive(Clone)]
pub struct SandboxScope {
    pub id: i64,
    pub data: crate::app::ShopData,
}

impl std::fmt::Debug for SandboxScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "sandbox {}", self.id)
    }
}

impl Auth {
    /// Refuses with 403 and a sentence naming who can do it.
    pub fn require(&self, permission: Permission) -> Result<(), ApiError> {
        if permission.allows(self.identity.role) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "Your role ({}) cannot {}; ask {}.",
                self.identity.role.as_str().replace('_', " "),
                permission.describe(),
                permission.who()
            )))
        }
    }

    /// The shop data this request works on: a sandbox's, or the account's live data.
    pub async fn shop_data(&self, app: &crate::app::App) -> Result<crate::app::ShopData, ApiError> {
        match &self.sandbox {
            Some(s) => Ok(s.data.clone()),
            None => app.shop_data(&self.account.account.slug).await,
        }
    }

    /// Refuses writes while the account is being restored (a sandbox stays writable:
    /// nothing there touches production).
    pub fn require_writable(&self) -> Result<(), ApiError> {
        if self.sandbox.is_none() && self.account.account.mode == AccountMode::Restoring {
            return Err(ApiError::read_only());
        }
        Ok(())
    }
}

/// The bearer token of a request, if any.
pub fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty() && t.len() < 200)
}

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Auth, ApiError> {
        let token = bearer(parts)
            .ok_or_else(|| {
                ApiError::unauthorized("Sign in first: send Authorization: Bearer <token> from /api/v1/auth/login.")
            })?
            .to_string();
        let now = app.clock.now();
        let t = token.clone();
        let found = app
            .control
            .read(move |c| {
                let Some(identity) = control::identity_by_token(c, &t, now).map_err(control::db_err)? else {
                    return Ok(None);
                };
                let account = control::account_by_id(c, identity.account_id).map_err(control::db_err)?;
                Ok(account.map(|a| (identity, a)))
            })
            .await?;
        let (identity, account) =
            found.ok_or_else(|| ApiError::unauthorized("Your sign-in has expired or was revoked; sign in again."))?;
        Ok(Auth {
            identity,
            account,
            token,
            sandbox: parts.extensions.get::<SandboxScope>().cloned(),
        })
    }
}

/// Slows down guessing: after five failed sign-ins for an email or from an address,
/// further attempts are refused for a time that doubles with each failure (1 s, 2 s, …,
/// at most 15 minutes). A success clears the email's count.
#[derive(Default)]
pub struct LoginThrottle {
    failures: Mutex<HashMap<String, (u32, Instant)>>,
}

const FREE_ATTEMPTS: u32 = 5;

impl LoginThrottle {
    fn keys(email: &str, ip: IpAddr) -> [String; 2] {
        [format!("email:{}", email.to_lowercase()), format!("ip:{ip}")]
    }

    /// Counts an attempt before its password is checked (so concurrent guesses cannot
    /// all slip through), or refuses it with how long to wait.
    pub fn begin(&self, email: &str, ip: IpAddr) -> Result<(), Duration> {
        self.check(email, ip)?;
        self.failed(email, ip);
        Ok(())
    }

    /// `Err(wait)` while attempts are refused.
    pub fn check(&self, email: &str, ip: IpAddr) -> Result<(), Duration> {
        let map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        for key in Self::keys(email, ip) {
            if let Some((n, last)) = map.get(&key)
                && *n >= FREE_ATTEMPTS
            {
                let wait = Duration::from_secs(1u64 << (n - FREE_ATTEMPTS).min(10)).min(Duration::from_secs(900));
                let elapsed = last.elapsed();
                if elapsed < wait {
                    return Err(wait - elapsed);
                }
            }
        }
        Ok(())
    }

    pub fn failed(&self, email: &str, ip: IpAddr) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() > 100_000 {
            map.retain(|_, (_, last)| last.elapsed() < Duration::from_secs(900));
        }
        for key in Self::keys(email, ip) {
            let e = map.entry(key).or_insert((0, Instant::now()));
            e.0 += 1;
            e.1 = Instant::now();
        }
    }

    /// A sign-in succeeded: the email starts afresh and the attempt counted by
    /// [`LoginThrottle::begin`] is taken back from the address.
    pub fn succeeded(&self, email: &str, ip: IpAddr) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(&format!("email:{}", email.to_lowercase()));
        if let Some(e) = map.get_mut(&format!("ip:{ip}")) {
            e.0 = e.0.saturating_sub(1);
        }
    }
}

/// A fixed-window limit per client address (the customer portal).
pub struct RateLimit {
    per_minute: u32,
    hits: Mutex<HashMap<IpAddr, (u32, Instant)>>,
}

impl RateLimit {
    pub fn new(per_minute: u32) -> RateLimit {
        RateLimit {
            per_minute,
            hits: Mutex::new(HashMap::new()),
        }
    }

    pub fn allow(&self, ip: IpAddr) -> bool {
        let mut map = self.hits.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() > 100_000 {
            map.retain(|_, (_, start)| start.elapsed() < Duration::from_secs(60));
        }
        let e = map.entry(ip).or_insert((0, Instant::now()));
        if e.1.elapsed() >= Duration::from_secs(60) {
            *e = (0, Instant::now());
        }
        e.0 += 1;
        e.0 <= self.per_minute
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matrix_matches_the_design() {
        use Permission::*;
        use Role::*;
        assert!(WriteShopData.allows(FrontDesk));
        assert!(!WriteInventory.allows(FrontDesk));
        assert!(WriteInventory.allows(Technician));
        assert!(!DeleteRecords.allows(Technician));
        assert!(DeleteRecords.allows(Manager));
        assert!(!ViewBackups.allows(FrontDesk));
        assert!(!RunBackups.allows(Technician));
        assert!(!Exports.allows(Technician));
        assert!(!AccountSettings.allows(Manager));
        assert!(AccountSettings.allows(Owner));
    }

    #[test]
    fn throttle_refuses_after_five_failures() {
        let t = LoginThrottle::default();
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        for _ in 0..5 {
            assert!(t.begin("a@b.c", ip).is_ok());
        }
        assert!(t.begin("a@b.c", ip).is_err());
        assert!(t.check("other@b.c", ip).is_err(), "the address is throttled too");
        assert!(t.check("other@b.c", "127.0.0.2".parse().unwrap()).is_ok());
    }
}
