//! Cases (`/api/cases`, Kibana's shapes): open, read, change with the
//! version read (racing edits: one wins, one gets the 409), find with filters
//! and paging, delete, comments and alert attachments with their bounds, and
//! every refusal with Kibana's message.

use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};
use warden_core::paths;

use crate::helpers::{TestApp, assert_error, spawn_app};

fn new_case(title: &str) -> Value {
    json!({
        "title": title,
        "description": format!("About {title}"),
        "tags": ["soc"],
        "connector": {"id": "none", "name": "none", "type": ".none", "fields": null},
        "settings": {"syncAlerts": true},
        "owner": "securitySolution",
    })
}

fn with(mut body: Value, key: &str, value: Value) -> Value {
    body[key] = value;
    body
}

async fn post(app: &TestApp, client: &Client, path: &str, body: &Value) -> Response {
    client.post(app.url(path)).header("kbn-xsrf", "t").json(body).send().await.unwrap()
}

async fn patch(app: &TestApp, client: &Client, cases: Value) -> Response {
    client.patch(app.url(paths::CASES)).header("kbn-xsrf", "t").json(&json!({"cases": cases})).send().await.unwrap()
}

async fn ok_json(response: Response) -> Value {
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn create(app: &TestApp, client: &Client, body: Value) -> Value {
    ok_json(post(app, client, paths::CASES, &body).await).await
}

async fn get_case(app: &TestApp, client: &Client, id: &str) -> Value {
    ok_json(client.get(app.url(&paths::case(id))).send().await.unwrap()).await
}

async fn find(app: &TestApp, client: &Client, query: &str) -> Value {
    ok_json(client.get(app.url(&format!("{}?{query}", paths::CASES_FIND))).send().await.unwrap()).await
}

fn titles(found: &Value) -> Vec<&str> {
    found["cases"].as_array().unwrap().iter().map(|c| c["title"].as_str().unwrap()).collect()
}

async fn comment(app: &TestApp, client: &Client, id: &str, body: Value) -> Response {
    post(app, client, &paths::case_comments(id), &body).await
}

fn alerts(ids: impl IntoIterator<Item = String>, owner: &str) -> Value {
    let ids: Vec<String> = ids.into_iter().collect();
    let indices = vec![".alerts-security.alerts-default"; ids.len()];
    json!({"type": "alert", "alertId": ids, "index": indices, "rule": {"id": "rule-1", "name": "Brute force"}, "owner": owner})
}

#[tokio::test]
async fn a_case_is_opened_and_read_in_kibanas_shape() {
    let app = spawn_app().await;
    let t1 = app.signed_in("t1").await;
    let created = create(&app, &t1, with(new_case("  Lateral movement  "), "category", json!("network"))).await;
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["title"], "Lateral movement", "trimmed");
    assert_eq!((created["status"].clone(), created["severity"].clone()), (json!("open"), json!("low")));
    assert_eq!(created["connector"], json!({"id": "none", "name": "none", "type": ".none", "fields": null}));
    assert_eq!(created["settings"], json!({"syncAlerts": true}));
    assert_eq!((created["assignees"].clone(), created["customFields"].clone(), created["observables"].clone()), (json!([]), json!([]), json!([])));
    assert_eq!(created["category"], "network");
    assert_eq!(created["created_by"]["username"], "t1");
    assert!(created["created_by"].get("email").is_some() && created["created_by"]["profile_uid"].is_string(), "{created}");
    for field in ["updated_at", "updated_by", "closed_at", "closed_by", "duration", "external_service"] {
        assert!(created[field].is_null(), "{field} starts null: {created}");
    }
    assert_eq!((created["totalComment"].clone(), created["totalAlerts"].clone(), created["totalEvents"].clone()), (json!(0), json!(0), json!(0)));
    assert!(created["version"].as_str().is_some_and(|v| !v.is_empty()));
    assert!(created.get("comments").is_none());

    // A viewer reads it, without comments, exactly as created.
    let viewer = app.signed_in("viewer").await;
    assert_eq!(get_case(&app, &viewer, &id).await, created);
    let message = assert_error(viewer.get(app.url(&paths::case("no-such-case"))).send().await.unwrap(), StatusCode::NOT_FOUND).await;
    assert_eq!(message, "Saved object [cases/no-such-case] not found");
    // Reading is not writing.
    assert_error(post(&app, &viewer, paths::CASES, &new_case("x")).await, StatusCode::FORBIDDEN).await;
    let platform = app.signed_in("platform").await;
    assert_error(post(&app, &platform, paths::CASES, &new_case("x")).await, StatusCode::FORBIDDEN).await;
    assert_eq!(get_case(&app, &platform, &id).await["id"], id.as_str());
}

