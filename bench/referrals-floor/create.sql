-- One referral made, as POST /v1/referrals writes it (src/workflows/referrals.rs):
-- the key looked up, the service checked, the endpoint read, then one
-- transaction: referral, hand-off, event, outbox row, and the read-back.
SELECT id, role FROM api_keys WHERE prefix = ':prefix';
SELECT s.organization_id, s.status, s.accepting_referrals,
       EXISTS (SELECT 1 FROM service_categories c WHERE c.service_id = s.id AND c.category_code = ':need') AS offers_need,
       l.id, coalesce(l.province_code, (SELECT CASE WHEN count(DISTINCT a.province_code) = 1 THEN min(a.province_code) END
                                        FROM service_areas a WHERE a.service_id = s.id)), l.ward_code
FROM services s
LEFT JOIN LATERAL (SELECT l.id, l.province_code, l.ward_code FROM service_at_location sal JOIN locations l ON l.id = sal.location_id
                   WHERE sal.service_id = s.id AND l.archived_at IS NULL ORDER BY l.id LIMIT 1) l ON true
WHERE s.id = ':service';
SELECT organization_id FROM referral_endpoints WHERE organization_id = ':org';
BEGIN;
SELECT gen_random_uuid() AS rid \gset
INSERT INTO referrals (id, service_id, need, receiving_organization_id, consent, status, created_at, expires_at, updated_at, version)
VALUES (':rid', ':service', ':need', ':org', true, 'sent', now(), now() + interval '30 days', now(), 1);
INSERT INTO referral_handoffs (referral_id, ciphertext) VALUES (':rid', decode(repeat('ab', 200), 'hex'));
INSERT INTO referral_events (referral_id, at, to_status) VALUES (':rid', now(), 'sent');
SELECT webhook_url FROM referral_endpoints WHERE organization_id = ':org';
INSERT INTO webhook_deliveries (id, organization_id, referral_id, event, payload)
VALUES (gen_random_uuid(), ':org', ':rid', 'referral.created', '{"type":"referral.created"}');
SELECT * FROM referrals WHERE id = ':rid';
SELECT * FROM referral_events WHERE referral_id = ':rid' ORDER BY id;
COMMIT;
