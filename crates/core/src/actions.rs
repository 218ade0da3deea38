//! The actions framework's shapes and rules: connectors and their types as
//! Kibana's `/api/actions` speaks them, system actions (built in, never
//! stored, hidden from the public lists, refused by the write routes), the
//! licence gate, and the outbound-call guard (`actions_allowed_hosts`, plus
//! link-local and cloud-metadata addresses refused unless named).

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::authz::{Privilege, Role, has_privilege};

crate::text_enum! {
    /// Warden's licence level (the `license` setting), lowest first, as Kibana's.
    License { Basic = "basic", Standard = "standard", Gold = "gold", Platinum = "platinum", Enterprise = "enterprise", Trial = "trial" }
}

impl License {
    /// Whether a feature needing `minimum` is enabled under this licence.
    /// Trial enables everything.
    pub fn allows(self, minimum: License) -> bool {
        self == License::Trial || self.rank() >= minimum.rank()
    }

    fn rank(self) -> u8 {
        match self {
            License::Basic => 0,
            License::Standard => 1,
            License::Gold => 2,
            License::Platinum => 3,
            License::Enterprise => 4,
            License::Trial => 5,
        }
    }
}

/// What the framework knows of a connector type, without its executor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectorTypeSpec {
    pub id: &'static str,
    pub name: &'static str,
    pub minimum_license: License,
    pub supported_feature_ids: &'static [&'static str],
    /// A system action: built in, no config or secrets, hidden from the public lists.
    pub is_system_action_type: bool,
    /// What the key's owner must hold for the framework to run it on their behalf.
    pub required_privileges: &'static [Privilege],
    /// Whether one rule may hold several actions of this system action type.
    pub allow_multiple_system_actions: bool,
}

pub const WEBHOOK: &str = ".webhook";
pub const EMAIL: &str = ".email";
pub const SERVER_LOG: &str = ".server-log";
pub const CASES: &str = ".cases";
/// Microsoft Defender for Endpoint: its config, params and wire types are in `crate::mde`.
pub const MICROSOFT_DEFENDER_ENDPOINT: &str = ".microsoft_defender_endpoint";
/// The system action that isolates the hosts a rule's alerts are about.
pub const ENDPOINT_RESPONSE: &str = ".endpoint-response";

/// Every connector type Warden knows, in the order the UI lists them.
pub const CONNECTOR_TYPES: &[ConnectorTypeSpec] = &[
    ConnectorTypeSpec {
        id: WEBHOOK,
        name: "Webhook",
        minimum_license: License::Gold,
        supported_feature_ids: &["alerting", "cases", "siem"],
        is_system_action_type: false,
        required_privileges: &[],
        allow_multiple_system_actions: false,
    },
    ConnectorTypeSpec {
        id: EMAIL,
        name: "Email",
        minimum_license: License::Gold,
        supported_feature_ids: &["alerting", "siem"],
        is_system_action_type: false,
        required_privileges: &[],
        allow_multiple_system_actions: false,
    },
    ConnectorTypeSpec {
        id: SERVER_LOG,
        name: "Server log",
        minimum_license: License::Basic,
        supported_feature_ids: &["alerting", "siem"],
        is_system_action_type: false,
        required_privileges: &[],
        allow_multiple_system_actions: false,
    },
    ConnectorTypeSpec {
        id: MICROSOFT_DEFENDER_ENDPOINT,
        name: "Microsoft Defender for Endpoint",
        minimum_license: License::Enterprise,
        // As Kibana's: for Security's response actions, not for rules' notifications.
        supported_feature_ids: &["endpointSecurity"],
        is_system_action_type: false,
        required_privileges: &[],
        allow_multiple_system_actions: false,
    },
    ConnectorTypeSpec {
        id: CASES,
        name: "Cases",
        minimum_license: License::Platinum,
        supported_feature_ids: &["alerting", "siem"],
        is_system_action_type: true,
        required_privileges: &[Privilege::CasesAll],
        allow_multiple_system_actions: false,
    },
    // Isolation needs Platinum (an MDE host: Enterprise, checked when it runs).
    ConnectorTypeSpec {
        id: ENDPOINT_RESPONSE,
        name: "Endpoint response",
        minimum_license: License::Platinum,
        supported_feature_ids: &["alerting", "siem"],
        is_system_action_type: true,
        required_privileges: &[Privilege::Isolate],
        allow_multiple_system_actions: false,
    },
];

