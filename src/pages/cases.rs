//! Cases: the list (status filters with their counts, search, sort and
//! paging on the server, in the URL), a form to open one, and one case with
//! its details, its status and assignees, and tabs for its alerts and its
//! comments. Reading needs cases:read; opening, changing and commenting need
//! cases:all, and every change is sent with the version read, so a change
//! made elsewhere in between is refused (409) and the case reloads.
//!
//! Assignees are user ids, and Warden tells the browser no user's id but in
//! what cases record (who opened, changed, closed or commented): the user
//! list needs users:admin and the session route has no id. So a case can be
//! assigned to the people it records, and "Assign to me" works once the
//! signed-in user's id is known that way (from this case, or from a case
//! they opened).

use std::collections::BTreeMap;

use leptos::Params;
use leptos::prelude::*;
use leptos_router::components::A;
use leptos_router::hooks::{use_navigate, use_params_map, use_query};
use leptos_router::params::Params;
use warden_core::authz::Privilege;
use warden_core::cases::{
    AlertRule, Assignee, Attachment, AttachmentBody, Case, CaseConnector, CaseOwner, CasePatch, CasePostRequest, CaseSettings, CaseSeverity,
    CaseSortField, CaseStatus, CaseUser, SortOrder, validate_comment, validate_description, validate_tags, validate_title,
};
use warden_core::paths;
use warden_core::rules::Alert;

use crate::api;
use crate::api::ApiError;
use crate::api::cases::CasesQuery;
use crate::app::href;
use crate::components::async_view::AsyncView;
use crate::components::data_table::{Column, DataTable, Sorting};
use crate::components::form::{Field, Select, TextArea};
use crate::components::pager::Pager;
use crate::components::states::{ErrorMessage, Loading};
use crate::components::status_badge::AlertStatusBadge;
use crate::components::tabs::{Tabs, current_tab};
use crate::components::time::{ago_text, span, span_since, use_now, utc_time};
use crate::components::toast::use_toasts;
use crate::components::tooltip::Tooltip;
use crate::live::{Topic, use_live};
use crate::pages::alerts::{agent_status, duration, host_link, rule_link};
use crate::session::use_session;

const PER_PAGE: usize = 20;
const ALERTS_PER_PAGE: usize = 20;
const TABS: &[(&str, &str)] = &[("alerts", "Alerts"), ("comments", "Comments")];
const SEVERITIES: [(&str, &str); 4] = [("low", "Low"), ("medium", "Medium"), ("high", "High"), ("critical", "Critical")];

fn may_edit() -> Signal<bool> {
    let session = use_session();
    Signal::derive(move || session.user().is_some_and(|u| u.can(Privilege::CasesAll)))
}

fn status_label(status: CaseStatus) -> &'static str {
    match status {
        CaseStatus::Open => "Open",
        CaseStatus::InProgress => "In progress",
        CaseStatus::Closed => "Closed",
    }
}

fn severity_label(severity: CaseSeverity) -> &'static str {
    match severity {
        CaseSeverity::Low => "Low",
        CaseSeverity::Medium => "Medium",
        CaseSeverity::High => "High",
        CaseSeverity::Critical => "Critical",
    }
}

#[component]
fn CaseStatusBadge(status: CaseStatus) -> impl IntoView {
    view! { <span class=format!("badge case-{}", status.as_str()) data-status=status.as_str()>{status_label(status)}</span> }
}

#[component]
fn SeverityBadge(severity: CaseSeverity) -> impl IntoView {
    view! { <span class=format!("badge severity-{}", severity.as_str()) title="Severity">{severity_label(severity)}</span> }
}

fn tag_list(tags: &[String]) -> impl IntoView + use<> {
    let tags = tags.iter().map(|tag| view! { <span class="tag">{tag.clone()}</span> }).collect_view();
    view! { <span class="tags">{tags}</span> }
}

fn who(user: &CaseUser) -> String {
    user.full_name.clone().filter(|n| !n.trim().is_empty()).unwrap_or_else(|| user.username.clone())
}

/// `name, 2026-11-24 14:03:12`, or `—`.
fn by_at(user: Option<&CaseUser>, at: Option<&str>) -> String {
    match (user, at) {
        (Some(user), Some(at)) => format!("{}, {}", who(user), utc_time(at)),
        (None, Some(at)) => utc_time(at),
        _ => "—".to_owned(),
    }
}

/// `/cases` and `/cases/:id`, one lazy module for both: the list, or the case
/// the path names.
#[component]
pub fn CasesArea() -> impl IntoView {
    let params = use_params_map();
    let one_case = Memo::new(move |_| params.with(|p| p.get("id").is_some()));
    move || if one_case.get() { view! { <CasePage /> }.into_any() } else { view! { <CasesPage /> }.into_any() }
}

