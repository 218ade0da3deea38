//! Roles and privileges: the one table the server enforces and the SPA uses to
//! hide what a user may not do. `docs/roles.md` documents it; keep them in step.

use serde::{Deserialize, Serialize};

/// A role a user holds, modelled on Kibana Security's predefined roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Viewer,
    T1Analyst,
    T2Analyst,
    T3Analyst,
    RuleAuthor,
    SocManager,
    PlatformEngineer,
    EndpointOperationsAnalyst,
    Superuser,
}

/// One thing a user may do. Serialized as `area:verb`, e.g. `fleet:all`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Privilege {
    #[serde(rename = "fleet:read")]
    FleetRead,
    #[serde(rename = "fleet:all")]
    FleetAll,
    /// See the response-action history.
    #[serde(rename = "response_actions_log:read")]
    ResponseActionsLogRead,
    #[serde(rename = "response:isolate")]
    Isolate,
    #[serde(rename = "response:release")]
    Release,
    #[serde(rename = "response:processes")]
    Processes,
    #[serde(rename = "response:kill-process")]
    KillProcess,
    #[serde(rename = "response:suspend-process")]
    SuspendProcess,
    #[serde(rename = "response:get-file")]
    GetFile,
    #[serde(rename = "response:upload")]
    Upload,
    #[serde(rename = "response:execute")]
    Execute,
    #[serde(rename = "response:runscript")]
    Runscript,
    #[serde(rename = "response:scan")]
    Scan,
    #[serde(rename = "response:memory-dump")]
    MemoryDump,
    /// Read the scripts library `runscript` picks from.
    #[serde(rename = "scripts_library:read")]
    ScriptsLibraryRead,
    /// Add, change and remove scripts of the library.
    #[serde(rename = "scripts_library:all")]
    ScriptsLibraryAll,
    #[serde(rename = "actions:read")]
    ActionsRead,
    #[serde(rename = "actions:all")]
    ActionsAll,
    #[serde(rename = "rules:read")]
    RulesRead,
    #[serde(rename = "rules:all")]
    RulesAll,
    #[serde(rename = "cases:read")]
    CasesRead,
    #[serde(rename = "cases:all")]
    CasesAll,
    #[serde(rename = "users:admin")]
    UsersAdmin,
    /// Create, list and invalidate one's own API keys.
    #[serde(rename = "api_keys:manage_own")]
    ApiKeysManageOwn,
    /// Run a background task now.
    #[serde(rename = "tasks:admin")]
    TasksAdmin,
}