pub fn connector_type(id: &str) -> Option<&'static ConnectorTypeSpec> {
    CONNECTOR_TYPES.iter().find(|spec| spec.id == id)
}

/// Whether rules may use connectors of this type: those for the `alerting`
/// feature (an `endpointSecurity` type such as MDE runs response actions only).
pub fn usable_in_rules(type_id: &str) -> bool {
    connector_type(type_id).is_none_or(|spec| spec.supported_feature_ids.contains(&"alerting"))
}

/// A type's name for people ("Webhook"), or its id if Warden does not know it.
pub fn connector_type_name(type_id: &str) -> &str {
    connector_type(type_id).map_or(type_id, |spec| spec.name)
}

/// The id of a system action: derived from its type alone, so every node
/// and every restart agree on it.
pub fn system_connector_id(type_id: &str) -> String {
    format!("system-connector-{type_id}")
}

/// The longest connector id a client may choose (Kibana's `CONNECTOR_ID_MAX_LENGTH`).
pub const CONNECTOR_ID_MAX_LENGTH: usize = 36;

/// A client-chosen id: 1 to 36 of letters, digits, `-` and `_`, and never the
/// system actions' prefix.
pub fn validate_connector_id(id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > CONNECTOR_ID_MAX_LENGTH {
        return Err(format!("[request params.id]: must be 1 to {CONNECTOR_ID_MAX_LENGTH} characters"));
    }
    if !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        return Err("[request params.id]: may contain only letters, digits, '-' and '_'".to_owned());
    }
    if id.starts_with("system-connector-") {
        return Err(format!("[request params.id]: {id} is reserved for system actions"));
    }
    Ok(())
}

/// What the connector write routes may be asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectorOperation {
    Create,
    Update,
    Delete,
    Execute,
}

impl ConnectorOperation {
    fn verb(self) -> &'static str {
        match self {
            ConnectorOperation::Create => "create",
            ConnectorOperation::Update => "update",
            ConnectorOperation::Delete => "delete",
            ConnectorOperation::Execute => "execute",
        }
    }
}

/// Why the API refuses an operation on a system action (a 400), or `None`.
/// Rules run system actions through the framework; nobody does it by hand.
pub fn system_action_refusal(spec: &ConnectorTypeSpec, operation: ConnectorOperation) -> Option<String> {
    spec.is_system_action_type.then(|| {
        format!(
            "System action {} cannot be {}d through the API: system actions are built into Warden, have no configuration, and run only from rules",
            spec.id,
            operation.verb()
        )
    })
}

/// Why a preconfigured connector may not exist (startup stops with it), or `None`.
pub fn preconfigured_refusal(id: &str, type_id: &str) -> Option<String> {
    match connector_type(type_id) {
        None => Some(format!("Preconfigured connector {id}: unknown connector type {type_id}")),
        Some(spec) if spec.is_system_action_type => {
            Some(format!("Preconfigured connector {id}: {type_id} is a system action type, which cannot be preconfigured"))
        }
        Some(_) => None,
    }
}

/// Why the API refuses to change a preconfigured connector (a 400): it lives
/// in the configuration file, as Kibana's message says.
pub fn preconfigured_write_refusal(id: &str, operation: ConnectorOperation) -> Option<String> {
    match operation {
        ConnectorOperation::Update | ConnectorOperation::Delete => Some(format!("Preconfigured action {id} is not allowed to {}.", operation.verb())),
        ConnectorOperation::Create | ConnectorOperation::Execute => None,
    }
}

/// Whether a user holding `roles` may use a system action of this type
/// (select it in a rule; have it run on their behalf).
pub fn may_use(spec: &ConnectorTypeSpec, roles: &[Role]) -> bool {
    spec.required_privileges.iter().all(|&privilege| has_privilege(roles, privilege))
}

/// The outbound-call guard: Kibana's `xpack.actions.allowedHosts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedHosts(Vec<String>);

impl Default for AllowedHosts {
    /// Any host (`["*"]`), as Kibana.
    fn default() -> AllowedHosts {
        AllowedHosts(vec!["*".to_owned()])
    }
}