#[tokio::test]
async fn an_invalid_case_is_refused_with_kibanas_message() {
    let app = spawn_app().await;
    let admin = app.signed_in("admin").await;
    let assignees: Vec<Value> = (0..11).map(|i| json!({"uid": format!("u{i}")})).collect();
    for (body, message) in [
        (with(new_case("x"), "title", json!("t".repeat(161))), "The length of the title is too long. The maximum length is 160."),
        (with(new_case("x"), "title", json!("   ")), "The title field cannot be an empty string."),
        (with(new_case("x"), "description", json!("d".repeat(30_001))), "The length of the description is too long. The maximum length is 30000."),
        (with(new_case("x"), "tags", json!(vec!["t"; 201])), "The length of the field tags is too long. Array must be of length <= 200."),
        (with(new_case("x"), "tags", json!(["t".repeat(257)])), "The length of the tag is too long. The maximum length is 256."),
        (with(new_case("x"), "assignees", json!(assignees)), "The length of the field assignees is too long. Array must be of length <= 10."),
        (with(new_case("x"), "category", json!("c".repeat(51))), "The length of the category is too long. The maximum length is 50."),
        (with(new_case("x"), "customFields", json!([{"key": "k", "type": "text", "value": "v"}])), "Invalid custom field keys: k"),
    ] {
        assert_eq!(assert_error(post(&app, &admin, paths::CASES, &body).await, StatusCode::BAD_REQUEST).await, message);
    }
    for (body, starts) in [
        (with(new_case("x"), "owner", json!("finance")), "[request body.owner]"),
        (with(new_case("x"), "severity", json!("urgent")), "[request body.severity]"),
        (with(new_case("x"), "foo", json!(1)), "[request body.foo]: unknown field `foo`"),
        (json!({"title": "x"}), "[request body]: missing field"),
    ] {
        let message = assert_error(post(&app, &admin, paths::CASES, &body).await, StatusCode::BAD_REQUEST).await;
        assert!(message.starts_with(starts), "{message}");
    }
    let jira = with(new_case("x"), "connector", json!({"id": "j", "name": "Jira", "type": ".jira", "fields": null}));
    assert!(assert_error(post(&app, &admin, paths::CASES, &jira).await, StatusCode::BAD_REQUEST).await.contains(".jira"));
    // Without kbn-xsrf, nothing.
    let response = admin.post(app.url(paths::CASES)).json(&new_case("x")).send().await.unwrap();
    assert_error(response, StatusCode::BAD_REQUEST).await;
    assert_eq!(find(&app, &admin, "").await["total"], 0);
}