// ---------------------------------------------------------------------------
// The list.

/// What the case list shows, as its URL says: `/cases?status=open&q=phish&page=2&sort=title&order=asc`.
#[derive(Params, Debug, Clone, PartialEq, Default)]
struct CasesView {
    status: Option<String>,
    q: Option<String>,
    page: Option<usize>,
    sort: Option<String>,
    order: Option<String>,
}

impl CasesView {
    fn page(&self) -> usize {
        self.page.unwrap_or(1).max(1)
    }

    fn status(&self) -> Option<CaseStatus> {
        self.status.as_deref().and_then(CaseStatus::parse)
    }

    fn sort(&self) -> CaseSortField {
        self.sort.as_deref().and_then(CaseSortField::parse).unwrap_or(CaseSortField::CreatedAt)
    }

    fn order(&self) -> SortOrder {
        self.order.as_deref().and_then(SortOrder::parse).unwrap_or(SortOrder::Desc)
    }

    fn search(&self) -> &str {
        self.q.as_deref().unwrap_or_default()
    }

    /// The URL that shows this view; empty parts are left out.
    fn url(&self) -> String {
        let page = self.page.filter(|&p| p > 1).map(|p| p.to_string());
        let params: Vec<(&str, &str)> = [
            ("status", self.status().map(CaseStatus::as_str)),
            ("q", self.q.as_deref()),
            ("page", page.as_deref()),
            ("sort", self.sort.as_deref()),
            ("order", self.order.as_deref()),
        ]
        .into_iter()
        .filter_map(|(name, value)| Some((name, value.filter(|v| !v.trim().is_empty())?)))
        .collect();
        paths::with_query("/cases", &params)
    }
}

/// The new-case form's fields and each one's error.
#[derive(Clone, Copy)]
struct NewCaseForm {
    title: RwSignal<String>,
    description: RwSignal<String>,
    /// Comma-separated.
    tags: RwSignal<String>,
    severity: RwSignal<String>,
    title_error: RwSignal<Option<String>>,
    description_error: RwSignal<Option<String>>,
    tags_error: RwSignal<Option<String>>,
}

impl NewCaseForm {
    fn new() -> NewCaseForm {
        NewCaseForm {
            title: RwSignal::new(String::new()),
            description: RwSignal::new(String::new()),
            tags: RwSignal::new(String::new()),
            severity: RwSignal::new(CaseSeverity::Low.as_str().to_owned()),
            title_error: RwSignal::new(None),
            description_error: RwSignal::new(None),
            tags_error: RwSignal::new(None),
        }
    }

    /// The request, checked field by field with the rules the server applies
    /// (each error shown next to its field), or `None` if one fails.
    fn request(&self) -> Option<CasePostRequest> {
        let title = validate_title(&self.title.get_untracked());
        let description = validate_description(&self.description.get_untracked());
        let tags: Vec<String> = self.tags.get_untracked().split(',').map(str::trim).filter(|t| !t.is_empty()).map(str::to_owned).collect();
        let tags = validate_tags(&tags);
        self.title_error.set(title.clone().err());
        self.description_error.set(description.clone().err());
        self.tags_error.set(tags.clone().err());
        Some(CasePostRequest {
            title: title.ok()?,
            description: description.ok()?,
            tags: tags.ok()?,
            connector: CaseConnector::none(),
            settings: CaseSettings { sync_alerts: false, extract_observables: None },
            owner: CaseOwner::SecuritySolution,
            assignees: None,
            severity: CaseSeverity::parse(&self.severity.get_untracked()),
            category: None,
            custom_fields: None,
        })
    }
}

