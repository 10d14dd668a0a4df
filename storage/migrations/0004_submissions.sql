-- Signed submissions (DESIGN §5): one row per manifest the wallet signed and queued, the
-- items each one carried (so that the next submission collects only what is new), and the
-- next nonce of every wallet. created is Unix seconds, as the manifest signs it; the other
-- times are Unix milliseconds.
CREATE TABLE submissions (
    id            INTEGER PRIMARY KEY,
    kind          TEXT    NOT NULL,
    sha256        TEXT    NOT NULL UNIQUE, -- hex sha256 of the JSONL file
    records       INTEGER NOT NULL,
    bytes         INTEGER NOT NULL,
    created       INTEGER NOT NULL,
    nonce         INTEGER NOT NULL,
    submitter     TEXT    NOT NULL, -- EIP-55 checksummed address
    chain_id      INTEGER NOT NULL,
    manifest      TEXT    NOT NULL, -- the manifest file's JSON
    jsonl_path    TEXT    NOT NULL, -- <data dir>/submissions/<sha256>.jsonl
    manifest_path TEXT    NOT NULL, -- <data dir>/submissions/<sha256>.manifest.json
    recorded      INTEGER NOT NULL,
    UNIQUE (submitter, chain_id, nonce)
);
CREATE INDEX submissions_created ON submissions(created);

-- What was submitted: a chat battle's id, a DVA run's id. An item is submitted once.
CREATE TABLE submission_items (
    kind          TEXT    NOT NULL,
    item          TEXT    NOT NULL,
    submission_id INTEGER NOT NULL REFERENCES submissions(id) ON DELETE CASCADE,
    PRIMARY KEY (kind, item)
);
CREATE INDEX submission_items_submission ON submission_items(submission_id);

-- The next nonce each wallet signs with; taken nonces are never given out again.
CREATE TABLE wallet_nonces (
    address TEXT    PRIMARY KEY, -- EIP-55 checksummed address
    next    INTEGER NOT NULL CHECK (next >= 1),
    updated INTEGER NOT NULL
);
