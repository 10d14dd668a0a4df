-- The Greenfield outbox: every submission is queued here first, and the uploader takes it
-- through uploading (bucket, object, payload) and sealing (seal, tags, manifest) to done,
-- or back to queued with a later next_attempt after an error, or to failed after too many.
-- Times are Unix milliseconds; 0 means not yet.
CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY,
    submission_id   INTEGER NOT NULL UNIQUE REFERENCES submissions(id) ON DELETE CASCADE,
    sha256          TEXT    NOT NULL, -- hex sha256 of the JSONL file, as the manifest signs it
    kind            TEXT    NOT NULL,
    records         INTEGER NOT NULL DEFAULT 0,
    size            INTEGER NOT NULL, -- bytes of the JSONL file
    jsonl_path      TEXT    NOT NULL, -- the files on this computer that are uploaded
    manifest_path   TEXT    NOT NULL,
    bucket          TEXT    NOT NULL DEFAULT '', -- '' until the uploader picks the wallet's bucket
    object          TEXT    NOT NULL,            -- <kind>/<yyyy>/<mm>/<sha256>.jsonl
    manifest_object TEXT    NOT NULL,            -- <kind>/<yyyy>/<mm>/<sha256>.manifest.json
    state           TEXT    NOT NULL DEFAULT 'queued'
                    CHECK (state IN ('queued', 'uploading', 'sealing', 'done', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0, -- attempts that ended in an error
    next_attempt    INTEGER NOT NULL DEFAULT 0, -- not before this time
    bytes_sent      INTEGER NOT NULL DEFAULT 0,
    speed           REAL    NOT NULL DEFAULT 0, -- bytes per second of the last upload
    error           TEXT    NOT NULL DEFAULT '', -- the last error, kept after a retry succeeds until done
    created         INTEGER NOT NULL,
    updated         INTEGER NOT NULL,
    finished        INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX outbox_due ON outbox(state, next_attempt);

-- Read access granted (or to be granted once the upload is done) to an address, through an
-- object policy on both the JSONL and the manifest object.
CREATE TABLE outbox_shares (
    outbox_id INTEGER NOT NULL REFERENCES outbox(id) ON DELETE CASCADE,
    address   TEXT    NOT NULL, -- checksummed 0x address
    state     TEXT    NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done')),
    error     TEXT    NOT NULL DEFAULT '',
    created   INTEGER NOT NULL,
    updated   INTEGER NOT NULL,
    PRIMARY KEY (outbox_id, address)
);
