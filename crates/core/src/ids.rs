//! Ids as their own types, so an agent's id is never passed where a policy's
//! is expected. Each travels as plain text (serde `transparent`, a string in
//! the OpenAPI document) and is converted at the store boundary.

use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(value_type = String))]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn new(id: impl Into<String>) -> $name {
                $name(id.into())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<String> for $name {
            fn from(id: String) -> $name {
                $name(id)
            }
        }

        impl From<&str> for $name {
            fn from(id: &str) -> $name {
                $name(id.to_owned())
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

id_type! {
    /// A Fleet agent (`agents.id`).
    AgentId
}

id_type! {
    /// An agent policy (`agent_policies.id`).
    PolicyId
}

id_type! {
    /// An action for an agent, or a bulk action's id (`agent_actions.id`).
    ActionId
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_travel_as_plain_text() {
        let id = AgentId::new("a-1");
        assert_eq!(serde_json::to_string(&id).ok().as_deref(), Some("\"a-1\""));
        assert_eq!(serde_json::from_str::<AgentId>("\"a-1\"").ok(), Some(id.clone()));
        assert_eq!(id.to_string(), "a-1");
        assert_eq!(PolicyId::from("p").as_str(), "p");
    }
}