#[component]
fn NewCasePanel(on_close: Callback<()>) -> impl IntoView {
    let form = NewCaseForm::new();
    let navigate = use_navigate();
    let toasts = use_toasts();
    let create = Action::new_local(move |request: &CasePostRequest| {
        let request = request.clone();
        async move { api::cases::create(&request).await }
    });
    Effect::new(move |_| {
        if let Some(Ok(case)) = create.value().get() {
            toasts.show("Case opened");
            navigate(&format!("/cases/{}", paths::encode(&case.id)), Default::default());
        }
    });
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if let Some(request) = form.request() {
            create.dispatch(request);
        }
    };
    view! {
        <form class="panel new-case" on:submit=on_submit aria-labelledby="new-case-title" novalidate>
            <h2 id="new-case-title">"New case"</h2>
            <div class="stack">
                <div class="case-form-row">
                    <Field label="Title" error=form.title_error>
                        <input name="title" required placeholder="Phishing wave on the finance team" bind:value=form.title />
                    </Field>
                    <Select label="Severity" name="severity" options=&SEVERITIES value=form.severity />
                </div>
                <TextArea label="Description" name="description" value=form.description rows=4 error=form.description_error
                    placeholder="What happened, what is known, what to do next" />
                <Field label="Tags (comma-separated)" error=form.tags_error>
                    <input name="tags" placeholder="phishing, finance" bind:value=form.tags />
                </Field>
            </div>
            {move || create.value().get().and_then(Result::err).map(|err| view! { <ErrorMessage message=err.message /> })}
            <div class="actions-row">
                <button type="button" class="button" on:click=move |_| on_close.run(())>"Cancel"</button>
                <button type="submit" class="button button-primary" disabled=move || create.pending().get()>"Open case"</button>
            </div>
        </form>
    }
}

const STATUS_CHIPS: [CaseStatus; 3] = [CaseStatus::Open, CaseStatus::InProgress, CaseStatus::Closed];

#[component]
fn CasesPage() -> impl IntoView {
    let may_edit = may_edit();
    let query = use_query::<CasesView>();
    let view_of = move || query.get().unwrap_or_default();
    let navigate = use_navigate();
    // Every change of filter is a navigation, so the URL always says what is shown.
    let show = Callback::new(move |next: CasesView| navigate(&next.url(), Default::default()));
    let changed = move |edit: fn(&mut CasesView, String), value: String| {
        let mut next = query.get_untracked().unwrap_or_default();
        edit(&mut next, value);
        show.run(next);
    };
    let live = use_live(Topic::Cases);
    let now = use_now();
    let cases = LocalResource::new(move || {
        live.track();
        let view = view_of();
        async move {
            let find = CasesQuery {
                status: view.status(),
                search: view.search(),
                sort: view.sort(),
                order: view.order(),
                page: view.page(),
                per_page: PER_PAGE,
            };
            api::cases::find(&find).await
        }
    });
    let creating = RwSignal::new(false);

    let search_input = RwSignal::new(view_of().q.unwrap_or_default());
    let on_search = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        changed(|v, q| (v.q, v.page) = (Some(q), None), search_input.get_untracked());
    };
    let sorting = Sorting {
        field: Signal::derive(move || view_of().sort().as_str().to_owned()),
        descending: Signal::derive(move || view_of().order() == SortOrder::Desc),
        on_sort: Callback::new(move |field: &'static str| {
            let mut next = query.get_untracked().unwrap_or_default();
            let ascending_now = next.sort().as_str() == field && next.order() == SortOrder::Asc;
            (next.sort, next.order) = (Some(field.to_owned()), Some(if ascending_now { "desc" } else { "asc" }.to_owned()));
            show.run(next);
        }),
    };
    let on_page = Callback::new(move |page: usize| changed(|v, p| v.page = p.parse().ok(), page.to_string()));

    let chip = move |status: Option<CaseStatus>, count: u64| {
        let value = status.map_or("", CaseStatus::as_str);
        view! {
            <button type="button" class="chip" data-testid=format!("case-status-{}", status.map_or("all", CaseStatus::as_str))
                aria-pressed=move || (view_of().status() == status).to_string()
                on:click=move |_| changed(|v, s| (v.status, v.page) = (Some(s), None), value.to_owned())>
                {status.map_or("All", status_label)} " " <span class="count">{count}</span>
            </button>
        }
    };
    let columns = move || {
        vec![
            Column::new("Title", |c: &Case| {
                let title = c.title.clone();
                view! { <A href=href(&format!("/cases/{}", paths::encode(&c.id)))>{title}</A> }
            })
            .sortable(CaseSortField::Title.as_str()),
            Column::new("Status", |c: &Case| view! { <CaseStatusBadge status=c.status /> }).sortable(CaseSortField::Status.as_str()),
            Column::new("Severity", |c: &Case| view! { <SeverityBadge severity=c.severity /> }).sortable(CaseSortField::Severity.as_str()),
            Column::new("Tags", |c: &Case| tag_list(&c.tags)),
            Column::new("Alerts", |c: &Case| c.total_alerts.to_string()),
            Column::new("Comments", |c: &Case| c.total_comment.to_string()),
            Column::new("Opened", move |c: &Case| {
                let (at, by) = (c.created_at.clone(), who(&c.created_by));
                let exact = utc_time(&at);
                view! { <span title=exact>{move || ago_text(Some(&at), now.get())}</span><div class="muted small">{by}</div> }
            })
            .sortable(CaseSortField::CreatedAt.as_str()),
            Column::new("Updated", move |c: &Case| {
                let at = c.updated_at.clone();
                move || ago_text(at.as_deref(), now.get())
            })
            .sortable(CaseSortField::UpdatedAt.as_str()),
        ]
    };

    view! {
        <section class="page">
            <div class="page-head">
                <div>
                    <h1>"Cases"</h1>
                    <p class="lead">"Investigations: the alerts they gather, who works on them, and how long they stayed open."</p>
                </div>
                <Show when=move || may_edit.get() && !creating.get()>
                    <button type="button" class="button button-primary" on:click=move |_| creating.set(true)>"New case"</button>
                </Show>
            </div>
            <Show when=move || may_edit.get() && creating.get()>
                <NewCasePanel on_close=Callback::new(move |()| creating.set(false)) />
            </Show>
            <form class="toolbar" on:submit=on_search role="search">
                <input type="search" class="grow" placeholder="Words in the title or description" aria-label="Search cases" bind:value=search_input />
                <button type="submit" class="button">"Search"</button>
            </form>
            <AsyncView resource=cases loading="Loading cases…" let:found>
                {
                    let view = view_of();
                    let counts = [found.count_open_cases, found.count_in_progress_cases, found.count_closed_cases];
                    let filtered = view.status().is_some() || !view.search().trim().is_empty();
                    let empty = if filtered { "No case matches these filters." } else { "No cases yet." };
                    view! {
                        <div class="chips" role="group" aria-label="Filter by status">
                            {chip(None, counts.iter().sum())}
                            {STATUS_CHIPS.into_iter().zip(counts).map(|(status, count)| chip(Some(status), count)).collect_view()}
                        </div>
                        <DataTable rows=found.cases columns=columns() empty sorting testid="cases"
                            row_id=|c: &Case| ("case-row".to_owned(), c.title.clone()) />
                        <Pager total=found.total as usize page=view.page() per_page=PER_PAGE on_page />
                    }
                }
            </AsyncView>
        </section>
    }
}