#[tokio::test]
async fn a_patch_changes_the_version_read_and_refuses_as_kibana() {
    let app = spawn_app().await;
    let admin = app.signed_in("admin").await;
    let t1 = app.signed_in("t1").await;
    let created = create(&app, &admin, new_case("Phishing")).await;
    let (id, version) = (created["id"].as_str().unwrap().to_owned(), created["version"].clone());
    let other = create(&app, &admin, new_case("Other")).await;

    let changed = ok_json(
        patch(&app, &t1, json!([{"id": id, "version": version, "title": "Phishing wave", "severity": "high", "tags": ["soc", "mail"], "assignees": [{"uid": "u-1"}]}])).await,
    )
    .await;
    let changed = &changed[0];
    assert_eq!(
        (changed["title"].clone(), changed["severity"].clone(), changed["tags"].clone()),
        (json!("Phishing wave"), json!("high"), json!(["soc", "mail"]))
    );
    assert_eq!(changed["assignees"], json!([{"uid": "u-1"}]));
    assert_eq!(changed["updated_by"]["username"], "t1");
    assert!(changed["updated_at"].is_string());
    assert_ne!(changed["version"], version);
    assert_eq!(get_case(&app, &admin, &id).await["version"], changed["version"]);

    // The old version: 409 with Kibana's message, and nothing changes.
    let stale = patch(&app, &admin, json!([{"id": id, "version": version, "title": "Overwritten"}])).await;
    assert_eq!(
        assert_error(stale, StatusCode::CONFLICT).await,
        format!("These cases {id} have been updated. Please refresh before saving additional updates.")
    );
    let garbled = patch(&app, &admin, json!([{"id": id, "version": "not-a-version", "title": "Overwritten"}])).await;
    assert_error(garbled, StatusCode::CONFLICT).await;
    assert_eq!(get_case(&app, &admin, &id).await["title"], "Phishing wave");

    let version = changed["version"].clone();
    let unknown = patch(&app, &admin, json!([{"id": "nope", "version": version, "title": "x"}, {"id": id, "version": version, "title": "y"}])).await;
    assert_eq!(assert_error(unknown, StatusCode::NOT_FOUND).await, "These cases nope do not exist. Please check you have the correct ids.");
    let same = patch(&app, &admin, json!([{"id": id, "version": version, "title": " Phishing wave ", "owner": "securitySolution"}])).await;
    assert_eq!(assert_error(same, StatusCode::NOT_ACCEPTABLE).await, "All update fields are identical to current version.");
    let owner = patch(&app, &admin, json!([{"id": id, "version": version, "owner": "cases"}])).await;
    assert_eq!(assert_error(owner, StatusCode::BAD_REQUEST).await, format!("Updating the owner of a case is not allowed ids: [{id}]"));
    let too_long = patch(&app, &admin, json!([{"id": id, "version": version, "title": "t".repeat(161)}])).await;
    assert_eq!(assert_error(too_long, StatusCode::BAD_REQUEST).await, "The length of the title is too long. The maximum length is 160.");
    let none = patch(&app, &admin, json!([])).await;
    assert_eq!(assert_error(none, StatusCode::BAD_REQUEST).await, "The length of the field cases is too short. Array must be of length >= 1.");
    let many: Vec<Value> = (0..101).map(|i| json!({"id": format!("c{i}"), "version": "v", "title": "t"})).collect();
    let message = assert_error(patch(&app, &admin, json!(many)).await, StatusCode::BAD_REQUEST).await;
    assert_eq!(message, "The length of the field cases is too long. Array must be of length <= 100.");
    let twice = patch(&app, &admin, json!([{"id": id, "version": version, "title": "a"}, {"id": id, "version": version, "title": "b"}])).await;
    assert_error(twice, StatusCode::BAD_REQUEST).await;
    let unknown_field = patch(&app, &admin, json!([{"id": id, "version": version, "foo": 1}])).await;
    assert_error(unknown_field, StatusCode::BAD_REQUEST).await;
    // A viewer may not.
    assert_error(patch(&app, &app.signed_in("viewer").await, json!([{"id": id, "version": version, "title": "v"}])).await, StatusCode::FORBIDDEN)
        .await;

    // Two cases at once; one unchanged is left out of the answer.
    let both = patch(
        &app,
        &admin,
        json!([{"id": id, "version": version, "category": "mail"}, {"id": other["id"], "version": other["version"], "title": "Other"}]),
    )
    .await;
    let both = ok_json(both).await;
    assert_eq!(both.as_array().unwrap().len(), 1);
    assert_eq!(both[0]["category"], "mail");
    let cleared = ok_json(patch(&app, &admin, json!([{"id": id, "version": both[0]["version"], "category": null}])).await).await;
    assert!(cleared[0]["category"].is_null());
}

