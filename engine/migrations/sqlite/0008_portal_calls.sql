-- The portal's calls list (issue 7) filters attempts by status alone and
-- pages newest first by id (a keyset cursor). An index on status holds the
-- rowid too, so `status = ? AND id < ? ORDER BY id DESC` reads only the
-- matching rows, newest first, and stops at the page size. Portable like 0001.
CREATE INDEX attempts_status_id ON attempts (status);
