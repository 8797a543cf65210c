-- Push and webhook delivery (issue 6): the app's push token registration (POST /v1/push-tokens)
-- and webhook endpoints a partner disabled by answering 410 Gone.

-- the device's platform as the app reported it (ios, android, web...), informative only
ALTER TABLE push_tokens ADD COLUMN platform text;
ALTER TABLE push_tokens ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();

-- one row per webhook URL that was disabled; a URL without a row (or with disabled_at NULL) is
-- in use. Re-enable: UPDATE webhook_endpoints SET disabled_at = NULL WHERE url = ...
CREATE TABLE webhook_endpoints (
    url             text PRIMARY KEY,
    disabled_at     timestamptz,
    disabled_reason text,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