#[tokio::test]
async fn closing_records_who_when_and_how_long_and_reopening_clears_it() {
    let app = spawn_app().await;
    let admin = app.signed_in("admin").await;
    let created = create(&app, &admin, new_case("Ransomware")).await;
    let id = created["id"].as_str().unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let closed = ok_json(patch(&app, &admin, json!([{"id": id, "version": created["version"], "status": "closed"}])).await).await;
    let closed = &closed[0];
    assert_eq!(closed["status"], "closed");
    assert_eq!(closed["closed_by"]["username"], "admin");
    assert!(closed["closed_at"].is_string());
    assert!(closed["duration"].as_i64().is_some_and(|d| d >= 1), "{closed}");
    let reopened = ok_json(patch(&app, &admin, json!([{"id": id, "version": closed["version"], "status": "in-progress"}])).await).await;
    let reopened = &reopened[0];
    assert_eq!(reopened["status"], "in-progress");
    assert!(reopened["closed_at"].is_null() && reopened["closed_by"].is_null() && reopened["duration"].is_null(), "{reopened}");
}

#[tokio::test]
async fn racing_patches_of_one_version_give_one_success_and_conflicts() {
    let app = spawn_app().await;
    let mut editors = Vec::new();
    for user in ["admin", "t1", "t2", "t3", "manager", "endpoint_ops"] {
        editors.push((user, app.signed_in(user).await));
    }
    let created = create(&app, &editors[0].1, new_case("Race")).await;
    let id = created["id"].as_str().unwrap().to_owned();
    let mut version = created["version"].clone();
    for round in 0..10 {
        let edits =
            editors.iter().map(|(user, client)| patch(&app, client, json!([{"id": id, "version": version, "title": format!("{user} {round}")}])));
        let responses = futures_util::future::join_all(edits).await;
        let statuses: Vec<StatusCode> = responses.iter().map(Response::status).collect();
        assert_eq!(statuses.iter().filter(|s| **s == StatusCode::OK).count(), 1, "round {round}: {statuses:?}");
        assert_eq!(statuses.iter().filter(|s| **s == StatusCode::CONFLICT).count(), editors.len() - 1, "round {round}: {statuses:?}");
        let mut won = Value::Null;
        for response in responses {
            if response.status() == StatusCode::OK {
                won = ok_json(response).await;
            } else {
                assert!(assert_error(response, StatusCode::CONFLICT).await.contains("have been updated"));
            }
        }
        // The winner's change is what is stored: no lost update.
        let stored = get_case(&app, &editors[0].1, &id).await;
        assert_eq!((stored["title"].clone(), stored["version"].clone()), (won[0]["title"].clone(), won[0]["version"].clone()));
        version = stored["version"].clone();
    }
}

