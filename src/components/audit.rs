//! The configuration audit trail (connectors and rules): who changed what, when.

use warden_core::actions::ConnectorChange;

use crate::components::data_table::Column;

/// The columns of an object's change history.
pub fn history_columns() -> Vec<Column<ConnectorChange>> {
    vec![
        Column::new("When", |c: &ConnectorChange| c.changed_at.clone()),
        Column::new("Who", |c: &ConnectorChange| c.changed_by.clone()),
        Column::new("Change", |c: &ConnectorChange| c.change.clone()),
        Column::new("What", |c: &ConnectorChange| c.summary.clone()),
    ]
}
