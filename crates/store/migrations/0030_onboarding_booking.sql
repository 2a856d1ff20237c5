-- The wizard's booking stage (spec 61.3): the link as confirmed, with the warnings the
-- tenant saw and accepted (a check that doubted the link does not block it).
ALTER TABLE genesis.onboarding_progress
    ADD COLUMN booking              jsonb CHECK (booking IS NULL OR jsonb_typeof(booking) = 'object'),
    ADD COLUMN booking_confirmed_at timestamptz;
