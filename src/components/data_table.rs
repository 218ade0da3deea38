//! Tables of records: typed columns, headers that sort (on the server, through
//! the page's URL), an empty state, and row actions as a column.

use std::sync::Arc;

use leptos::prelude::*;

/// One column: its header, the server's sort field if it sorts, and how a
/// record becomes a cell.
pub struct Column<T> {
    header: &'static str,
    /// Read to screen readers only (a column of row actions).
    header_hidden: bool,
    sort_field: Option<&'static str>,
    cell: Arc<dyn Fn(&T) -> AnyView + Send + Sync>,
}

impl<T> Column<T> {
    pub fn new<V: IntoView + 'static>(header: &'static str, cell: impl Fn(&T) -> V + Send + Sync + 'static) -> Column<T> {
        Column { header, header_hidden: false, sort_field: None, cell: Arc::new(move |row| cell(row).into_any()) }
    }

    /// The row's buttons; the header is read to screen readers only.
    pub fn actions<V: IntoView + 'static>(cell: impl Fn(&T) -> V + Send + Sync + 'static) -> Column<T> {
        Column { header_hidden: true, ..Column::new("Actions", cell) }
    }

    /// Its header is read to screen readers only (a column of checkboxes).
    pub fn header_hidden(self) -> Column<T> {
        Column { header_hidden: true, ..self }
    }

    /// Sorts by `field` (the server's name) when its header is clicked.
    pub fn sortable(self, field: &'static str) -> Column<T> {
        Column { sort_field: Some(field), ..self }
    }
}

/// A row's `data-testid` and `data-name`.
pub type RowId<T> = fn(&T) -> (String, String);

/// The sort the page shows and how to change it.
#[derive(Clone, Copy)]
pub struct Sorting {
    pub field: Signal<String>,
    pub descending: Signal<bool>,
    /// Called with the field whose header was clicked.
    pub on_sort: Callback<&'static str>,
}

#[component]
pub fn DataTable<T>(
    rows: Vec<T>,
    columns: Vec<Column<T>>,
    /// What an empty table says instead.
    #[prop(into)]
    empty: String,
    #[prop(optional)] sorting: Option<Sorting>,
    /// The table's `data-testid`.
    #[prop(optional)]
    testid: &'static str,
    /// Each row's `data-testid` and `data-name`, for tests and scripts.
    #[prop(optional)]
    row_id: Option<RowId<T>>,
) -> impl IntoView
where
    T: Send + Sync + 'static,
{
    if rows.is_empty() {
        return view! { <div class="state state-empty">{empty}</div> }.into_any();
    }
    let head = columns.iter().map(|column| header(column, sorting)).collect_view();
    let body = rows
        .iter()
        .map(|row| {
            let (testid, name) = row_id.map(|f| f(row)).unzip();
            let cells = columns.iter().map(|column| view! { <td>{(column.cell)(row)}</td> }).collect_view();
            view! { <tr data-testid=testid data-name=name>{cells}</tr> }
        })
        .collect_view();
    view! {
        <div class="table-scroll">
            <table class="table" data-testid=(!testid.is_empty()).then_some(testid)>
                <thead><tr>{head}</tr></thead>
                <tbody>{body}</tbody>
            </table>
        </div>
    }
    .into_any()
}

fn header<T>(column: &Column<T>, sorting: Option<Sorting>) -> AnyView {
    let label = column.header;
    match (column.sort_field, sorting) {
        (Some(field), Some(sorting)) => {
            let active = move || sorting.field.get() == field;
            let aria_sort = move || match (active(), sorting.descending.get()) {
                (false, _) => "none",
                (true, false) => "ascending",
                (true, true) => "descending",
            };
            view! {
                <th aria-sort=aria_sort>
                    <button type="button" class="th-sort" on:click=move |_| sorting.on_sort.run(field)>
                        {label}
                        {move || match aria_sort() { "ascending" => " ▲", "descending" => " ▼", _ => "" }}
                    </button>
                </th>
            }
            .into_any()
        }
        _ if column.header_hidden => view! { <th><span class="sr-only">{label}</span></th> }.into_any(),
        _ => view! { <th>{label}</th> }.into_any(),
    }
}