// ---------------------------------------------------------------------------
// One case.

/// The people a case records, by user id: who opened, changed or closed it
/// and who commented. The only user ids the browser can learn.
fn people(case: Option<&Case>, attachments: &[Attachment]) -> BTreeMap<String, CaseUser> {
    let recorded = case.into_iter().flat_map(|c| [Some(&c.created_by), c.updated_by.as_ref(), c.closed_by.as_ref()]);
    let commenters = attachments.iter().flat_map(|a| [Some(&a.created_by), a.updated_by.as_ref()]);
    recorded.chain(commenters).flatten().filter_map(|user| Some((user.profile_uid.clone()?, user.clone()))).collect()
}

/// The status changes offered from `status`, with their buttons' text.
fn status_moves(status: CaseStatus) -> &'static [(CaseStatus, &'static str)] {
    match status {
        CaseStatus::Open => &[(CaseStatus::InProgress, "Mark in progress"), (CaseStatus::Closed, "Close case")],
        CaseStatus::InProgress => &[(CaseStatus::Open, "Mark open"), (CaseStatus::Closed, "Close case")],
        CaseStatus::Closed => &[(CaseStatus::Open, "Reopen case")],
    }
}

/// What a successful change says.
fn change_message(patch: &CasePatch) -> String {
    match (patch.status, patch.severity, &patch.assignees) {
        (Some(CaseStatus::Closed), _, _) => "Case closed".to_owned(),
        (Some(CaseStatus::InProgress), _, _) => "Case marked in progress".to_owned(),
        (Some(CaseStatus::Open), _, _) => "Case open again".to_owned(),
        (_, Some(severity), _) => format!("Severity set to {}", severity_label(severity).to_lowercase()),
        (_, _, Some(_)) => "Assignees saved".to_owned(),
        _ => "Case saved".to_owned(),
    }
}

/// An alert the case holds, and what Warden still knows of it.
#[derive(Debug, Clone)]
struct AttachedAlert {
    alert_id: String,
    index: String,
    rule: AlertRule,
    attached_at: String,
    attached_by: CaseUser,
    /// The alert as it is now; an error when it is gone (404) or cannot be read.
    alert: Result<Alert, ApiError>,
}

/// Each alert id of the alert attachments once, in the order attached.
fn alert_refs(attachments: &[Attachment]) -> Vec<(String, String, AlertRule, &Attachment)> {
    let mut seen = std::collections::BTreeSet::new();
    let mut refs = Vec::new();
    for attachment in attachments {
        if let AttachmentBody::Alert { alert_id, index, rule, .. } = &attachment.body {
            let indices = index.to_vec();
            for (i, id) in alert_id.to_vec().into_iter().enumerate() {
                if seen.insert(id.clone()) {
                    let index = indices.get(i).or(indices.first()).cloned().unwrap_or_default();
                    refs.push((id, index, rule.clone(), attachment));
                }
            }
        }
    }
    refs
}