#[tokio::test]
async fn find_filters_sorts_pages_and_counts() {
    let app = spawn_app().await;
    let admin = app.signed_in("admin").await;
    let t1 = app.signed_in("t1").await;
    create(&app, &admin, with(with(new_case("Alpha beacon"), "tags", json!(["c2", "soc"])), "severity", json!("critical"))).await;
    create(&app, &t1, with(with(new_case("bravo phishing"), "description", json!("Mail with a BEACON link")), "owner", json!("cases"))).await;
    let c = create(&app, &admin, with(new_case("Charlie 100%_done"), "assignees", json!([{"uid": "u-1"}]))).await;
    let d = create(&app, &admin, with(new_case("Delta"), "severity", json!("medium"))).await;
    ok_json(patch(&app, &admin, json!([{"id": d["id"], "version": d["version"], "status": "closed"}])).await).await;
    ok_json(patch(&app, &admin, json!([{"id": c["id"], "version": c["version"], "status": "in-progress"}])).await).await;

    let all = find(&app, &admin, "").await;
    assert_eq!((all["page"].clone(), all["per_page"].clone(), all["total"].clone()), (json!(1), json!(20), json!(4)));
    assert_eq!(titles(&all), vec!["Delta", "Charlie 100%_done", "bravo phishing", "Alpha beacon"], "newest first");
    assert_eq!(
        (all["count_open_cases"].clone(), all["count_in_progress_cases"].clone(), all["count_closed_cases"].clone()),
        (json!(2), json!(1), json!(1))
    );
    assert!(all["cases"][0].get("comments").is_none());

    for (query, expected) in [
        ("status=open", vec!["bravo phishing", "Alpha beacon"]),
        ("status=open&status=closed", vec!["Delta", "bravo phishing", "Alpha beacon"]),
        ("severity=critical", vec!["Alpha beacon"]),
        ("tags=c2", vec!["Alpha beacon"]),
        ("tags=soc&tags=nothing", vec!["Delta", "Charlie 100%_done", "bravo phishing", "Alpha beacon"]),
        ("assignees=u-1", vec!["Charlie 100%_done"]),
        ("assignees=none", vec!["Delta", "bravo phishing", "Alpha beacon"]),
        ("assignees=none&assignees=u-1", vec!["Delta", "Charlie 100%_done", "bravo phishing", "Alpha beacon"]),
        ("reporters=t1", vec!["bravo phishing"]),
        ("owner=cases", vec!["bravo phishing"]),
        ("owner=securitySolution&severity=medium", vec!["Delta"]),
        ("search=BEACON", vec!["bravo phishing", "Alpha beacon"]),
        ("search=beacon&searchFields=title", vec!["Alpha beacon"]),
        ("search=100%25_", vec!["Charlie 100%_done"]),
        ("search=_", vec!["Charlie 100%_done"]),
        ("search=zzz", vec![]),
        ("sortField=title&sortOrder=asc", vec!["Alpha beacon", "Charlie 100%_done", "Delta", "bravo phishing"]),
        ("sortField=severity&sortOrder=desc", vec!["Alpha beacon", "Delta", "Charlie 100%_done", "bravo phishing"]),
        ("sortField=status&sortOrder=asc", vec!["Alpha beacon", "bravo phishing", "Charlie 100%_done", "Delta"]),
        ("sortField=createdAt&sortOrder=asc", vec!["Alpha beacon", "bravo phishing", "Charlie 100%_done", "Delta"]),
    ] {
        assert_eq!(titles(&find(&app, &admin, query).await), expected, "{query}");
    }
    // Counts follow every filter but the status one.
    let open = find(&app, &admin, "status=open&owner=securitySolution").await;
    assert_eq!((open["total"].clone(), open["count_open_cases"].clone(), open["count_closed_cases"].clone()), (json!(1), json!(1), json!(1)));
    for field in ["updatedAt", "closedAt", "category"] {
        find(&app, &admin, &format!("sortField={field}")).await;
    }

    // Pages.
    let page = find(&app, &admin, "perPage=3&page=2&sortField=createdAt&sortOrder=asc").await;
    assert_eq!((titles(&page), page["total"].clone(), page["page"].clone(), page["per_page"].clone()), (vec!["Delta"], json!(4), json!(2), json!(3)));
    assert!(titles(&find(&app, &admin, "perPage=3&page=3").await).is_empty());
    for query in
        ["perPage=101", "perPage=0", "page=0", "page=101&perPage=100", "status=done", "sortField=id", "sortOrder=up", "from=now-1d", "page=x"]
    {
        let response = admin.get(app.url(&format!("{}?{query}", paths::CASES_FIND))).send().await.unwrap();
        assert_error(response, StatusCode::BAD_REQUEST).await;
    }
    // Every demo role may read cases; a signed-out caller may not.
    assert_eq!(find(&app, &app.signed_in("viewer").await, "").await["total"], 4);
    assert_error(app.client().get(app.url(paths::CASES_FIND)).send().await.unwrap(), StatusCode::UNAUTHORIZED).await;
}

