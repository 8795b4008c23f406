//! An organisation's members as its managers see and change them: the store
//! side of users management ([`crate::users`] is the HTTP side), and the
//! module access a membership grants ([`Module`]).
//!
//! Every query is scoped by organisation, so another organisation's user is
//! indistinguishable from a missing one. Every change is written with its
//! audit entry in one transaction, and nothing here reads or returns a
//! secret (password hashes, TOTP seeds, the phone number).
//!
//! An organisation keeps at least one manager: a change that would leave it
//! with none is refused ([`MemberError::LastManager`]), checked in the
//! changing statement itself so that two managers demoting each other at
//! once cannot both succeed. Removing a membership leaves the account (it
//! may belong to other organisations; with none left it can no longer log
//! in) and ends its sessions in that organisation.

use serde::{Deserialize, Serialize};
use sqlx::{Row, Sqlite, SqlitePool, Transaction};
use utoipa::ToSchema;

use crate::accounts::{self, AccountError, TempPassword};
use crate::audit;
use crate::authz::{OrgId, Role};
use crate::second_factor::SecondFactor;

/// A licensed module a member may be given access to.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Module {
    /// PayLink: payment links sent to debtors.
    Paylink,
    /// E-Mandate: direct-debit mandates signed online.
    Emandate,
}

impl Module {
    /// Every module.
    pub const ALL: [Module; 2] = [Module::Paylink, Module::Emandate];

    /// The name stored in `portal_memberships.modules` and used in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Module::Paylink => "paylink",
            Module::Emandate => "emandate",
        }
    }
}

/// The modules of a stored comma-separated list, sorted, without
/// duplicates; names this version does not know are left out.
pub fn parse_modules(stored: &str) -> Vec<Module> {
    normalise(
        stored
            .split(',')
            .filter_map(|name| Module::ALL.into_iter().find(|m| m.as_str() == name.trim()))
            .collect(),
    )
}

/// The stored form of a module list (sorted, without duplicates).
pub fn modules_text(modules: &[Module]) -> String {
    normalise(modules.to_vec())
        .iter()
        .map(|m| m.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

fn normalise(mut modules: Vec<Module>) -> Vec<Module> {
    modules.sort();
    modules.dedup();
    modules
}

/// One member of an organisation, as its managers may see them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub user_id: i64,
    pub email: String,
    pub role: Role,
    pub modules: Vec<Module>,
    /// This organisation is the user's default (where a login starts).
    pub is_default: bool,
    /// The password is temporary (or was reset by a manager) and must be
    /// changed at the next login.
    pub must_change: bool,
    /// When the temporary password stops working.
    pub temp_expires_at: Option<i64>,
    pub password_changed_at: i64,
    pub second_factor: Option<SecondFactor>,
}

/// Errors of the members functions.
#[derive(Debug, thiserror::Error)]
pub enum MemberError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error(transparent)]
    Account(#[from] AccountError),
    /// No such user in this organisation.
    #[error("no such member")]
    NotFound,
    /// The change would leave the organisation without a manager.
    #[error("the organisation's last manager")]
    LastManager,
    /// The account already belongs to this organisation.
    #[error("already a member")]
    AlreadyMember,
}

macro_rules! member_select {
    ($tail:literal) => {
        concat!(
            "SELECT u.id, u.email, m.role, m.modules, u.default_org_id, u.must_change_password,
                    u.temp_expires_at, u.password_changed_at, u.second_factor
             FROM portal_memberships m JOIN portal_users u ON u.id = m.user_id
             WHERE m.org_id = ? ",
            $tail
        )
    };
}

fn member_from_row(org: OrgId, r: &sqlx::sqlite::SqliteRow) -> Result<Member, MemberError> {
    let role: String = r.try_get("role")?;
    let modules: String = r.try_get("modules")?;
    let default_org: Option<i64> = r.try_get("default_org_id")?;
    let factor: Option<String> = r.try_get("second_factor")?;
    Ok(Member {
        user_id: r.try_get("id")?,
        email: r.try_get("email")?,
        role: role.parse().map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
        modules: parse_modules(&modules),
        is_default: default_org == Some(org.0),
        must_change: r.try_get("must_change_password")?,
        temp_expires_at: r.try_get("temp_expires_at")?,
        password_changed_at: r.try_get("password_changed_at")?,
        second_factor: factor.as_deref().and_then(SecondFactor::parse),
    })
}