#[component]
fn CasePage() -> impl IntoView {
    let params = use_params_map();
    let id = move || params.with(|p| p.get("id").unwrap_or_default());
    let may_edit = may_edit();
    let session = use_session();
    let may_read_alerts = Signal::derive(move || session.user().is_some_and(|u| u.can(Privilege::RulesRead)));
    let username = Signal::derive(move || session.user().map(|u| u.username).unwrap_or_default());
    let tab = current_tab(TABS);
    let toasts = use_toasts();
    let now = use_now();
    let live = use_live(Topic::Cases);
    let rules_live = use_live(Topic::Rules);

    // Answers the change with its result, so the toast can say what changed.
    let patch = Action::new_local(move |patch: &CasePatch| {
        let patch = patch.clone();
        async move { (patch.clone(), api::cases::update(patch).await) }
    });
    let comment = Action::new_local(move |(text, owner): &(String, CaseOwner)| {
        let (id, text, owner) = (id(), text.clone(), *owner);
        async move { api::cases::comment(&id, text, owner).await }
    });
    // A refused change (409: changed elsewhere) reloads too, so the next try has the new version.
    let case = LocalResource::new(move || {
        live.track();
        patch.version().track();
        comment.version().track();
        let id = id();
        async move { api::cases::get(&id).await }
    });
    let attachments = LocalResource::new(move || {
        live.track();
        comment.version().track();
        let id = id();
        async move { api::cases::attachments(&id).await }
    });
    // The signed-in user's id, from a case they opened, when this case does not record them.
    let reported_uid = LocalResource::new(move || {
        let username = username.get();
        async move { if username.is_empty() { Ok(None) } else { api::cases::own_uid(&username).await } }
    });
    // Memos, so the panels change only when who the case records, or the
    // user's id, does. Made here, never inside the case's view: that view is
    // rebuilt on every reload, and what it owns goes with it while the old
    // one may still run once.
    let known_people = Memo::new(move |_| {
        let case = case.get().and_then(Result::ok);
        let attached = attachments.get().and_then(Result::ok).unwrap_or_default();
        people(case.as_ref(), &attached)
    });
    let my_uid = Memo::new(move |_| {
        let me = username.get();
        known_people
            .with(|people| people.iter().find(|(_, user)| user.username == me).map(|(uid, _)| uid.clone()))
            .or_else(|| reported_uid.get().and_then(Result::ok).flatten())
    });

    Effect::new(move |_| {
        if let Some((sent, Ok(_))) = patch.value().get() {
            toasts.show(change_message(&sent));
        }
    });
    let patch_error = Signal::derive(move || patch.value().get().and_then(|(_, result)| result.err()).map(|e| e.message));
    let patch_pending = patch.pending();

    let alerts_page = RwSignal::new(1_usize);
    let alert_rows = LocalResource::new(move || {
        rules_live.track();
        let page = alerts_page.get();
        let lookup = may_read_alerts.get();
        async move {
            // Awaiting the attachments makes this follow them.
            let attached = attachments.await?;
            let refs = alert_refs(&attached);
            let total = refs.len();
            let shown: Vec<_> = refs.into_iter().skip((page.max(1) - 1) * ALERTS_PER_PAGE).take(ALERTS_PER_PAGE).collect();
            let lookups = shown.iter().map(|(alert_id, ..)| {
                let alert_id = alert_id.clone();
                async move {
                    if lookup {
                        api::alerts::get(&alert_id).await
                    } else {
                        Err(ApiError { status: 403, message: "Alert details need rules:read".into() })
                    }
                }
            });
            let found = futures::future::join_all(lookups).await;
            let rows = shown
                .into_iter()
                .zip(found)
                .map(|((alert_id, index, rule, attachment), alert)| AttachedAlert {
                    alert_id,
                    index,
                    rule,
                    attached_at: attachment.created_at.clone(),
                    attached_by: attachment.created_by.clone(),
                    alert,
                })
                .collect::<Vec<_>>();
            Ok((rows, total))
        }
    });

    view! {
        <section class="page">
            <p><A href=href("/cases")>"← Cases"</A></p>
            <AsyncView resource=case loading="Loading case…" let:case>
                <CaseHeader case=case.clone() now />
                <div class="grid">
                    <CaseFacts case=case.clone() now />
                    <CaseWork case patch pending=patch_pending may_edit my_uid known_people error=patch_error />
                </div>
            </AsyncView>
            <Tabs label="Case" tabs=TABS current=tab>
                {move || match tab.get() {
                    "comments" => view! { <Comments attachments comment may_edit case /> }.into_any(),
                    _ => view! {
                        <AsyncView resource=alert_rows loading="Loading alerts…" let:found>
                            <DataTable rows=found.0 columns=attached_alert_columns(now) empty="No alerts are attached to this case."
                                testid="case-alerts" row_id=|a: &AttachedAlert| ("case-alert-row".to_owned(), a.alert_id.clone()) />
                            {(found.1 > ALERTS_PER_PAGE).then(|| view! {
                                <Pager total=found.1 page=alerts_page.get_untracked() per_page=ALERTS_PER_PAGE
                                    on_page=Callback::new(move |page| alerts_page.set(page)) />
                            })}
                        </AsyncView>
                    }.into_any(),
                }}
            </Tabs>
        </section>
    }
}