#[tokio::test]
async fn cases_are_deleted_with_json_or_repeated_ids_and_all_or_nothing() {
    let app = spawn_app().await;
    let admin = app.signed_in("admin").await;
    let mut ids = Vec::new();
    for title in ["one", "two", "three", "four"] {
        ids.push(create(&app, &admin, new_case(title)).await["id"].as_str().unwrap().to_owned());
    }
    let delete = |query: String| {
        let request = admin.delete(app.url(&format!("{}?{query}", paths::CASES))).header("kbn-xsrf", "t");
        async move { request.send().await.unwrap() }
    };
    // Comments and alerts go with their case.
    assert_eq!(
        comment(&app, &admin, &ids[0], json!({"type": "user", "comment": "note", "owner": "securitySolution"})).await.status(),
        StatusCode::OK
    );
    let json_ids = paths::encode(&serde_json::to_string(&[&ids[0], &ids[1]]).unwrap());
    let response = delete(format!("ids={json_ids}")).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert!(response.text().await.unwrap().is_empty());
    assert_error(admin.get(app.url(&paths::case(&ids[0]))).send().await.unwrap(), StatusCode::NOT_FOUND).await;
    let db = app.db().await;
    let left: i64 = sqlx::query_scalar("select count(*) from case_attachments").fetch_one(&db).await.unwrap();
    assert_eq!(left, 0);

    // One unknown id: 404, and nothing is deleted.
    let message = assert_error(delete(format!("ids={}&ids=gone", ids[2])).await, StatusCode::NOT_FOUND).await;
    assert_eq!(message, "These cases gone do not exist. Please check you have the correct ids.");
    assert_eq!(find(&app, &admin, "").await["total"], 2);
    assert_eq!(delete(format!("ids={}&ids={}", ids[2], ids[3])).await.status(), StatusCode::NO_CONTENT);
    assert_eq!(find(&app, &admin, "").await["total"], 0);

    for query in ["".to_owned(), "ids=".to_owned(), "ids=%5B%5D".to_owned(), "id=x".to_owned()] {
        assert_error(delete(query.clone()).await, StatusCode::BAD_REQUEST).await;
    }
    let many = (0..101).map(|i| format!("ids=c{i}")).collect::<Vec<_>>().join("&");
    let message = assert_error(delete(many).await, StatusCode::BAD_REQUEST).await;
    assert!(message.contains("Array must be of length <= 100."), "{message}");
    let t1 = app.signed_in("t1").await;
    let id = create(&app, &t1, new_case("t1's")).await["id"].as_str().unwrap().to_owned();
    let viewer = app.signed_in("viewer").await;
    let response = viewer.delete(app.url(&format!("{}?ids={id}", paths::CASES))).header("kbn-xsrf", "t").send().await.unwrap();
    assert_error(response, StatusCode::FORBIDDEN).await;
    let response = t1.delete(app.url(&format!("{}?ids={id}", paths::CASES))).header("kbn-xsrf", "t").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn comments_are_added_and_found_a_page_at_a_time() {
    let app = spawn_app().await;
    let admin = app.signed_in("admin").await;
    let created = create(&app, &admin, new_case("Noisy")).await;
    let id = created["id"].as_str().unwrap();
    let mut last = created.clone();
    for n in 0..3 {
        last = ok_json(comment(&app, &admin, id, json!({"type": "user", "comment": format!("note {n}"), "owner": "securitySolution"})).await).await;
    }
    assert_eq!(last["totalComment"], 3);
    assert_ne!(last["version"], created["version"]);
    let comments = last["comments"].as_array().unwrap();
    assert_eq!(comments.len(), 3);
    assert_eq!(
        (comments[0]["type"].clone(), comments[0]["comment"].clone(), comments[0]["owner"].clone()),
        (json!("user"), json!("note 0"), json!("securitySolution"))
    );
    assert_eq!(comments[0]["created_by"]["username"], "admin");
    assert!(comments[0]["id"].is_string() && comments[0]["version"].is_string() && comments[0]["pushed_at"].is_null());
    assert!(get_case(&app, &admin, id).await.get("comments").is_none());

    let found = |query: &str| {
        let request = admin.get(app.url(&format!("{}?{query}", paths::case_comments_find(id))));
        async move { request.send().await.unwrap() }
    };
    let page = ok_json(found("perPage=2").await).await;
    assert_eq!((page["page"].clone(), page["per_page"].clone(), page["total"].clone()), (json!(1), json!(2), json!(3)));
    let texts = |page: &Value| page["comments"].as_array().unwrap().iter().map(|c| c["comment"].as_str().unwrap().to_owned()).collect::<Vec<_>>();
    assert_eq!(texts(&page), vec!["note 2", "note 1"], "newest first");
    assert_eq!(texts(&ok_json(found("perPage=2&page=2").await).await), vec!["note 0"]);
    assert_eq!(texts(&ok_json(found("sortOrder=asc&perPage=1").await).await), vec!["note 0"]);
    assert_error(found("perPage=101").await, StatusCode::BAD_REQUEST).await;
    assert_error(found("type=user").await, StatusCode::BAD_REQUEST).await;
    let viewer = app.signed_in("viewer").await;
    assert_eq!(ok_json(viewer.get(app.url(&paths::case_comments_find(id))).send().await.unwrap()).await["total"], 3);
    let missing = viewer.get(app.url(&paths::case_comments_find("gone"))).send().await.unwrap();
    assert_eq!(assert_error(missing, StatusCode::NOT_FOUND).await, "Saved object [cases/gone] not found");

    for (body, message) in [
        (json!({"type": "user", "comment": " ", "owner": "securitySolution"}), "The comment field cannot be an empty string."),
        (
            json!({"type": "user", "comment": "c".repeat(30_001), "owner": "securitySolution"}),
            "The length of the comment is too long. The maximum length is 30000.",
        ),
        (json!({"type": "user", "comment": "c", "owner": "cases"}), "The owner field of the comment must match the case"),
    ] {
        assert_eq!(assert_error(comment(&app, &admin, id, body).await, StatusCode::BAD_REQUEST).await, message);
    }
    assert_error(comment(&app, &admin, id, json!({"type": "file", "owner": "securitySolution"})).await, StatusCode::BAD_REQUEST).await;
    let gone = comment(&app, &admin, "gone", json!({"type": "user", "comment": "c", "owner": "securitySolution"})).await;
    assert_eq!(assert_error(gone, StatusCode::NOT_FOUND).await, "Saved object [cases/gone] not found");
    let by_viewer = comment(&app, &viewer, id, json!({"type": "user", "comment": "c", "owner": "securitySolution"})).await;
    assert_error(by_viewer, StatusCode::FORBIDDEN).await;
}

#[tokio::test]
async fn alerts_are_attached_once_up_to_a_thousand_and_never_to_a_closed_case() {
    let app = spawn_app().await;
    let admin = app.signed_in("admin").await;
    let created = create(&app, &admin, new_case("Alerts")).await;
    let id = created["id"].as_str().unwrap();

    let one = json!({"type": "alert", "alertId": "a-0", "index": ".alerts-security.alerts-default", "rule": {"id": null, "name": null}, "owner": "securitySolution"});
    let case = ok_json(comment(&app, &admin, id, one.clone()).await).await;
    assert_eq!((case["totalAlerts"].clone(), case["totalComment"].clone()), (json!(1), json!(0)));
    let stored = &case["comments"][0];
    assert_eq!(
        (stored["type"].clone(), stored["alertId"].clone(), stored["index"].clone()),
        (json!("alert"), json!("a-0"), json!(".alerts-security.alerts-default"))
    );
    assert_eq!(stored["rule"], json!({"id": null, "name": null}));

    // The same alert again changes nothing; new ones beside old ones: only the new.
    let again = ok_json(comment(&app, &admin, id, one.clone()).await).await;
    assert_eq!(
        (again["totalAlerts"].clone(), again["version"].clone(), again["comments"].as_array().unwrap().len()),
        (json!(1), case["version"].clone(), 1)
    );
    let more = ok_json(comment(&app, &admin, id, alerts((0..3).map(|i| format!("a-{i}")), "securitySolution")).await).await;
    assert_eq!(more["totalAlerts"], 3);
    assert_eq!(more["comments"][1]["alertId"], json!(["a-1", "a-2"]));
    assert_eq!(more["comments"][1]["rule"], json!({"id": "rule-1", "name": "Brute force"}));

    // Up to 1,000 alerts, not one more.
    let to_the_limit = ok_json(comment(&app, &admin, id, alerts((3..1000).map(|i| format!("a-{i}")), "securitySolution")).await).await;
    assert_eq!(to_the_limit["totalAlerts"], 1000);
    let over = comment(&app, &admin, id, alerts(["a-1000".to_owned()], "securitySolution")).await;
    assert_eq!(assert_error(over, StatusCode::BAD_REQUEST).await, "Case has reached the maximum allowed number (1000) of attached alerts.");
    assert_eq!(ok_json(comment(&app, &admin, id, one).await).await["totalAlerts"], 1000, "an alert held already is no new alert");
    let fresh = create(&app, &admin, new_case("Too many")).await;
    let too_many = comment(&app, &admin, fresh["id"].as_str().unwrap(), alerts((0..1001).map(|i| format!("b-{i}")), "securitySolution")).await;
    assert_eq!(assert_error(too_many, StatusCode::BAD_REQUEST).await, "Case has reached the maximum allowed number (1000) of attached alerts.");

    for (body, contains) in [
        (
            json!({"type": "alert", "alertId": ["x", "y"], "index": "i", "rule": {"id": null, "name": null}, "owner": "securitySolution"}),
            "different lengths",
        ),
        (alerts([String::new()], "securitySolution"), "cannot be an empty string"),
        (alerts(["x".to_owned()], "cases"), "The owner field of the comment must match the case"),
    ] {
        let message = assert_error(comment(&app, &admin, fresh["id"].as_str().unwrap(), body).await, StatusCode::BAD_REQUEST).await;
        assert!(message.contains(contains), "{message}");
    }

    // A closed case takes comments, not alerts.
    let closed = ok_json(patch(&app, &admin, json!([{"id": fresh["id"], "version": fresh["version"], "status": "closed"}])).await).await;
    let closed_id = closed[0]["id"].as_str().unwrap();
    let refused = comment(&app, &admin, closed_id, alerts(["c-1".to_owned()], "securitySolution")).await;
    assert_eq!(assert_error(refused, StatusCode::BAD_REQUEST).await, "Alert cannot be attached to a closed case");
    let note = comment(&app, &admin, closed_id, json!({"type": "user", "comment": "closing note", "owner": "securitySolution"})).await;
    assert_eq!(ok_json(note).await["totalComment"], 1);

    let page = ok_json(admin.get(app.url(&format!("{}?sortOrder=asc", paths::case_comments_find(id)))).send().await.unwrap()).await;
    assert_eq!(page["total"], 3);
    assert_eq!(page["comments"][2]["alertId"].as_array().unwrap().len(), 997);
}
