-- Settings the user changed (defaults live in the code), and the history of finished jobs.
CREATE TABLE settings (
    key     TEXT PRIMARY KEY,
    value   TEXT NOT NULL,
    updated INTEGER NOT NULL
);

CREATE TABLE jobs (
    id       TEXT PRIMARY KEY,
    kind     TEXT NOT NULL,
    title    TEXT NOT NULL,
    state    TEXT NOT NULL,
    message  TEXT NOT NULL DEFAULT '',
    started  INTEGER NOT NULL,
    finished INTEGER NOT NULL
);
CREATE INDEX jobs_finished ON jobs(finished);