/// The members of `org`, by e-mail address.
pub async fn list(db: &SqlitePool, org: OrgId) -> Result<Vec<Member>, MemberError> {
    sqlx::query(member_select!("ORDER BY u.email COLLATE NOCASE, u.id"))
        .bind(org.0)
        .fetch_all(db)
        .await?
        .iter()
        .map(|r| member_from_row(org, r))
        .collect()
}

/// One member of `org`; [`MemberError::NotFound`] for a user of another
/// organisation too.
pub async fn get(db: &SqlitePool, org: OrgId, user_id: i64) -> Result<Member, MemberError> {
    sqlx::query(member_select!("AND m.user_id = ?"))
        .bind(org.0)
        .bind(user_id)
        .fetch_optional(db)
        .await?
        .as_ref()
        .map(|r| member_from_row(org, r))
        .transpose()?
        .ok_or(MemberError::NotFound)
}

/// What [`add`] did.
#[derive(Debug)]
pub struct Added {
    pub user_id: i64,
    /// The new account's temporary password, shown once; `None` when the
    /// address already had an account (it keeps its password).
    pub temporary_password: Option<TempPassword>,
    /// The address already had an account (in another organisation): only
    /// a membership was added.
    pub existing_account: bool,
}

/// Adds `email` to `org` with `role` and `modules`: a new account with a
/// temporary password ([`accounts::insert_user`]), or, if the address
/// already has an account, a membership of it. Audited in `org`
/// (`user.create` or `user.membership`, and `user.modules`).
pub async fn add(
    db: &SqlitePool,
    org: OrgId,
    email: &str,
    role: Role,
    modules: &[Module],
    actor: &str,
    now: i64,
) -> Result<Added, MemberError> {
    let modules = modules_text(modules);
    // A second round only if the address was taken between the look-up and
    // the insert.
    for _ in 0..2 {
        let existing: Option<i64> =
            sqlx::query_scalar("SELECT id FROM portal_users WHERE email = ?")
                .bind(email.trim())
                .fetch_optional(db)
                .await?;
        if let Some(user_id) = existing {
            add_membership(db, org, user_id, role, &modules, actor, now).await?;
            return Ok(Added {
                user_id,
                temporary_password: None,
                existing_account: true,
            });
        }
        let (password, hash) = accounts::new_temporary_password()?;
        let mut tx = db.begin().await?;
        let user_id =
            match accounts::insert_user(&mut tx, org, email, role, &hash, actor, now).await {
                Ok(id) => id,
                Err(AccountError::EmailTaken(_)) => continue,
                Err(e) => return Err(e.into()),
            };
        if !modules.is_empty() {
            set_modules(&mut tx, org, user_id, "", &modules, actor, now).await?;
        }
        tx.commit().await?;
        return Ok(Added {
            user_id,
            temporary_password: Some(password),
            existing_account: false,
        });
    }
    Err(MemberError::AlreadyMember)
}