impl AllowedHosts {
    pub fn new(hosts: impl IntoIterator<Item = String>) -> AllowedHosts {
        AllowedHosts(hosts.into_iter().map(|h| h.trim().to_ascii_lowercase()).filter(|h| !h.is_empty()).collect())
    }

    /// Whether `host` (a name or an address, without port) is named, exactly
    /// (case-insensitive) or by `*`.
    pub fn names(&self, host: &str) -> bool {
        let host = host.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
        self.0.iter().any(|allowed| allowed == "*" || *allowed == host)
    }

    /// Whether `host` is named explicitly, not through `*`.
    fn names_explicitly(&self, host: &str) -> bool {
        let host = host.trim_start_matches('[').trim_end_matches(']').to_ascii_lowercase();
        self.0.contains(&host)
    }

    /// The refusal for a URL whose host is not allowed (Kibana's message), or `None`.
    pub fn check_url(&self, url: &str, host: &str) -> Option<String> {
        (!self.names(host)).then(|| format!("target url \"{url}\" is not added to the Warden config actions_allowed_hosts"))
    }

    /// The refusal for a call that resolved `host` to `address`: link-local
    /// and cloud-metadata addresses are refused unless the address itself is
    /// named, whatever `*` or the host's name say (a named host may still
    /// resolve there).
    pub fn check_address(&self, url: &str, address: IpAddr) -> Option<String> {
        if is_link_local(address) && !self.names_explicitly(&address.to_string()) {
            return Some(format!(
                "target url \"{url}\" resolves to {address}, a link-local or cloud-metadata address; name that address in actions_allowed_hosts to allow it"
            ));
        }
        None
    }
}

/// Where cloud metadata services answer: 169.254.0.0/16 (IPv4 link-local),
/// fe80::/10, AWS's fd00:ec2::254, and 169.254/16 carried in IPv6 (mapped,
/// compatible, or NAT64's 64:ff9b::/96).
pub fn is_link_local(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => v4.is_link_local(),
        IpAddr::V6(v6) => {
            let segments = v6.segments();
            let nat64 = segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0];
            let embedded = v6.to_ipv4().filter(|_| segments[..6] == [0; 6] || v6.to_ipv4_mapped().is_some());
            let carried = embedded.or_else(|| nat64.then(|| std::net::Ipv4Addr::from(((segments[6] as u32) << 16) | segments[7] as u32)));
            carried.is_some_and(|v4| v4.is_link_local())
                || (segments[0] & 0xffc0) == 0xfe80
                || v6 == std::net::Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)
        }
    }
}

/// A connector as `GET /api/actions/connectors` lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Connector {
    pub id: String,
    pub name: String,
    pub connector_type_id: String,
    /// Left out for preconfigured connectors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub config: Option<Map<String, Value>>,
    pub is_preconfigured: bool,
    pub is_deprecated: bool,
    pub is_system_action: bool,
    /// Its secrets cannot be decrypted (the encryption key changed); left out for preconfigured connectors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_missing_secrets: Option<bool>,
    pub is_connector_type_deprecated: bool,
    /// How many rules use it; only in lists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referenced_by_count: Option<u64>,
}

/// A connector type as `GET /api/actions/connector_types` lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConnectorType {
    pub id: String,
    pub name: String,
    pub enabled: bool,
    pub enabled_in_config: bool,
    pub enabled_in_license: bool,
    pub minimum_license_required: License,
    pub supported_feature_ids: Vec<String>,
    pub is_system_action_type: bool,
    pub is_deprecated: bool,
    /// Only on system action types: whether a rule may hold several.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_multiple_system_actions: Option<bool>,
    pub source: String,
}

impl ConnectorType {
    pub fn of(spec: &ConnectorTypeSpec, license: License) -> ConnectorType {
        let enabled_in_license = license.allows(spec.minimum_license);
        ConnectorType {
            id: spec.id.to_owned(),
            name: spec.name.to_owned(),
            enabled: enabled_in_license,
            enabled_in_config: true,
            enabled_in_license,
            minimum_license_required: spec.minimum_license,
            supported_feature_ids: spec.supported_feature_ids.iter().map(|f| (*f).to_owned()).collect(),
            is_system_action_type: spec.is_system_action_type,
            is_deprecated: false,
            allow_multiple_system_actions: spec.is_system_action_type.then_some(spec.allow_multiple_system_actions),
            source: "stack".to_owned(),
        }
    }
}