#[component]
fn CaseHeader(case: Case, now: ReadSignal<f64>) -> impl IntoView {
    let open_since = case.created_at.clone();
    let lasted = match (case.status, case.duration) {
        (CaseStatus::Closed, Some(secs)) => format!("Closed after {}", span(u64::try_from(secs).unwrap_or(0))).into_any(),
        _ => (move || format!("Open for {}", span_since(&open_since, now.get()))).into_any(),
    };
    view! {
        <h1 class="case-title">{case.title.clone()}</h1>
        <p class="case-badges">
            <CaseStatusBadge status=case.status />
            <SeverityBadge severity=case.severity />
            <span class="muted" data-testid="case-duration">{lasted}</span>
        </p>
        <p class="case-description">{case.description.clone()}</p>
    }
}

#[component]
fn CaseFacts(case: Case, now: ReadSignal<f64>) -> impl IntoView {
    let duration = match case.duration {
        Some(secs) => span(u64::try_from(secs).unwrap_or(0)),
        None => "— (still open)".to_owned(),
    };
    let opened_at = case.created_at.clone();
    view! {
        <div class="panel" data-testid="case-facts">
            <h2>"Details"</h2>
            <dl class="facts">
                <dt>"Status"</dt><dd><CaseStatusBadge status=case.status /></dd>
                <dt>"Severity"</dt><dd><SeverityBadge severity=case.severity /></dd>
                <dt>"Tags"</dt><dd>{if case.tags.is_empty() { "—".into_any() } else { tag_list(&case.tags).into_any() }}</dd>
                <dt>"Opened"</dt><dd>{by_at(Some(&case.created_by), Some(&case.created_at))} " "
                    <span class="muted">{move || format!("({})", ago_text(Some(&opened_at), now.get()))}</span></dd>
                <dt>"Updated"</dt><dd>{by_at(case.updated_by.as_ref(), case.updated_at.as_deref())}</dd>
                <dt>"Closed"</dt><dd data-testid="case-closed">{by_at(case.closed_by.as_ref(), case.closed_at.as_deref())}</dd>
                <dt>"Duration"</dt><dd data-testid="case-duration-fact">{duration}</dd>
                <dt>"Alerts"</dt><dd>{case.total_alerts}</dd>
                <dt>"Comments"</dt><dd>{case.total_comment}</dd>
            </dl>
        </div>
    }
}

