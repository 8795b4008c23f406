//! The authorisation core: roles, the action each endpoint performs, and the
//! one rule that decides whether a principal may perform it. Pure: no I/O,
//! no clock, so every role × action × organisation case is unit-tested.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// An organisation (account) id. Every query is scoped by one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(transparent)]
pub struct OrgId(pub i64);

/// A role within one organisation. Each includes every role before it, so
/// the derived ordering is the inclusion order:
/// Normal < Dashboard < Scheduler < File < Manager.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Sees its own account.
    Normal,
    /// Reads dashboards and statistics.
    Dashboard,
    /// Stops and starts voice campaigns.
    Scheduler,
    /// Uploads imports.
    File,
    /// Script settings, lists, users, API keys, holidays, blocklist, audit.
    Manager,
}

impl Role {
    /// Every role, lowest first.
    pub const ALL: [Role; 5] = [
        Role::Normal,
        Role::Dashboard,
        Role::Scheduler,
        Role::File,
        Role::Manager,
    ];

    /// The name stored in the database and used on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Normal => "normal",
            Role::Dashboard => "dashboard",
            Role::Scheduler => "scheduler",
            Role::File => "file",
            Role::Manager => "manager",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A role name that is not one of [`Role::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?} (expected normal, dashboard, scheduler, file or manager)")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Role, UnknownRole> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownRole(s.to_owned()))
    }
}

/// Who is calling: the organisation and role they act in, and the
/// credential that proved it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Principal {
    pub org: OrgId,
    pub role: Role,
    pub credential: Credential,
}

/// The credential behind a [`Principal`], named in the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    /// An API key (`X-AUTH-TOKEN`), by its row id.
    ApiKey(i64),
    /// A logged-in user (session cookie), by user id.
    User(i64),
}

impl fmt::Display for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credential::ApiKey(id) => write!(f, "apikey:{id}"),
            Credential::User(id) => write!(f, "user:{id}"),
        }
    }
}

/// What an endpoint does. One variant per kind of operation; every handler
/// names the one it performs before touching the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// `GET /api/v1/me`.
    ViewSelf,
    /// `GET /api/v1/apikeys`.
    ListApiKeys,
    /// `POST /api/v1/apikeys`.
    CreateApiKey,
    /// `DELETE /api/v1/apikeys/{id}`.
    RevokeApiKey,
    /// `GET /api/v1/audit`.
    ViewAudit,
    /// `POST /api/v1/me/password` (a session's own password).
    ChangeOwnPassword,
    /// `POST /api/v1/auth/switch-org` (to an organisation the user belongs
    /// to; the membership is checked by the handler).
    SwitchOrganisation,
    /// `POST /api/v1/me/2fa/*` (a session's own second factor).
    ManageOwnSecondFactor,
    // Files (issue 7 "Functions"): imports are the File role's; result
    // files too (the files a client exchanges with the platform); calls,
    // voicelogs, the blocklist and the calendar are the Manager's.
    /// `GET /api/v1/imports`, `GET /api/v1/imports/{id}`.
    ViewImports,
    /// `POST /api/v1/imports`.
    UploadImport,
    /// `POST /api/v1/imports/{id}/confirm`.
    ConfirmImport,
    /// `POST /api/v1/imports/{id}/cancel`.
    CancelImport,
    /// `GET /api/v1/imports/{id}/original`.
    DownloadImport,
    /// `GET /api/v1/result-files`, `GET /api/v1/result-files/{id}`.
    ViewResultFiles,
    /// `GET /api/v1/calls`.
    SearchCalls,
    /// `GET /api/v1/calls/{attempt}/voicelog`.
    PlayVoicelog,
    /// `GET /api/v1/blocklist`.
    ViewBlocklist,
    /// `POST /api/v1/blocklist`, `DELETE /api/v1/blocklist/{number}`.
    EditBlocklist,
    /// `GET /api/v1/calendar`.
    ViewCalendar,
    /// `PUT /api/v1/calendar`.
    EditCalendar,
    /// `GET /api/v1/dashboard`: the statistics dashboard. Normal users'
    /// welcome dashboard carries no statistics, so this needs Dashboard.
    ViewDashboard,
    /// `GET /api/v1/statistics`.
    ViewStatistics,
    /// `GET /api/v1/events` (the live statistics stream).
    WatchEvents,
    /// `POST /api/v1/scripts/{script}/pause|resume`,
    /// `.../forwarding/pause|resume`.
    ControlScript,
    // Users management: the Manager's, always in the caller's organisation.
    /// `GET /api/v1/users`.
    ListUsers,
    /// `POST /api/v1/users` (a new user, or a membership for an existing
    /// account).
    CreateUser,
    /// `PATCH /api/v1/users/{id}` (role and module access).
    EditUser,
    /// `DELETE /api/v1/users/{id}` (the membership).
    RemoveUser,
    /// `PUT /api/v1/me/default-organisation` (a session's own default, among
    /// its memberships; the membership is checked by the handler).
    SetOwnDefaultOrganisation,
    /// `GET /api/v1/scripts`: names and states only, as the dashboard
    /// shows them.
    ListScripts,
    /// `GET /api/v1/scripts/{script}/settings|flow|templates` and its
    /// prompt recordings (issue 7: script settings are the Manager's).
    ViewScript,
    /// `PATCH /api/v1/scripts/{script}/settings`.
    EditScriptSettings,
    /// `GET /api/v1/insights/voice` (statistics of all services).
    ViewInsights,
    /// `GET /api/v1/sms` (the SMS list, like the calls list).
    SearchSms,
    /// `GET /api/v1/emails` (the e-mail list, like the SMS list).
    SearchEmails,
}

impl Action {
    /// Every action, for exhaustive tests (and, later, the endpoint matrix).
    pub const ALL: [Action; 35] = [
        Action::ViewSelf,
        Action::ListApiKeys,
        Action::CreateApiKey,
        Action::RevokeApiKey,
        Action::ViewAudit,
        Action::ChangeOwnPassword,
        Action::SwitchOrganisation,
        Action::ManageOwnSecondFactor,
        Action::ViewImports,
        Action::UploadImport,
        Action::ConfirmImport,
        Action::CancelImport,
        Action::DownloadImport,
        Action::ViewResultFiles,
        Action::SearchCalls,
        Action::PlayVoicelog,
        Action::ViewBlocklist,
        Action::EditBlocklist,
        Action::ViewCalendar,
        Action::EditCalendar,
        Action::ViewDashboard,
        Action::ViewStatistics,
        Action::WatchEvents,
        Action::ControlScript,
        Action::ListUsers,
        Action::CreateUser,
        Action::EditUser,
        Action::RemoveUser,
        Action::SetOwnDefaultOrganisation,
        Action::ListScripts,
        Action::ViewScript,
        Action::EditScriptSettings,
        Action::ViewInsights,
        Action::SearchSms,
        Action::SearchEmails,
    ];

    /// The lowest role that may perform this action.
    pub fn min_role(self) -> Role {
        match self {
            Action::ViewSelf
            | Action::ChangeOwnPassword
            | Action::SwitchOrganisation
            | Action::ManageOwnSecondFactor
            | Action::SetOwnDefaultOrganisation => Role::Normal,
            Action::ViewImports
            | Action::UploadImport
            | Action::ConfirmImport
            | Action::CancelImport
            | Action::DownloadImport
            | Action::ViewResultFiles => Role::File,
            Action::ViewDashboard
            | Action::ViewStatistics
            | Action::WatchEvents
            | Action::ListScripts
            | Action::ViewInsights => Role::Dashboard,
            Action::ControlScript => Role::Scheduler,
            Action::ListApiKeys
            | Action::CreateApiKey
            | Action::RevokeApiKey
            | Action::ViewAudit
            | Action::SearchCalls
            | Action::PlayVoicelog
            | Action::ViewBlocklist
            | Action::EditBlocklist
            | Action::ViewCalendar
            | Action::EditCalendar
            | Action::ListUsers
            | Action::CreateUser
            | Action::EditUser
            | Action::RemoveUser
            | Action::ViewScript
            | Action::EditScriptSettings
            | Action::SearchSms
            | Action::SearchEmails => Role::Manager,
        }
    }
}

/// Why an action was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// The target belongs to another organisation.
    #[error("the resource belongs to another organisation")]
    OtherOrganisation,
    /// The principal's role is below what the action needs.
    #[error("this needs the {needed} role; the credential has {have}")]
    RoleTooLow { needed: Role, have: Role },
    /// The user is not a member of the organisation asked for.
    #[error("not a member of that organisation")]
    NotAMember,
    /// A principal may not hand out a role above its own.
    #[error("cannot grant the {wanted} role with a {have} credential")]
    GrantAboveOwn { wanted: Role, have: Role },
}

/// Decides whether `who` may perform `action` on something that belongs to
/// `target`. The organisation is checked first, so a caller learns nothing
/// about another organisation's resources from the role check.
pub fn allowed(who: &Principal, action: Action, target: OrgId) -> Result<(), Denied> {
    if who.org != target {
        return Err(Denied::OtherOrganisation);
    }
    let needed = action.min_role();
    if who.role < needed {
        return Err(Denied::RoleTooLow {
            needed,
            have: who.role,
        });
    }
    Ok(())
}

/// Decides whether `who` may create a credential with role `wanted` (API
/// keys, users, a member's new role): never above its own role.
pub fn may_grant(who: &Principal, wanted: Role) -> Result<(), Denied> {
    if wanted > who.role {
        return Err(Denied::GrantAboveOwn {
            wanted,
            have: who.role,
        });
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests may unwrap
mod tests {
    use super::*;

    const OWN: OrgId = OrgId(1);
    const OTHER: OrgId = OrgId(2);

    fn principal(role: Role) -> Principal {
        Principal {
            org: OWN,
            role,
            credential: Credential::ApiKey(7),
        }
    }

    #[test]
    fn roles_include_the_ones_before() {
        for w in Role::ALL.windows(2) {
            assert!(w[0] < w[1], "{} < {}", w[0], w[1]);
        }
    }

    #[test]
    fn role_names_round_trip() {
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>().unwrap(), r);
            assert_eq!(serde_json::to_string(&r).unwrap(), format!("\"{r}\""));
        }
        assert!("admin".parse::<Role>().is_err());
        assert!("Manager".parse::<Role>().is_err());
    }

    /// The whole matrix: every role × action × own/other organisation.
    #[test]
    fn every_role_action_and_organisation() {
        let expected = |role: Role, action: Action| match action {
            Action::ViewSelf
            | Action::ChangeOwnPassword
            | Action::SwitchOrganisation
            | Action::ManageOwnSecondFactor
            | Action::SetOwnDefaultOrganisation => true,
            Action::ViewImports
            | Action::UploadImport
            | Action::ConfirmImport
            | Action::CancelImport
            | Action::DownloadImport
            | Action::ViewResultFiles => role >= Role::File,
            Action::ViewDashboard
            | Action::ViewStatistics
            | Action::WatchEvents
            | Action::ListScripts
            | Action::ViewInsights => role >= Role::Dashboard,
            Action::ControlScript => role >= Role::Scheduler,
            Action::ListApiKeys
            | Action::CreateApiKey
            | Action::RevokeApiKey
            | Action::ViewAudit
            | Action::SearchCalls
            | Action::PlayVoicelog
            | Action::ViewBlocklist
            | Action::EditBlocklist
            | Action::ViewCalendar
            | Action::EditCalendar
            | Action::ListUsers
            | Action::CreateUser
            | Action::EditUser
            | Action::RemoveUser
            | Action::ViewScript
            | Action::EditScriptSettings
            | Action::SearchSms
            | Action::SearchEmails => role == Role::Manager,
        };
        for role in Role::ALL {
            let who = principal(role);
            for action in Action::ALL {
                let own = allowed(&who, action, OWN);
                if expected(role, action) {
                    assert_eq!(own, Ok(()), "{role} {action:?}");
                } else {
                    assert_eq!(
                        own,
                        Err(Denied::RoleTooLow {
                            needed: action.min_role(),
                            have: role
                        }),
                        "{role} {action:?}"
                    );
                }
                assert_eq!(
                    allowed(&who, action, OTHER),
                    Err(Denied::OtherOrganisation),
                    "{role} {action:?} on another organisation"
                );
            }
        }
    }

    #[test]
    fn grants_never_exceed_own_role() {
        for have in Role::ALL {
            for wanted in Role::ALL {
                let r = may_grant(&principal(have), wanted);
                assert_eq!(r.is_ok(), wanted <= have, "{have} grants {wanted}");
            }
        }
    }
}
