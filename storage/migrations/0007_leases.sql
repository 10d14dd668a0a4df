-- Leases: work on a data folder that only one process at a time may do (the Greenfield
-- uploader). The holder renews its lease well before it expires; another process takes it
-- only once it has expired, so a killed holder blocks the work for one lease at most.
CREATE TABLE leases (
    name    TEXT PRIMARY KEY,
    holder  TEXT    NOT NULL, -- who holds it, in words: host, process id
    expires INTEGER NOT NULL  -- Unix milliseconds
);