async fn add_membership(
    db: &SqlitePool,
    org: OrgId,
    user_id: i64,
    role: Role,
    modules: &str,
    actor: &str,
    now: i64,
) -> Result<(), MemberError> {
    let mut tx = db.begin().await?;
    let added = sqlx::query(
        "INSERT INTO portal_memberships (user_id, org_id, role, modules) VALUES (?, ?, ?, ?)
         ON CONFLICT (user_id, org_id) DO NOTHING",
    )
    .bind(user_id)
    .bind(org.0)
    .bind(role.as_str())
    .bind(modules)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if added == 0 {
        return Err(MemberError::AlreadyMember);
    }
    // An account left without a default (its default organisation removed
    // it) starts its logins here.
    sqlx::query(
        "UPDATE portal_users SET default_org_id = ? WHERE id = ? AND default_org_id IS NULL",
    )
    .bind(org.0)
    .bind(user_id)
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut tx,
        audit::Entry {
            org,
            at: now,
            actor,
            action: "user.membership",
            target: &format!("user:{user_id}"),
            detail: &format!("role={role} modules={modules} existing_account"),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

async fn set_modules(
    tx: &mut Transaction<'_, Sqlite>,
    org: OrgId,
    user_id: i64,
    from: &str,
    to: &str,
    actor: &str,
    now: i64,
) -> Result<(), MemberError> {
    sqlx::query("UPDATE portal_memberships SET modules = ? WHERE user_id = ? AND org_id = ?")
        .bind(to)
        .bind(user_id)
        .bind(org.0)
        .execute(&mut **tx)
        .await?;
    audit::record(
        tx,
        audit::Entry {
            org,
            at: now,
            actor,
            action: "user.modules",
            target: &format!("user:{user_id}"),
            detail: &format!("from={from} to={to}"),
        },
    )
    .await?;
    Ok(())
}

/// Takes the database's write lock for the membership of `user_id` in
/// `org` at the start of a transaction (a write first, so that the reads
/// that follow cannot be overtaken by another writer); returns its role
/// and modules. [`MemberError::NotFound`] if there is no such membership.
async fn lock_membership(
    tx: &mut Transaction<'_, Sqlite>,
    org: OrgId,
    user_id: i64,
) -> Result<(Role, String), MemberError> {
    let row = sqlx::query(
        "UPDATE portal_memberships SET role = role WHERE user_id = ? AND org_id = ?
         RETURNING role, modules",
    )
    .bind(user_id)
    .bind(org.0)
    .fetch_optional(&mut **tx)
    .await?
    .ok_or(MemberError::NotFound)?;
    let role: String = row.try_get("role")?;
    Ok((
        role.parse().map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
        row.try_get("modules")?,
    ))
}

/// A change of a member's role and module access; `None` leaves it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Change {
    pub role: Option<Role>,
    pub modules: Option<Vec<Module>>,
}

/// Changes `user_id`'s role and modules in `org`, each audited
/// (`user.role`, `user.modules`) when it differs. Refuses to demote the
/// organisation's last manager.
pub async fn update(
    db: &SqlitePool,
    org: OrgId,
    user_id: i64,
    change: &Change,
    actor: &str,
    now: i64,
) -> Result<(), MemberError> {
    let mut tx = db.begin().await?;
    let (role, modules) = lock_membership(&mut tx, org, user_id).await?;
    if let Some(new_role) = change.role.filter(|r| *r != role) {
        let changed = sqlx::query(
            "UPDATE portal_memberships SET role = ?1 WHERE user_id = ?2 AND org_id = ?3
               AND (role <> 'manager' OR ?1 = 'manager'
                    OR (SELECT COUNT(*) FROM portal_memberships
                        WHERE org_id = ?3 AND role = 'manager') > 1)",
        )
        .bind(new_role.as_str())
        .bind(user_id)
        .bind(org.0)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if changed == 0 {
            return Err(MemberError::LastManager);
        }
        audit::record(
            &mut tx,
            audit::Entry {
                org,
                at: now,
                actor,
                action: "user.role",
                target: &format!("user:{user_id}"),
                detail: &format!("from={role} to={new_role}"),
            },
        )
        .await?;
    }
    if let Some(new) = &change.modules {
        let new = modules_text(new);
        if new != modules_text(&parse_modules(&modules)) {
            set_modules(&mut tx, org, user_id, &modules, &new, actor, now).await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

/// Removes `user_id`'s membership of `org`, audited (`user.remove`); ends
/// their sessions in `org` and clears it as their default organisation.
/// Refuses to remove the organisation's last manager.
pub async fn remove(
    db: &SqlitePool,
    org: OrgId,
    user_id: i64,
    actor: &str,
    now: i64,
) -> Result<(), MemberError> {
    let mut tx = db.begin().await?;
    let (role, _) = lock_membership(&mut tx, org, user_id).await?;
    let removed = sqlx::query(
        "DELETE FROM portal_memberships WHERE user_id = ?1 AND org_id = ?2
           AND (role <> 'manager'
                OR (SELECT COUNT(*) FROM portal_memberships
                    WHERE org_id = ?2 AND role = 'manager') > 1)",
    )
    .bind(user_id)
    .bind(org.0)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if removed == 0 {
        return Err(MemberError::LastManager);
    }
    sqlx::query("DELETE FROM portal_sessions WHERE user_id = ? AND org_id = ?")
        .bind(user_id)
        .bind(org.0)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "UPDATE portal_users SET default_org_id = NULL WHERE id = ? AND default_org_id = ?",
    )
    .bind(user_id)
    .bind(org.0)
    .execute(&mut *tx)
    .await?;
    audit::record(
        &mut tx,
        audit::Entry {
            org,
            at: now,
            actor,
            action: "user.remove",
            target: &format!("user:{user_id}"),
            detail: &format!("role={role}"),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Makes `org` the default organisation of `user_id` (where a login
/// starts), audited in `org` (`user.default_org`).
/// [`MemberError::NotFound`] if the user is not a member of `org`.
pub async fn set_default(
    db: &SqlitePool,
    user_id: i64,
    org: OrgId,
    now: i64,
) -> Result<(), MemberError> {
    let mut tx = db.begin().await?;
    let set = sqlx::query(
        "UPDATE portal_users SET default_org_id = ?1 WHERE id = ?2
           AND EXISTS (SELECT 1 FROM portal_memberships WHERE user_id = ?2 AND org_id = ?1)",
    )
    .bind(org.0)
    .bind(user_id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if set == 0 {
        return Err(MemberError::NotFound);
    }
    let actor = crate::authz::Credential::User(user_id).to_string();
    audit::record(
        &mut tx,
        audit::Entry {
            org,
            at: now,
            actor: &actor,
            action: "user.default_org",
            target: &format!("user:{user_id}"),
            detail: "",
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    #[test]
    fn modules_round_trip_sorted_and_deduplicated() {
        assert_eq!(parse_modules(""), []);
        assert_eq!(
            parse_modules("emandate,paylink,emandate,unknown"),
            [Module::Paylink, Module::Emandate]
        );
        assert_eq!(
            modules_text(&[Module::Emandate, Module::Paylink, Module::Emandate]),
            "paylink,emandate"
        );
        assert_eq!(
            serde_json::to_string(&Module::Emandate).unwrap(),
            "\"emandate\""
        );
    }

    async fn org_with_manager() -> (SqlitePool, OrgId, i64) {
        let db = crate::db::open_in_memory().await.unwrap();
        let org = accounts::create_organisation(&db, "a", 1).await.unwrap();
        let (id, _) = accounts::create_user(&db, org, "m@a.example", Role::Manager, "cli", 1)
            .await
            .unwrap();
        (db, org, id)
    }

    #[tokio::test]
    async fn the_last_manager_stays() {
        let (db, org, m1) = org_with_manager().await;
        let demote = Change {
            role: Some(Role::File),
            modules: None,
        };
        assert!(matches!(
            update(&db, org, m1, &demote, "t", 2).await,
            Err(MemberError::LastManager)
        ));
        assert!(matches!(
            remove(&db, org, m1, "t", 2).await,
            Err(MemberError::LastManager)
        ));
        let m2 = add(&db, org, "m2@a.example", Role::Manager, &[], "t", 2)
            .await
            .unwrap()
            .user_id;
        update(&db, org, m1, &demote, "t", 3).await.unwrap();
        assert!(matches!(
            remove(&db, org, m2, "t", 4).await,
            Err(MemberError::LastManager)
        ));
        remove(&db, org, m1, "t", 4).await.unwrap();
        assert!(matches!(
            get(&db, org, m1).await,
            Err(MemberError::NotFound)
        ));
    }

    #[tokio::test]
    async fn another_organisation_sees_no_member() {
        let (db, org, m1) = org_with_manager().await;
        let other = accounts::create_organisation(&db, "b", 1).await.unwrap();
        assert!(matches!(
            get(&db, other, m1).await,
            Err(MemberError::NotFound)
        ));
        let change = Change {
            role: Some(Role::Normal),
            modules: Some(vec![Module::Paylink]),
        };
        assert!(matches!(
            update(&db, other, m1, &change, "t", 2).await,
            Err(MemberError::NotFound)
        ));
        assert!(matches!(
            remove(&db, other, m1, "t", 2).await,
            Err(MemberError::NotFound)
        ));
        assert!(matches!(
            set_default(&db, m1, other, 2).await,
            Err(MemberError::NotFound)
        ));
        assert_eq!(get(&db, org, m1).await.unwrap().role, Role::Manager);
        assert!(crate::audit::list(&db, other, 10).await.unwrap().is_empty());
    }
}
