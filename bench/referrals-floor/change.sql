-- One change of status (accepted, then completed), as
-- POST /v1/referrals/{id}/status writes it: the key, then one transaction:
-- lock, read (with the hand-off), status and time, the hand-off deleted,
-- event, outbox row, read-back. The floor picks a referral with SKIP
-- LOCKED where the API names it by id.
SELECT id, role FROM api_keys WHERE prefix = ':prefix';
BEGIN;
SELECT id AS rid FROM referrals WHERE status = ':from' LIMIT 1 FOR UPDATE SKIP LOCKED \gset
SELECT * FROM referrals WHERE id = ':rid';
SELECT ciphertext FROM referral_handoffs WHERE referral_id = ':rid';
SELECT * FROM referral_events WHERE referral_id = ':rid' ORDER BY id;
UPDATE referrals SET status = ':to', reason = NULLIF(':reason', 'none'), updated_at = now(), version = version + 1 WHERE id = ':rid';
UPDATE referrals SET closed_at = now() WHERE id = ':rid';
DELETE FROM referral_handoffs WHERE referral_id = ':rid';
INSERT INTO referral_events (referral_id, at, from_status, to_status) VALUES (':rid', now(), ':from', ':to');
SELECT webhook_url FROM referral_endpoints WHERE organization_id = ':org';
INSERT INTO webhook_deliveries (id, organization_id, referral_id, event, payload)
VALUES (gen_random_uuid(), ':org', ':rid', 'referral.status_changed', '{"type":"referral.status_changed"}');
SELECT * FROM referrals WHERE id = ':rid';
SELECT * FROM referral_events WHERE referral_id = ':rid' ORDER BY id;
COMMIT;