impl Role {
    pub const ALL: [Role; 9] = [
        Role::Viewer,
        Role::T1Analyst,
        Role::T2Analyst,
        Role::T3Analyst,
        Role::RuleAuthor,
        Role::SocManager,
        Role::PlatformEngineer,
        Role::EndpointOperationsAnalyst,
        Role::Superuser,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::T1Analyst => "t1_analyst",
            Role::T2Analyst => "t2_analyst",
            Role::T3Analyst => "t3_analyst",
            Role::RuleAuthor => "rule_author",
            Role::SocManager => "soc_manager",
            Role::PlatformEngineer => "platform_engineer",
            Role::EndpointOperationsAnalyst => "endpoint_operations_analyst",
            Role::Superuser => "superuser",
        }
    }

    pub fn parse(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|role| role.as_str() == name)
    }

    /// What this role grants. Read the table in `docs/roles.md` beside it.
    pub fn privileges(self) -> &'static [Privilege] {
        use Privilege::*;
        match self {
            Role::Viewer => &[FleetRead, ResponseActionsLogRead, ActionsRead, RulesRead, CasesRead],
            Role::T1Analyst => &[FleetRead, ResponseActionsLogRead, ActionsRead, RulesRead, CasesAll, CasesRead, ApiKeysManageOwn],
            Role::T2Analyst => {
                &[FleetRead, ResponseActionsLogRead, ActionsRead, RulesRead, CasesAll, CasesRead, Isolate, Release, Processes, ApiKeysManageOwn]
            }
            Role::T3Analyst => &[
                FleetRead,
                ResponseActionsLogRead,
                ActionsRead,
                RulesRead,
                CasesAll,
                CasesRead,
                Isolate,
                Release,
                Processes,
                KillProcess,
                SuspendProcess,
                GetFile,
                Upload,
                Execute,
                Runscript,
                Scan,
                MemoryDump,
                ScriptsLibraryRead,
                ApiKeysManageOwn,
            ],
            Role::RuleAuthor => &[FleetRead, ResponseActionsLogRead, ActionsRead, RulesAll, RulesRead, CasesAll, CasesRead, ApiKeysManageOwn],
            Role::SocManager => &[
                FleetRead,
                ResponseActionsLogRead,
                ActionsAll,
                ActionsRead,
                RulesAll,
                RulesRead,
                CasesAll,
                CasesRead,
                Isolate,
                Release,
                Processes,
                KillProcess,
                SuspendProcess,
                GetFile,
                Upload,
                Execute,
                Runscript,
                Scan,
                MemoryDump,
                ScriptsLibraryRead,
                ScriptsLibraryAll,
                ApiKeysManageOwn,
            ],
            Role::PlatformEngineer => {
                &[FleetAll, FleetRead, ResponseActionsLogRead, ActionsAll, ActionsRead, RulesAll, RulesRead, CasesRead, ApiKeysManageOwn, TasksAdmin]
            }
            Role::EndpointOperationsAnalyst => &[
                FleetAll,
                FleetRead,
                ResponseActionsLogRead,
                ActionsRead,
                RulesRead,
                CasesAll,
                CasesRead,
                Isolate,
                Release,
                Processes,
                KillProcess,
                SuspendProcess,
                GetFile,
                Upload,
                Execute,
                Runscript,
                Scan,
                MemoryDump,
                ScriptsLibraryRead,
                ScriptsLibraryAll,
                ApiKeysManageOwn,
            ],
            Role::Superuser => Privilege::ALL,
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Role::parse(name).ok_or_else(|| {
            let known: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
            format!("unknown role `{name}`; expected one of: {}", known.join(", "))
        })
    }
}

impl Privilege {
    pub const ALL: &'static [Privilege] = &[
        Privilege::FleetRead,
        Privilege::FleetAll,
        Privilege::ResponseActionsLogRead,
        Privilege::Isolate,
        Privilege::Release,
        Privilege::Processes,
        Privilege::KillProcess,
        Privilege::SuspendProcess,
        Privilege::GetFile,
        Privilege::Upload,
        Privilege::Execute,
        Privilege::Runscript,
        Privilege::Scan,
        Privilege::MemoryDump,
        Privilege::ScriptsLibraryRead,
        Privilege::ScriptsLibraryAll,
        Privilege::ActionsRead,
        Privilege::ActionsAll,
        Privilege::RulesRead,
        Privilege::RulesAll,
        Privilege::CasesRead,
        Privilege::CasesAll,
        Privilege::UsersAdmin,
        Privilege::ApiKeysManageOwn,
        Privilege::TasksAdmin,
    ];
}

impl std::fmt::Display for Privilege {
    /// Its wire name (`cases:all`), read from the serde names so there is one list.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::String(name)) => f.write_str(&name),
            _ => write!(f, "{self:?}"),
        }
    }
}

/// The union of what `roles` grant, sorted and without repeats.
pub fn privileges_of(roles: &[Role]) -> Vec<Privilege> {
    let mut privileges: Vec<Privilege> = roles.iter().flat_map(|role| role.privileges().iter().copied()).collect();
    privileges.sort();
    privileges.dedup();
    privileges
}

/// Whether a user holding `roles` has `privilege`.
pub fn has_privilege(roles: &[Role], privilege: Privilege) -> bool {
    roles.iter().any(|role| role.privileges().contains(&privilege))
}

