-- Checks in flight: a count-first check takes a slot (in_flight + 1) before it checks
-- anything and settles it after, so failures count only what really failed and an
-- overloaded or cancelled request gives its slot back. The slots lapse together at
-- in_flight_until, so a process that died mid-check cannot hold them.
ALTER TABLE attempts ADD COLUMN in_flight INTEGER NOT NULL DEFAULT 0;
ALTER TABLE attempts ADD COLUMN in_flight_until INTEGER;
