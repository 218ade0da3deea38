-- Portable SQL: SQLite and PostgreSQL run this same file (see docs/storage.md).
-- Times are bigint milliseconds since the epoch, flags bigint 0/1, JSON as text.

create table users (
    id text primary key,
    username text not null unique,
    full_name text,
    password_hash text not null,
    roles text not null,
    enabled bigint not null default 1,
    created_at bigint not null,
    updated_at bigint not null
);

-- Server-side sessions: the cookie holds a random token, the row its SHA-256,
-- so signing out or disabling a user revokes the session at once.
create table sessions (
    token_hash text primary key,
    user_id text not null references users (id) on delete cascade,
    created_at bigint not null,
    last_seen_at bigint not null,
    expires_at bigint not null
);

create index sessions_user_id on sessions (user_id);

-- Failed sign-ins per key (`user:<name>` or `ip:<address>`) in a fixed window.
create table login_failures (
    key text primary key,
    failures bigint not null,
    window_started_at bigint not null
);
