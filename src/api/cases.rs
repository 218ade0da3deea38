//! Cases (`/api/cases`): find, read, open, change (at the version read),
//! comment, and a case's attachments.

use warden_core::cases::{
    Attachment, AttachmentRequest, AttachmentsFindResponse, Case, CaseOwner, CasePatch, CasePostRequest, CaseSortField, CaseStatus,
    CasesFindResponse, CasesPatchRequest, MAX_COMMENTS_PER_PAGE, MAX_DOCS_PER_PAGE, SortOrder,
};
use warden_core::paths;

use super::{ApiError, ApiResult};

/// One page of the case list, as the cases page asks for it.
pub struct CasesQuery<'a> {
    pub status: Option<CaseStatus>,
    /// Text in the title or description; empty for all.
    pub search: &'a str,
    pub sort: CaseSortField,
    pub order: SortOrder,
    pub page: usize,
    pub per_page: usize,
}

/// The page, with the counts by status of the cases the other filters match.
pub async fn find(query: &CasesQuery<'_>) -> ApiResult<CasesFindResponse> {
    let (page, per_page) = (query.page.to_string(), query.per_page.to_string());
    let mut params =
        vec![("page", page.as_str()), ("perPage", per_page.as_str()), ("sortField", query.sort.as_str()), ("sortOrder", query.order.as_str())];
    params.extend(query.status.map(|s| ("status", s.as_str())));
    params.extend(Some(query.search.trim()).filter(|s| !s.is_empty()).map(|s| ("search", s)));
    super::get(&paths::with_query(paths::CASES_FIND, &params)).await
}

pub async fn get(id: &str) -> ApiResult<Case> {
    super::get(&paths::case(id)).await
}

pub async fn create(request: &CasePostRequest) -> ApiResult<Case> {
    super::post(paths::CASES, request).await
}

/// Changes one case at the version in `patch`; a stale version is a 409
/// with the server's message.
pub async fn update(patch: CasePatch) -> ApiResult<Case> {
    let changed: Vec<Case> = super::patch(paths::CASES, &CasesPatchRequest { cases: vec![patch] }).await?;
    changed.into_iter().next().ok_or_else(|| ApiError { status: 0, message: "Unexpected answer from Warden: no case changed".into() })
}

/// Adds a user comment; answers the case with all its attachments.
pub async fn comment(id: &str, comment: String, owner: CaseOwner) -> ApiResult<Case> {
    super::post(&paths::case_comments(id), &AttachmentRequest::User { comment, owner }).await
}

/// Every attachment of the case (comments and alerts), oldest first, read a
/// page of 100 at a time.
pub async fn attachments(id: &str) -> ApiResult<Vec<Attachment>> {
    let per_page = MAX_COMMENTS_PER_PAGE.to_string();
    let mut all: Vec<Attachment> = Vec::new();
    for page in 1..=MAX_DOCS_PER_PAGE / MAX_COMMENTS_PER_PAGE {
        let url = paths::with_query(
            &paths::case_comments_find(id),
            &[("page", &page.to_string()), ("perPage", &per_page), ("sortOrder", SortOrder::Asc.as_str())],
        );
        let found: AttachmentsFindResponse = super::get(&url).await?;
        let last = found.comments.len() < MAX_COMMENTS_PER_PAGE;
        all.extend(found.comments);
        if last || all.len() as u64 >= found.total {
            break;
        }
    }
    Ok(all)
}

/// The signed-in user's id, as the cases they opened show it (`created_by.profile_uid`):
/// Warden's session route does not tell it, and the user list needs users:admin.
pub async fn own_uid(username: &str) -> ApiResult<Option<String>> {
    let url = paths::with_query(paths::CASES_FIND, &[("reporters", username), ("perPage", "1")]);
    let found: CasesFindResponse = super::get(&url).await?;
    Ok(found.cases.into_iter().find_map(|case| case.created_by.profile_uid.filter(|_| case.created_by.username == username)))
}