/// `POST /api/actions/connector/{id?}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateConnectorRequest {
    pub name: String,
    pub connector_type_id: String,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub config: Map<String, Value>,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub secrets: Map<String, Value>,
}

/// `PUT /api/actions/connector/{id}`: the type cannot change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateConnectorRequest {
    pub name: String,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub config: Map<String, Value>,
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub secrets: Map<String, Value>,
}

/// `POST /api/actions/connector/{id}/_execute`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ExecuteConnectorRequest {
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub params: Map<String, Value>,
}

/// One line of a connector's change history: who changed what, never a secret's value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConnectorChange {
    /// `create`, `update` or `delete`.
    pub change: String,
    pub changed_by: String,
    /// RFC 3339.
    pub changed_at: String,
    /// What changed, by field name.
    pub summary: String,
}

/// One run of a connector, as its execution log lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConnectorExecution {
    pub connector_id: String,
    /// RFC 3339.
    pub started_at: String,
    pub duration_ms: u64,
    pub status: ExecutionStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<bool>,
    /// Who ran it: the user, or for a rule the owner of its key.
    pub actor: String,
    /// `api` (the Test tab, `_execute`) or the rule that fired it.
    pub source: String,
    /// The rule that scheduled it, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule_id: Option<String>,
}

crate::text_enum! {
    /// How an execution ended.
    ExecutionStatus { Ok = "ok", Error = "error" }
}

/// The answer of `_execute`, as Kibana's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ExecuteConnectorResponse {
    pub connector_id: String,
    pub status: ExecutionStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub data: Option<Value>,
    /// Whether (or when) it is worth trying again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<bool>,
}

impl ExecuteConnectorResponse {
    pub fn ok(connector_id: &str, data: Option<Value>) -> ExecuteConnectorResponse {
        ExecuteConnectorResponse {
            connector_id: connector_id.to_owned(),
            status: ExecutionStatus::Ok,
            message: None,
            service_message: None,
            data,
            retry: None,
        }
    }