#[cfg(test)]
mod tests {
    use super::*;
    use Privilege::*;

    #[test]
    fn role_names_round_trip() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(role));
            let json = serde_json::to_string(&role).unwrap_or_default();
            assert_eq!(json, format!("\"{}\"", role.as_str()));
        }
        assert!("root".parse::<Role>().is_err_and(|e| e.contains("unknown role `root`")));
    }

    #[test]
    fn privilege_names_are_area_colon_verb() {
        for privilege in Privilege::ALL {
            let json = serde_json::to_string(privilege).unwrap_or_default();
            assert!(json.trim_matches('"').contains(':'), "{json}");
        }
    }

    #[test]
    fn superuser_has_everything() {
        assert_eq!(privileges_of(&[Role::Superuser]), Privilege::ALL.to_vec());
    }

    /// Every `:all` privilege comes with its `:read`, so a writer can always see
    /// what they change.
    #[test]
    fn all_implies_read() {
        for role in Role::ALL {
            for (all, read) in [
                (FleetAll, FleetRead),
                (ActionsAll, ActionsRead),
                (RulesAll, RulesRead),
                (CasesAll, CasesRead),
                (ScriptsLibraryAll, ScriptsLibraryRead),
            ] {
                if has_privilege(&[role], all) {
                    assert!(has_privilege(&[role], read), "{role} has {all:?} without {read:?}");
                }
            }
        }
    }

    /// The table, row by row: who may do what. A change here is a change to
    /// `docs/roles.md` too.
    #[test]
    fn role_table() {
        let cases: &[(Role, Privilege, bool)] = &[
            (Role::Viewer, FleetRead, true),
            (Role::Viewer, FleetAll, false),
            (Role::Viewer, Isolate, false),
            (Role::Viewer, CasesAll, false),
            (Role::Viewer, UsersAdmin, false),
            (Role::T1Analyst, CasesAll, true),
            (Role::T1Analyst, Isolate, false),
            (Role::T2Analyst, Isolate, true),
            (Role::T2Analyst, Release, true),
            (Role::T2Analyst, KillProcess, false),
            (Role::T2Analyst, Execute, false),
            (Role::T3Analyst, Execute, true),
            (Role::T3Analyst, RulesAll, false),
            (Role::T3Analyst, FleetAll, false),
            (Role::RuleAuthor, RulesAll, true),
            (Role::RuleAuthor, ActionsAll, false),
            (Role::RuleAuthor, Isolate, false),
            (Role::SocManager, ActionsAll, true),
            (Role::SocManager, FleetAll, false),
            (Role::SocManager, UsersAdmin, false),
            (Role::PlatformEngineer, FleetAll, true),
            (Role::PlatformEngineer, Isolate, false),
            (Role::EndpointOperationsAnalyst, FleetAll, true),
            (Role::EndpointOperationsAnalyst, MemoryDump, true),
            (Role::EndpointOperationsAnalyst, RulesAll, false),
            (Role::Superuser, UsersAdmin, true),
            (Role::Viewer, ApiKeysManageOwn, false),
            (Role::T1Analyst, ApiKeysManageOwn, true),
            (Role::EndpointOperationsAnalyst, ApiKeysManageOwn, true),
            (Role::PlatformEngineer, TasksAdmin, true),
            (Role::SocManager, TasksAdmin, false),
            (Role::Superuser, TasksAdmin, true),
            (Role::T2Analyst, ScriptsLibraryRead, false),
            (Role::T3Analyst, ScriptsLibraryRead, true),
            (Role::T3Analyst, ScriptsLibraryAll, false),
            (Role::SocManager, ScriptsLibraryAll, true),
            (Role::EndpointOperationsAnalyst, ScriptsLibraryAll, true),
        ];
        for &(role, privilege, expected) in cases {
            assert_eq!(has_privilege(&[role], privilege), expected, "{role} / {privilege:?}");
        }
    }

    #[test]
    fn roles_combine_as_a_union() {
        let both = privileges_of(&[Role::RuleAuthor, Role::T2Analyst]);
        assert!(both.contains(&RulesAll));
        assert!(both.contains(&Isolate));
        assert!(!both.contains(&FleetAll));
        assert!(privileges_of(&[]).is_empty());
    }
}

