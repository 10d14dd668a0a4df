-- Batch scoring runs of the Data Validation Agent and one row per item they scored or failed.
-- Times are Unix milliseconds; 0 means not yet.
CREATE TABLE dva_runs (
    id           INTEGER PRIMARY KEY,
    created      INTEGER NOT NULL,
    updated      INTEGER NOT NULL,
    finished     INTEGER NOT NULL DEFAULT 0,
    state        TEXT    NOT NULL CHECK (state IN ('running', 'paused', 'done', 'failed', 'cancelled')),
    sources      TEXT    NOT NULL DEFAULT '[]', -- JSON list of source names
    model        TEXT    NOT NULL DEFAULT '',
    model_sha256 TEXT    NOT NULL DEFAULT '',
    options      TEXT    NOT NULL DEFAULT '{}', -- JSON object, the run's options as the app keeps them
    out_dir      TEXT    NOT NULL DEFAULT '',
    message      TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX dva_runs_created ON dva_runs(created);

CREATE TABLE dva_results (
    run_id     INTEGER NOT NULL REFERENCES dva_runs(id) ON DELETE CASCADE,
    source     TEXT    NOT NULL,
    key        TEXT    NOT NULL,
    uid        TEXT    NOT NULL DEFAULT '',
    url        TEXT    NOT NULL DEFAULT '',
    caption    TEXT    NOT NULL DEFAULT '',
    score      REAL    NOT NULL DEFAULT 0,
    width      INTEGER NOT NULL DEFAULT 0,
    height     INTEGER NOT NULL DEFAULT 0,
    reason     TEXT    NOT NULL DEFAULT '', -- '' when scored
    error      TEXT    NOT NULL DEFAULT '',
    extra      TEXT    NOT NULL DEFAULT '{}', -- JSON object of strings
    verdict    TEXT    NOT NULL DEFAULT '' CHECK (verdict IN ('', 'keep', 'reject')),
    verdict_at INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, source, key)
);
-- Serves the review screen's score order (rowid breaks ties, and every index ends with it),
-- the scores of a run for keep-top thresholds, and the counts by reason.
CREATE INDEX dva_results_score ON dva_results(run_id, reason, score);