    /// `message` says what failed, `service_message` what the other side said.
    pub fn failed(connector_id: &str, message: &str, service_message: Option<String>, retry: bool) -> ExecuteConnectorResponse {
        ExecuteConnectorResponse {
            connector_id: connector_id.to_owned(),
            status: ExecutionStatus::Error,
            message: Some(message.to_owned()),
            service_message,
            data: None,
            retry: Some(retry),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;

    #[test]
    fn licences_gate_types_from_their_minimum_up() {
        assert!(License::Basic.allows(License::Basic));
        assert!(!License::Basic.allows(License::Gold));
        assert!(License::Platinum.allows(License::Gold));
        assert!(!License::Platinum.allows(License::Enterprise));
        assert!(License::Trial.allows(License::Enterprise));
        let webhook = connector_type(WEBHOOK).map(|spec| ConnectorType::of(spec, License::Basic));
        assert_eq!(webhook.map(|t| (t.enabled_in_license, t.enabled)), Some((false, false)));
        let log = connector_type(SERVER_LOG).map(|spec| ConnectorType::of(spec, License::Basic));
        assert_eq!(log.map(|t| t.enabled_in_license), Some(true));
        let mde = connector_type(MICROSOFT_DEFENDER_ENDPOINT).expect("registered");
        assert_eq!((mde.name, mde.minimum_license, mde.is_system_action_type), ("Microsoft Defender for Endpoint", License::Enterprise, false));
        assert!(!ConnectorType::of(mde, License::Platinum).enabled_in_license);
        assert!(ConnectorType::of(mde, License::Enterprise).enabled_in_license && ConnectorType::of(mde, License::Trial).enabled_in_license);
        assert!(!usable_in_rules(MICROSOFT_DEFENDER_ENDPOINT) && usable_in_rules(WEBHOOK) && usable_in_rules(CASES));
    }

    #[test]
    fn system_actions_have_fixed_ids_and_are_refused_by_the_write_routes() {
        assert_eq!(system_connector_id(CASES), "system-connector-.cases");
        let cases = connector_type(CASES).expect("registered");
        for operation in [ConnectorOperation::Create, ConnectorOperation::Update, ConnectorOperation::Delete, ConnectorOperation::Execute] {
            let refusal = system_action_refusal(cases, operation).unwrap_or_default();
            assert!(refusal.contains(".cases") && refusal.contains(operation.verb()), "{refusal}");
        }
        let webhook = connector_type(WEBHOOK).expect("registered");
        assert_eq!(system_action_refusal(webhook, ConnectorOperation::Create), None);
        assert!(preconfigured_refusal("my-cases", CASES).is_some_and(|m| m.contains("my-cases") && m.contains("system action")));
        assert!(preconfigured_refusal("x", ".nope").is_some());
        assert_eq!(preconfigured_refusal("hook", WEBHOOK), None);
        assert_eq!(
            preconfigured_write_refusal("hook", ConnectorOperation::Delete).as_deref(),
            Some("Preconfigured action hook is not allowed to delete.")
        );
        assert_eq!(preconfigured_write_refusal("hook", ConnectorOperation::Execute), None);
    }

    #[test]
    fn system_actions_need_their_privileges() {
        let cases = connector_type(CASES).expect("registered");
        assert!(!may_use(cases, &[Role::Viewer]));
        assert!(may_use(cases, &[Role::T1Analyst]));
        let log = connector_type(SERVER_LOG).expect("registered");
        assert!(may_use(log, &[]));
    }

    #[test]
    fn client_ids_are_bounded_and_never_a_system_id() {
        assert!(validate_connector_id("my-hook_1").is_ok());
        assert!(validate_connector_id("").is_err());
        assert!(validate_connector_id(&"a".repeat(37)).is_err());
        assert!(validate_connector_id("a/b").is_err());
        assert!(validate_connector_id("system-connector-x").is_err());
    }

    #[test]
    fn allowed_hosts_name_hosts_or_everything() {
        let any = AllowedHosts::default();
        assert!(any.names("example.com"));
        let some = AllowedHosts::new(["Hooks.Example.com".to_owned(), "10.0.0.5".to_owned()]);
        assert!(some.names("hooks.example.com"));
        assert!(some.names("10.0.0.5"));
        assert!(!some.names("evil.example.com"));
        assert_eq!(
            some.check_url("https://evil.example.com/x", "evil.example.com").as_deref(),
            Some("target url \"https://evil.example.com/x\" is not added to the Warden config actions_allowed_hosts")
        );
        assert!(AllowedHosts::new([]).check_url("http://a/", "a").is_some(), "an empty list blocks every host");
    }

    #[test]
    fn link_local_and_metadata_addresses_need_naming() {
        let metadata = IpAddr::V4(Ipv4Addr::new(169, 254, 169, 254));
        assert!(is_link_local(metadata));
        assert!(is_link_local(IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1))));
        assert!(is_link_local(IpAddr::V6(Ipv4Addr::new(169, 254, 1, 1).to_ipv6_mapped())));
        assert!(!is_link_local(IpAddr::V4(Ipv4Addr::LOCALHOST)));
        assert!(!is_link_local(IpAddr::V6(Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 1))));
        assert!(is_link_local("fd00:ec2::254".parse().expect("address")), "AWS's IPv6 metadata service");
        assert!(is_link_local("64:ff9b::a9fe:a9fe".parse().expect("address")), "NAT64");
        assert!(is_link_local("::a9fe:a9fe".parse().expect("address")), "IPv4-compatible");
        assert!(!is_link_local("64:ff9b::7f00:1".parse().expect("address")));
        assert!(!is_link_local("::1".parse().expect("address")), "loopback is not an IPv4-compatible 0.0.0.1 here");
        let any = AllowedHosts::default();
        assert!(any.check_address("http://meta/", metadata).is_some(), "`*` does not cover metadata");
        assert!(any.check_address("http://127.0.0.1/", IpAddr::V4(Ipv4Addr::LOCALHOST)).is_none());
        let named = AllowedHosts::new(["169.254.169.254".to_owned()]);
        assert!(named.check_address("http://169.254.169.254/", metadata).is_none());
        let by_name = AllowedHosts::new(["meta.internal".to_owned()]);
        assert!(by_name.check_address("http://meta.internal/", metadata).is_some(), "a named host may still not resolve to metadata");
    }
}