/// The areas of the app, in navigation order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Console,
    ResponseActions,
    Fleet,
    Rules,
    Alerts,
    Cases,
    Connectors,
    Tasks,
}

/// Privileges that let a user run at least one response command; the console
/// is offered to whoever holds any of them (Kibana's canAccessResponseConsole).
pub const CONSOLE_COMMAND_PRIVILEGES: &[Privilege] = &[
    Privilege::Isolate,
    Privilege::Release,
    Privilege::Processes,
    Privilege::KillProcess,
    Privilege::SuspendProcess,
    Privilege::GetFile,
    Privilege::Upload,
    Privilege::Execute,
    Privilege::Runscript,
    Privilege::Scan,
    Privilege::MemoryDump,
];

impl Section {
    pub const ALL: [Section; 8] = [
        Section::Console,
        Section::ResponseActions,
        Section::Fleet,
        Section::Rules,
        Section::Alerts,
        Section::Cases,
        Section::Connectors,
        Section::Tasks,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Section::Console => "Console",
            Section::ResponseActions => "Response actions",
            Section::Fleet => "Fleet",
            Section::Rules => "Rules",
            Section::Alerts => "Alerts",
            Section::Cases => "Cases",
            Section::Connectors => "Connectors",
            Section::Tasks => "Tasks",
        }
    }

    /// The SPA route, relative to the base path.
    pub fn path(self) -> &'static str {
        match self {
            Section::Console => "/console",
            Section::ResponseActions => "/response-actions",
            Section::Fleet => "/fleet",
            Section::Rules => "/rules",
            Section::Alerts => "/alerts",
            Section::Cases => "/cases",
            Section::Connectors => "/connectors",
            Section::Tasks => "/tasks",
        }
    }

    /// Whether someone with `privileges` may open this section.
    pub fn visible_to(self, privileges: &[Privilege]) -> bool {
        let has = |p: Privilege| privileges.contains(&p);
        match self {
            Section::Console => CONSOLE_COMMAND_PRIVILEGES.iter().any(|p| has(*p)),
            Section::ResponseActions => has(Privilege::ResponseActionsLogRead),
            Section::Fleet => has(Privilege::FleetRead),
            // Alerts are rules' output: whoever may read rules may read them.
            Section::Rules | Section::Alerts => has(Privilege::RulesRead),
            Section::Cases => has(Privilege::CasesRead),
            Section::Connectors => has(Privilege::ActionsRead),
            // Task health is read-only and concerns everyone on shift.
            Section::Tasks => true,
        }
    }
}

#[cfg(test)]
mod section_tests {
    use super::*;

    fn sections(role: Role) -> Vec<Section> {
        let privileges = privileges_of(&[role]);
        Section::ALL.into_iter().filter(|s| s.visible_to(&privileges)).collect()
    }

    #[test]
    fn console_only_for_responders() {
        assert!(!sections(Role::Viewer).contains(&Section::Console));
        assert!(!sections(Role::T1Analyst).contains(&Section::Console));
        assert!(!sections(Role::PlatformEngineer).contains(&Section::Console));
        assert!(sections(Role::T2Analyst).contains(&Section::Console));
        assert!(sections(Role::EndpointOperationsAnalyst).contains(&Section::Console));
    }

    #[test]
    fn superuser_sees_everything_and_nobody_sees_nothing() {
        assert_eq!(sections(Role::Superuser), Section::ALL.to_vec());
        assert_eq!(Section::ALL.into_iter().filter(|s| s.visible_to(&[])).collect::<Vec<_>>(), vec![Section::Tasks]);
    }
}