/// Status, severity and assignees: controls for cases:all, facts for the rest.
#[component]
fn CaseWork(
    case: Case,
    patch: Action<CasePatch, (CasePatch, Result<Case, ApiError>)>,
    pending: Memo<bool>,
    may_edit: Signal<bool>,
    my_uid: Memo<Option<String>>,
    known_people: Memo<BTreeMap<String, CaseUser>>,
    error: Signal<Option<String>>,
) -> impl IntoView {
    // This panel's own values. When the case reloads, the panel is rebuilt
    // and these go while a closure of the old panel may still run once, so
    // they are read with `try_`, never a panicking read. Every signal the
    // closures read comes from the page, which outlives the panel.
    let base = StoredValue::new(CasePatch { id: case.id.clone(), version: case.version.clone(), ..CasePatch::default() });
    let send = move |edit: &dyn Fn(&mut CasePatch)| {
        if let Some(mut next) = base.try_get_value() {
            edit(&mut next);
            patch.dispatch(next);
        }
    };
    let assigned = StoredValue::new(case.assignees.iter().map(|a| a.uid.clone()).collect::<Vec<String>>());
    let assigned_now = move || assigned.try_get_value().unwrap_or_default();
    let set_assignees = move |uids: Vec<String>| {
        let assignees: Vec<Assignee> = uids.into_iter().map(|uid| Assignee { uid }).collect();
        send(&|p| p.assignees = Some(assignees.clone()));
    };
    let name_of = move |uid: &str| known_people.with(|people| people.get(uid).map(who));
    let status = case.status;
    let severity = case.severity;

    let assignee_list = move || {
        let uids = assigned_now();
        if uids.is_empty() {
            return view! { <p class="muted" data-testid="assignees">"Nobody is assigned."</p> }.into_any();
        }
        let items = uids
            .iter()
            .map(|uid| {
                let label = name_of(uid).unwrap_or_else(|| format!("user {}", uid.chars().take(8).collect::<String>()));
                let (uid, title) = (uid.clone(), uid.clone());
                let remove_label = format!("Unassign {label}");
                view! {
                    <li title=title>
                        <span>{label}</span>
                        <Show when=move || may_edit.get()>
                            {
                                let uid = uid.clone();
                                view! {
                                    <button type="button" class="button button-ghost button-small" aria-label=remove_label.clone()
                                        disabled=move || pending.get()
                                        on:click=move |_| set_assignees(assigned_now().into_iter().filter(|u| *u != uid).collect())>"×"</button>
                                }
                            }
                        </Show>
                    </li>
                }
            })
            .collect_view();
        view! { <ul class="assignees" data-testid="assignees">{items}</ul> }.into_any()
    };

    let choice = RwSignal::new(String::new());
    let assign_choice = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let uid = choice.get_untracked();
        if !uid.is_empty() {
            let mut uids = assigned_now();
            uids.push(uid);
            set_assignees(uids);
        }
    };
    let candidates = move || {
        let taken = assigned_now();
        known_people.get().into_iter().filter(|(uid, _)| !taken.contains(uid)).collect::<Vec<_>>()
    };

    view! {
        <div class="panel" data-testid="case-work">
            <h2>"Work"</h2>
            <Show when=move || may_edit.get() fallback=move || view! {
                <h3 class="subhead">"Assignees"</h3>
                {assignee_list}
                <p class="muted">"Changing a case needs cases:all."</p>
            }>
                <div class="actions-row actions-start" role="group" aria-label="Status">
                    {status_moves(status).iter().map(|&(to, label)| view! {
                        <button type="button" class=if to == CaseStatus::Closed { "button button-primary" } else { "button" }
                            disabled=move || pending.get()
                            on:click=move |_| send(&|p| p.status = Some(to))>{label}</button>
                    }).collect_view()}
                </div>
                <div class="narrow">
                    <Field label="Severity">
                        <select name="severity" disabled=move || pending.get()
                            on:change=move |ev| if let Some(to) = CaseSeverity::parse(&event_target_value(&ev)) { send(&|p| p.severity = Some(to)) }>
                            {SEVERITIES.iter().map(|&(value, label)| view! { <option value=value selected=severity.as_str() == value>{label}</option> }).collect_view()}
                        </select>
                    </Field>
                </div>
                <h3 class="subhead">"Assignees"</h3>
                {assignee_list}
                <div class="actions-row actions-start">
                    {move || {
                        let me = my_uid.get();
                        let mine = me.as_ref().is_some_and(|uid| assigned_now().contains(uid));
                        let unknown = me.is_none();
                        let why = unknown.then(|| "Warden knows your user id once you have opened, changed or commented on a case".to_owned());
                        (!mine).then(|| view! {
                            <Tooltip text=Signal::stored(why)>
                                <button type="button" class="button" disabled=move || unknown || pending.get()
                                    on:click=move |_| if let Some(uid) = my_uid.get_untracked() {
                                        let mut uids = assigned_now();
                                        uids.push(uid);
                                        set_assignees(uids);
                                    }>"Assign to me"</button>
                            </Tooltip>
                        })
                    }}
                </div>
                <Show when=move || !candidates().is_empty()>
                    <form class="toolbar" on:submit=assign_choice aria-label="Assign someone">
                        <label class="toolbar-field">
                            <span class="field-label">"Someone on this case"</span>
                            <select name="assignee" on:change=move |ev| choice.set(event_target_value(&ev))>
                                <option value="">"Choose…"</option>
                                {move || candidates().into_iter().map(|(uid, user)| view! { <option value=uid>{who(&user)}</option> }).collect_view()}
                            </select>
                        </label>
                        <button type="submit" class="button" disabled=move || pending.get()>"Assign"</button>
                    </form>
                </Show>
            </Show>
            {move || error.get().map(|message| view! { <div data-testid="case-error"><ErrorMessage message /></div> })}
        </div>
    }
}

