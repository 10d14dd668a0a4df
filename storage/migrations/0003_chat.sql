-- Chat: the configured providers (never their keys), battles, each column's model and
-- conversation (the blind mapping), answers with their timings, votes and quality.
-- Times are Unix milliseconds; 0 means not yet. Durations are milliseconds.
CREATE TABLE chat_providers (
    name        TEXT PRIMARY KEY,
    kind        TEXT    NOT NULL CHECK (kind IN ('openai', 'anthropic')),
    base_url    TEXT    NOT NULL,
    api_key_env TEXT    NOT NULL DEFAULT '',
    models      TEXT    NOT NULL DEFAULT '[]', -- JSON list of model names
    timeout_ms  INTEGER NOT NULL DEFAULT 0,
    created     INTEGER NOT NULL,
    updated     INTEGER NOT NULL
);

CREATE TABLE chat_battles (
    id          TEXT PRIMARY KEY,
    created     INTEGER NOT NULL,
    updated     INTEGER NOT NULL,
    blind       INTEGER NOT NULL,
    language    TEXT    NOT NULL DEFAULT '',
    max_tokens  INTEGER NOT NULL DEFAULT 0,
    temperature REAL, -- NULL: the provider's default
    models      TEXT    NOT NULL DEFAULT '[]' -- JSON list, in the order the user picked them
);
CREATE INDEX chat_battles_created ON chat_battles(created);

CREATE TABLE chat_prompts (
    battle_id TEXT    NOT NULL REFERENCES chat_battles(id) ON DELETE CASCADE,
    turn      INTEGER NOT NULL,
    prompt    TEXT    NOT NULL,
    PRIMARY KEY (battle_id, turn)
);

CREATE TABLE chat_sides (
    battle_id TEXT NOT NULL REFERENCES chat_battles(id) ON DELETE CASCADE,
    col       TEXT NOT NULL CHECK (col IN ('A', 'B', 'C', 'D')),
    model     TEXT NOT NULL,
    history   TEXT NOT NULL DEFAULT '[]', -- JSON list of {role, content} before the first prompt
    PRIMARY KEY (battle_id, col)
);

CREATE TABLE chat_answers (
    battle_id      TEXT    NOT NULL,
    col            TEXT    NOT NULL,
    turn           INTEGER NOT NULL,
    content        TEXT    NOT NULL DEFAULT '',
    started        INTEGER NOT NULL DEFAULT 0,
    first_token    INTEGER NOT NULL DEFAULT 0,
    finished       INTEGER NOT NULL DEFAULT 0,
    ttft_ms        INTEGER NOT NULL DEFAULT 0,
    input_tokens   INTEGER NOT NULL DEFAULT 0,
    output_tokens  INTEGER NOT NULL DEFAULT 0,
    tokens_per_sec REAL    NOT NULL DEFAULT 0,
    stop_reason    TEXT    NOT NULL DEFAULT '',
    error          TEXT    NOT NULL DEFAULT '',
    error_kind     TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (battle_id, col, turn),
    FOREIGN KEY (battle_id, col) REFERENCES chat_sides(battle_id, col) ON DELETE CASCADE
);

CREATE TABLE chat_votes (
    battle_id TEXT PRIMARY KEY REFERENCES chat_battles(id) ON DELETE CASCADE,
    outcome   TEXT    NOT NULL CHECK (outcome IN ('A', 'B', 'C', 'D', 'tie', 'bad')),
    reason    TEXT    NOT NULL DEFAULT '',
    voted_at  INTEGER NOT NULL
);
CREATE INDEX chat_votes_voted_at ON chat_votes(voted_at);

CREATE TABLE chat_quality (
    battle_id TEXT PRIMARY KEY REFERENCES chat_battles(id) ON DELETE CASCADE,
    score     REAL    NOT NULL CHECK (score >= 0 AND score <= 1),
    diversity REAL    NOT NULL DEFAULT 1,
    reasons   TEXT    NOT NULL DEFAULT '[]', -- JSON list of {signal, detail, penalty}
    assessed  INTEGER NOT NULL
);
