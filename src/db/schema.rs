// The tables as diesel sees them, kept in step with migrations/ by hand
// (`diesel print-schema` with diesel.toml reproduces it). Every row type
// selects its columns by name, so the API tests fail on a column that
// drifted.

diesel::table! {
    use diesel::sql_types::*;

    ketnoi_meta (key) {
        key -> Text,
        value -> Text,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    map_version (singleton) {
        singleton -> Bool,
        version -> Int8,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use postgis_diesel::sql_types::Geography;

    provinces (code) {
        code -> Text,
        name -> Text,
        name_en -> Text,
        full_name -> Text,
        full_name_en -> Text,
        boundary -> Geography,
        area_m2 -> Float8,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use postgis_diesel::sql_types::Geography;

    wards (code) {
        code -> Text,
        province_code -> Text,
        name -> Text,
        name_en -> Text,
        full_name -> Text,
        full_name_en -> Text,
        boundary -> Nullable<Geography>,
        reference_point -> Nullable<Geography>,
        population -> Nullable<Int4>,
        area_km2 -> Nullable<Float8>,
        area_m2 -> Nullable<Float8>,
        folded_names -> Text,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    categories (code) {
        code -> Text,
        position -> Int2,
        label_vi -> Text,
        label_en -> Text,
        description_vi -> Text,
        description_en -> Text,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    document_types (code) {
        code -> Text,
        position -> Int2,
        label_vi -> Text,
        label_en -> Text,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    organizations (id) {
        id -> Uuid,
        name -> Text,
        name_en -> Nullable<Text>,
        description -> Text,
        description_en -> Nullable<Text>,
        email -> Nullable<Text>,
        website -> Nullable<Text>,
        created_at -> Timestamptz,
        last_modified -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    services (id) {
        id -> Uuid,
        organization_id -> Uuid,
        name -> Text,
        name_en -> Nullable<Text>,
        description -> Text,
        description_en -> Nullable<Text>,
        url -> Nullable<Text>,
        email -> Nullable<Text>,
        status -> Text,
        delivery_in_person -> Bool,
        delivery_remote -> Bool,
        accepting_referrals -> Bool,
        min_age -> Nullable<Int2>,
        max_age -> Nullable<Int2>,
        genders -> Nullable<Array<Text>>,
        victim_statuses -> Nullable<Array<Text>>,
        nationalities -> Nullable<Array<Text>>,
        residence_provinces -> Nullable<Array<Text>>,
        required_documents -> Array<Text>,
        languages -> Array<Text>,
        interpretation_available -> Bool,
        is_free -> Bool,
        fees_description -> Nullable<Text>,
        fees_description_en -> Nullable<Text>,
        application_process -> Nullable<Text>,
        application_process_en -> Nullable<Text>,
        capacity_available -> Nullable<Int4>,
        capacity_maximum -> Nullable<Int4>,
        capacity_unit -> Nullable<Text>,
        capacity_updated -> Nullable<Timestamptz>,
        assured_date -> Nullable<Date>,
        created_at -> Timestamptz,
        last_modified -> Timestamptz,
        service_area_m2 -> Nullable<Float8>,
        public_last_modified -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    service_categories (service_id, category_code) {
        service_id -> Uuid,
        category_code -> Text,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use postgis_diesel::sql_types::Geography;

    locations (id) {
        id -> Uuid,
        organization_id -> Uuid,
        name -> Text,
        name_en -> Nullable<Text>,
        description -> Nullable<Text>,
        description_en -> Nullable<Text>,
        address -> Nullable<Text>,
        ward_code -> Nullable<Text>,
        province_code -> Text,
        point -> Geography,
        confidential -> Bool,
        public_point -> Geography,
        created_at -> Timestamptz,
        last_modified -> Timestamptz,
        archived_at -> Nullable<Timestamptz>,
        public_last_modified -> Timestamptz,
    }
}

diesel::table! {
    api_keys (id) {
        id -> Uuid,
        prefix -> Text,
        secret_hash -> Bytea,
        role -> Text,
        organization_id -> Nullable<Uuid>,
        label -> Text,
        created_at -> Timestamptz,
        expires_at -> Nullable<Timestamptz>,
        revoked_at -> Nullable<Timestamptz>,
        province_code -> Nullable<Text>,
    }
}

diesel::table! {
    referral_endpoints (organization_id) {
        organization_id -> Uuid,
        public_key -> Bytea,
        webhook_url -> Nullable<Text>,
        webhook_secret -> Nullable<Bytea>,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    referrals (id) {
        id -> Uuid,
        service_id -> Uuid,
        need -> Text,
        location_id -> Nullable<Uuid>,
        receiving_organization_id -> Uuid,
        referring_key_id -> Nullable<Uuid>,
        referring_organization_id -> Nullable<Uuid>,
        province_code -> Nullable<Text>,
        ward_code -> Nullable<Text>,
        consent -> Bool,
        status -> Text,
        reason -> Nullable<Text>,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
        accepted_at -> Nullable<Timestamptz>,
        in_service_at -> Nullable<Timestamptz>,
        closed_at -> Nullable<Timestamptz>,
        updated_at -> Timestamptz,
        version -> Int4,
    }
}

diesel::table! {
    referral_handoffs (referral_id) {
        referral_id -> Uuid,
        ciphertext -> Bytea,
    }
}

diesel::table! {
    referral_events (id) {
        id -> Int8,
        referral_id -> Uuid,
        at -> Timestamptz,
        key_id -> Nullable<Uuid>,
        from_status -> Nullable<Text>,
        to_status -> Text,
        reason -> Nullable<Text>,
    }
}

diesel::table! {
    webhook_deliveries (id) {
        id -> Uuid,
        organization_id -> Uuid,
        referral_id -> Uuid,
        event -> Text,
        payload -> Text,
        created_at -> Timestamptz,
        state -> Text,
        attempts -> Int4,
        next_attempt_at -> Timestamptz,
        delivered_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    webhook_attempts (id) {
        id -> Int8,
        delivery_id -> Uuid,
        at -> Timestamptz,
        status_code -> Nullable<Int4>,
        error -> Nullable<Text>,
        duration_ms -> Int4,
    }
}

diesel::table! {
    audit_log (id) {
        id -> Int8,
        at -> Timestamptz,
        key_id -> Nullable<Uuid>,
        action -> Text,
        resource_type -> Text,
        resource_id -> Uuid,
        before -> Nullable<Jsonb>,
        after -> Nullable<Jsonb>,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    service_at_location (id) {
        id -> Uuid,
        service_id -> Uuid,
        location_id -> Uuid,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    phones (id) {
        id -> Uuid,
        organization_id -> Nullable<Uuid>,
        service_id -> Nullable<Uuid>,
        location_id -> Nullable<Uuid>,
        position -> Int2,
        number -> Text,
        extension -> Nullable<Text>,
        #[sql_name = "type"]
        phone_type -> Text,
        description -> Nullable<Text>,
        description_en -> Nullable<Text>,
        languages -> Array<Text>,
    }
}

diesel::table! {
    use diesel::sql_types::*;

    schedules (id) {
        id -> Uuid,
        service_id -> Uuid,
        position -> Int2,
        byday -> Array<Text>,
        opens_at -> Nullable<Time>,
        closes_at -> Nullable<Time>,
        valid_from -> Nullable<Date>,
        valid_to -> Nullable<Date>,
        description -> Nullable<Text>,
        description_en -> Nullable<Text>,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use postgis_diesel::sql_types::Geography;

    service_areas (id) {
        id -> Uuid,
        service_id -> Uuid,
        position -> Int2,
        description -> Nullable<Text>,
        description_en -> Nullable<Text>,
        province_code -> Nullable<Text>,
        extent -> Nullable<Geography>,
        area_m2 -> Nullable<Float8>,
        ward_code -> Nullable<Text>,
    }
}

diesel::joinable!(wards -> provinces (province_code));
diesel::joinable!(api_keys -> organizations (organization_id));
diesel::joinable!(audit_log -> api_keys (key_id));
diesel::joinable!(services -> organizations (organization_id));
diesel::joinable!(service_categories -> services (service_id));
diesel::joinable!(service_categories -> categories (category_code));
diesel::joinable!(locations -> organizations (organization_id));
diesel::joinable!(locations -> provinces (province_code));
diesel::joinable!(service_at_location -> services (service_id));
diesel::joinable!(service_at_location -> locations (location_id));
diesel::joinable!(schedules -> services (service_id));
diesel::joinable!(service_areas -> services (service_id));

// The search document of a service (migration 6). Its `document tsvector`
// has no diesel type and is only reached through the SQL fragments of
// db/models/search.rs; organisations' generated search columns likewise.
diesel::table! {
    use diesel::sql_types::*;

    service_search (service_id) {
        service_id -> Uuid,
        words -> Text,
        names -> Text,
    }
}

diesel::joinable!(referral_handoffs -> referrals (referral_id));
diesel::joinable!(referral_events -> referrals (referral_id));
diesel::joinable!(webhook_attempts -> webhook_deliveries (delivery_id));

diesel::allow_tables_to_appear_in_same_query!(
    referrals,
    referral_handoffs,
    referral_events,
    referral_endpoints,
    webhook_deliveries,
    webhook_attempts,
    ketnoi_meta,
    map_version,
    service_search,
    provinces,
    wards,
    categories,
    document_types,
    organizations,
    services,
    service_categories,
    locations,
    service_at_location,
    phones,
    schedules,
    service_areas,
    api_keys,
    audit_log,
);
