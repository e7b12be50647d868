-- The security log is purged by age (security-log-retention), daily: without an index
-- on time that delete would read the whole log each day.
CREATE INDEX security_events_time_idx ON security_events (time);
