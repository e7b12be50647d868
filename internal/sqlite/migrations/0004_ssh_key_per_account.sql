-- A key is unique per account, not across accounts. A key only ever proves identity
-- for the account it is registered on (a recovery request is bound to one account),
-- so sharing it across accounts proves nothing more; while global uniqueness let
-- anyone who saw a victim's public key register it first and lock the victim out of
-- adding it.
DROP INDEX ssh_keys_fingerprint_key;
CREATE UNIQUE INDEX ssh_keys_user_fingerprint_key ON ssh_keys (user_id, fingerprint);
