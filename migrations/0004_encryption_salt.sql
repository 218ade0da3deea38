-- Warden's own settings: small values one node writes once per database
-- (`insert … on conflict do nothing`, then `select`, so nodes starting
-- together keep the same one). `encryption_salt`: the random salt the
-- encryption key is derived with (Argon2id, base64); `encryption_key_check`:
-- a value encrypted with that key, so a node started with another
-- encryption_key stops at once.

create table settings (
    name text primary key,
    value text not null,
    created_at bigint not null
);
