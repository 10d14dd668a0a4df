-- The ledger of `gata pool`: the work it cut from a run's datasets, what workers sent back
-- and the credit each result earns, the workers' trust, and the invitations it issued.
-- Times are Unix milliseconds; 0 means not yet.

-- pool_runs says how far the pool has read a run's sources: the first cursor items (in the
-- sources' order) are in groups or already have a result, so a restarted pool reads on
-- from there.
CREATE TABLE pool_runs (
    run_id   INTEGER PRIMARY KEY REFERENCES dva_runs(id) ON DELETE CASCADE,
    cursor   INTEGER NOT NULL DEFAULT 0,
    read_all INTEGER NOT NULL DEFAULT 0
);

-- A group is one piece of the dataset (a few hundred pairs). It is verified once enough
-- results agree; then its scores are in dva_results.
CREATE TABLE pool_groups (
    id       TEXT    PRIMARY KEY,
    run_id   INTEGER NOT NULL REFERENCES dva_runs(id) ON DELETE CASCADE,
    state    TEXT    NOT NULL CHECK (state IN ('open', 'verified')),
    items    TEXT    NOT NULL, -- JSON, what only the pool knows of the group's items
    created  INTEGER NOT NULL,
    verified INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX pool_groups_run ON pool_groups(run_id, state);

-- A job is one copy of a group handed to workers: the first, and the replicas that
-- redundancy and disagreements ask for.
CREATE TABLE pool_jobs (
    id        TEXT    PRIMARY KEY,
    group_id  TEXT    NOT NULL REFERENCES pool_groups(id) ON DELETE CASCADE,
    run_id    INTEGER NOT NULL,
    replica   INTEGER NOT NULL,
    state     TEXT    NOT NULL CHECK (state IN ('new', 'published')),
    body      TEXT    NOT NULL, -- JSON, the job message as published
    created   INTEGER NOT NULL,
    published INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX pool_jobs_group ON pool_jobs(group_id);
CREATE INDEX pool_jobs_run ON pool_jobs(run_id, state);

-- One result a worker returned for a job, and the credit it earns: pending until the
-- group is verified, then confirmed or rejected with the reason.
CREATE TABLE pool_results (
    job_id     TEXT    NOT NULL REFERENCES pool_jobs(id) ON DELETE CASCADE,
    worker     TEXT    NOT NULL, -- the signer's address, 0x…
    group_id   TEXT    NOT NULL,
    run_id     INTEGER NOT NULL,
    received   INTEGER NOT NULL,
    state      TEXT    NOT NULL CHECK (state IN ('pending', 'confirmed', 'rejected')),
    reason     TEXT    NOT NULL DEFAULT '',
    credits    INTEGER NOT NULL DEFAULT 0,
    backend    TEXT    NOT NULL DEFAULT '',
    compute_ms INTEGER NOT NULL DEFAULT 0,
    body       TEXT    NOT NULL, -- JSON, the signed result as received
    decided    INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (job_id, worker)
);
CREATE INDEX pool_results_group ON pool_results(group_id);
CREATE INDEX pool_results_worker ON pool_results(worker, state);
CREATE INDEX pool_results_state ON pool_results(state, decided);

-- A worker's standing: consecutive valid results raise its trust (and lower how often its
-- work is checked twice); an invalid one resets it.
CREATE TABLE pool_workers (
    address           TEXT    PRIMARY KEY,
    first_seen        INTEGER NOT NULL,
    last_seen         INTEGER NOT NULL,
    consecutive_valid INTEGER NOT NULL DEFAULT 0,
    valid             INTEGER NOT NULL DEFAULT 0,
    invalid           INTEGER NOT NULL DEFAULT 0,
    backend           TEXT    NOT NULL DEFAULT ''
);

-- Credentials `gata pool invite` issued; only the token's sha256 is kept.
CREATE TABLE pool_invites (
    token_sha256 TEXT    PRIMARY KEY,
    name         TEXT    NOT NULL DEFAULT '',
    created      INTEGER NOT NULL,
    revoked      INTEGER NOT NULL DEFAULT 0
);

-- Facts about the pool itself (the address it listens on, for invitations).
CREATE TABLE pool_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
