-- Referrals (chuyển tuyến) that close the loop without holding the person's
-- data: who referred whom to which service for which need, how it ended,
-- and the hand-off's contact details only as ciphertext for the receiving
-- organisation (docs/referrals.md). Nothing here can hold a name, a phone
-- number, a birth date, free text or a coordinate in clear.

-- Caseworker keys may be bound to an organisation (the commune's social
-- work officer), so that the referring side is an organisation; stewards
-- (a provincial department) read indicators for one province.
ALTER TABLE api_keys DROP CONSTRAINT api_keys_role_known;
ALTER TABLE api_keys ADD CONSTRAINT api_keys_role_known
    CHECK (role IN ('admin', 'agency', 'caseworker', 'steward'));
ALTER TABLE api_keys DROP CONSTRAINT api_keys_agency_has_organization;
ALTER TABLE api_keys ADD CONSTRAINT api_keys_agency_has_organization
    CHECK ((role <> 'agency' OR organization_id IS NOT NULL)
       AND (organization_id IS NULL OR role IN ('agency', 'caseworker')));
ALTER TABLE api_keys ADD COLUMN province_code text REFERENCES provinces (code);
ALTER TABLE api_keys ADD CONSTRAINT api_keys_steward_has_province
    CHECK ((role = 'steward') = (province_code IS NOT NULL));

-- How an organisation receives referrals: the X25519 public key hand-offs
-- are sealed to (libsodium's crypto_box_seal), and where to send signed
-- webhooks (Standard Webhooks; the secret signs, so it is kept).
CREATE TABLE referral_endpoints (
    organization_id uuid PRIMARY KEY REFERENCES organizations (id),
    public_key bytea NOT NULL CONSTRAINT referral_endpoints_key_length CHECK (length(public_key) = 32),
    webhook_url text CONSTRAINT referral_endpoints_url_length CHECK (length(webhook_url) <= 2000),
    webhook_secret bytea CONSTRAINT referral_endpoints_secret_length CHECK (length(webhook_secret) BETWEEN 24 AND 64),
    CONSTRAINT referral_endpoints_url_has_secret CHECK ((webhook_url IS NULL) = (webhook_secret IS NULL)),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Changes to these settings are audited like other writes.
ALTER TABLE audit_log DROP CONSTRAINT audit_log_resource_type_known;
ALTER TABLE audit_log ADD CONSTRAINT audit_log_resource_type_known CHECK (
    resource_type IN ('service', 'location', 'organization', 'api_key', 'referral_endpoint'));

CREATE TABLE referrals (
    id uuid PRIMARY KEY,
    service_id uuid NOT NULL REFERENCES services (id),
    need text NOT NULL REFERENCES categories (code),
    location_id uuid REFERENCES locations (id),
    receiving_organization_id uuid NOT NULL REFERENCES organizations (id),
    referring_key_id uuid REFERENCES api_keys (id),
    referring_organization_id uuid REFERENCES organizations (id),
    -- Where the help is (the location's ward, else the service area's one
    -- province): the place the indicators count by. Never the person's.
    province_code text REFERENCES provinces (code),
    ward_code text REFERENCES wards (code),
    consent boolean NOT NULL,
    status text NOT NULL CONSTRAINT referrals_status_known CHECK (
        status IN ('sent', 'accepted', 'declined', 'in_service', 'completed', 'withdrawn', 'expired')),
    -- A decline's reason or a completion's outcome: a code, never text.
    reason text CONSTRAINT referrals_reason_known CHECK (reason IN (
        'no_capacity', 'not_eligible', 'could_not_contact', 'person_declined', 'duplicate', 'other',
        'service_received', 'person_withdrew', 'lost_contact')),
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    accepted_at timestamptz,
    in_service_at timestamptz,
    closed_at timestamptz,
    updated_at timestamptz NOT NULL DEFAULT now(),
    version integer NOT NULL DEFAULT 1
);
CREATE INDEX referrals_inbox_idx ON referrals (receiving_organization_id, created_at DESC, id DESC);
CREATE INDEX referrals_by_organization_idx ON referrals (referring_organization_id, created_at DESC, id DESC);
CREATE INDEX referrals_by_key_idx ON referrals (referring_key_id, created_at DESC, id DESC);
CREATE INDEX referrals_due_idx ON referrals (expires_at) WHERE status = 'sent';
CREATE INDEX referrals_declines_idx ON referrals (service_id, closed_at) WHERE reason = 'no_capacity';

-- The sealed hand-off, apart, so that leaving `sent` deletes the row.
CREATE TABLE referral_handoffs (
    referral_id uuid PRIMARY KEY REFERENCES referrals (id) ON DELETE CASCADE,
    ciphertext bytea NOT NULL CONSTRAINT referral_handoffs_size CHECK (length(ciphertext) BETWEEN 49 AND 8240)
);

-- Every change of status: who, when, from, to, and the reason code.
CREATE TABLE referral_events (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    referral_id uuid NOT NULL REFERENCES referrals (id),
    at timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- NULL when the system acts (expiry) or the command line.
    key_id uuid REFERENCES api_keys (id),
    from_status text,
    to_status text NOT NULL,
    reason text
);
CREATE INDEX referral_events_referral_idx ON referral_events (referral_id, id);

-- The webhook outbox and delivery log: a row is written in the same
-- transaction as the change it announces; `id` is the webhook-id, the same
-- on every attempt and replay.
CREATE TABLE webhook_deliveries (
    id uuid PRIMARY KEY,
    organization_id uuid NOT NULL REFERENCES organizations (id),
    referral_id uuid NOT NULL REFERENCES referrals (id),
    event text NOT NULL CONSTRAINT webhook_deliveries_event_known CHECK (
        event IN ('referral.created', 'referral.status_changed')),
    -- The exact body sent: referral id, status and time only.
    payload text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    state text NOT NULL DEFAULT 'pending' CONSTRAINT webhook_deliveries_state_known CHECK (
        state IN ('pending', 'delivered', 'failed')),
    attempts integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    delivered_at timestamptz
);
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_organization_idx ON webhook_deliveries (organization_id, created_at DESC, id DESC);

CREATE TABLE webhook_attempts (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delivery_id uuid NOT NULL REFERENCES webhook_deliveries (id),
    at timestamptz NOT NULL DEFAULT clock_timestamp(),
    -- The receiver's HTTP status, or NULL with a short error class
    -- (`timeout`, `connect`, …) when there was no response.
    status_code integer,
    error text CONSTRAINT webhook_attempts_error_length CHECK (length(error) <= 200),
    duration_ms integer NOT NULL
);
CREATE INDEX webhook_attempts_delivery_idx ON webhook_attempts (delivery_id, id);