fn attached_alert_columns(now: ReadSignal<f64>) -> Vec<Column<AttachedAlert>> {
    vec![
        Column::new("Alert", |a: &AttachedAlert| {
            let short: String = a.alert_id.chars().take(8).collect();
            view! { <code title=format!("{} in {}", a.alert_id, a.index)>{short}</code> }
        }),
        Column::new("Status", |a: &AttachedAlert| match &a.alert {
            Ok(alert) => view! { <AlertStatusBadge status=alert.status /> }.into_any(),
            Err(err) if err.status == 404 => {
                view! { <span class="badge alert-untracked" title="Its rule or the alert was deleted">"Gone"</span> }.into_any()
            }
            Err(err) => view! { <span class="muted small">{err.message.clone()}</span> }.into_any(),
        }),
        Column::new("Host", |a: &AttachedAlert| match &a.alert {
            Ok(alert) => host_link(alert).into_any(),
            Err(_) => "—".into_any(),
        }),
        Column::new("Agent status", |a: &AttachedAlert| match &a.alert {
            Ok(alert) => agent_status(alert).into_any(),
            Err(_) => "—".into_any(),
        }),
        Column::new("Rule", |a: &AttachedAlert| match (&a.alert, &a.rule.id) {
            (Ok(alert), _) => rule_link(&alert.rule_id, &alert.rule_name).into_any(),
            (Err(_), Some(rule_id)) => rule_link(rule_id, a.rule.name.as_deref().unwrap_or_default()).into_any(),
            (Err(_), None) => a.rule.name.clone().unwrap_or_else(|| "—".to_owned()).into_any(),
        }),
        Column::new("Duration", move |a: &AttachedAlert| match &a.alert {
            Ok(alert) => duration(alert, now).into_any(),
            Err(_) => "—".into_any(),
        }),
        Column::new("Attached", |a: &AttachedAlert| by_at(Some(&a.attached_by), Some(&a.attached_at))),
    ]
}

/// The comments, oldest first, and a form to add one.
#[component]
fn Comments(
    attachments: LocalResource<Result<Vec<Attachment>, ApiError>>,
    comment: Action<(String, CaseOwner), Result<Case, ApiError>>,
    may_edit: Signal<bool>,
    case: LocalResource<Result<Case, ApiError>>,
) -> impl IntoView {
    let text = RwSignal::new(String::new());
    let text_error = RwSignal::new(None::<String>);
    let toasts = use_toasts();
    Effect::new(move |_| {
        if let Some(Ok(_)) = comment.value().get() {
            text.set(String::new());
            toasts.show("Comment added");
        }
    });
    let on_submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        match validate_comment(&text.get_untracked()) {
            Err(message) => text_error.set(Some(message)),
            Ok(checked) => {
                text_error.set(None);
                let owner = case.get_untracked().and_then(Result::ok).map_or(CaseOwner::SecuritySolution, |c| c.owner);
                comment.dispatch((checked, owner));
            }
        }
    };
    view! {
        <AsyncView resource=attachments loading="Loading comments…" let:all>
            {
                let comments: Vec<_> = all.iter().filter_map(|a| match &a.body {
                    AttachmentBody::User { comment, .. } => Some((a.id.clone(), comment.clone(), who(&a.created_by), a.created_at.clone())),
                    AttachmentBody::Alert { .. } => None,
                }).collect();
                if comments.is_empty() {
                    view! { <div class="state state-empty">"No comments yet."</div> }.into_any()
                } else {
                    view! {
                        <ol class="comments" data-testid="comments">
                            {comments.into_iter().map(|(id, text, by, at)| view! {
                                <li data-id=id>
                                    <div class="comment-meta"><strong>{by}</strong> " " <time datetime=at.clone()>{utc_time(&at)}</time></div>
                                    <p class="comment-text">{text}</p>
                                </li>
                            }).collect_view()}
                        </ol>
                    }.into_any()
                }
            }
        </AsyncView>
        <Show when=move || may_edit.get()>
            <form class="panel comment-form" on:submit=on_submit aria-label="Add a comment" novalidate>
                <TextArea label="Comment" name="comment" value=text rows=3 error=text_error placeholder="What you found, what you did" />
                {move || comment.value().get().and_then(Result::err).map(|err| view! { <ErrorMessage message=err.message /> })}
                <div class="actions-row">
                    <button type="submit" class="button button-primary" disabled=move || comment.pending().get()>"Add comment"</button>
                </div>
            </form>
        </Show>
        {move || (!may_edit.get()).then(|| view! { <p class="muted">"Commenting needs cases:all."</p> })}
        {move || comment.pending().get().then(|| view! { <Loading label="Adding the comment…" /> })}
    }
}
