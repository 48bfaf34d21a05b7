DROP TABLE webhook_attempts;
DROP TABLE webhook_deliveries;
DROP TABLE referral_events;
DROP TABLE referral_handoffs;
DROP TABLE referrals;
DROP TABLE referral_endpoints;
DELETE FROM api_keys WHERE role = 'steward' OR (role = 'caseworker' AND organization_id IS NOT NULL);
ALTER TABLE api_keys DROP CONSTRAINT api_keys_steward_has_province;
ALTER TABLE api_keys DROP COLUMN province_code;
ALTER TABLE api_keys DROP CONSTRAINT api_keys_agency_has_organization;
ALTER TABLE api_keys ADD CONSTRAINT api_keys_agency_has_organization CHECK ((role = 'agency') = (organization_id IS NOT NULL));
ALTER TABLE api_keys DROP CONSTRAINT api_keys_role_known;
ALTER TABLE api_keys ADD CONSTRAINT api_keys_role_known CHECK (role IN ('admin', 'agency', 'caseworker'));
ALTER TABLE audit_log DROP CONSTRAINT audit_log_resource_type_known;
ALTER TABLE audit_log ADD CONSTRAINT audit_log_resource_type_known CHECK (
    resource_type IN ('service', 'location', 'organization', 'api_key'));
