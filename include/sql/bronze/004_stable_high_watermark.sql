-- bronze.stable_high_watermark(): a bronze_id W such that every row with bronze_id <= W is committed (or will
-- never exist). Readers of bronze.raw_events that go incrementally by bronze_id need it: bronze_id is taken
-- from the identity sequence at insert time, but parallel loader transactions commit in any order, so a
-- plain max(bronze_id) can be above a smaller id that becomes visible a moment later.
--
-- How: every loader transaction holds pg_advisory_xact_lock_shared(<key>) (shared: loaders never block each
-- other). This function takes the same key exclusively for an instant — it waits for the loader
-- transactions in flight, new ones wait for it — and reads the sequence's last value meanwhile; ids handed
-- out later are all larger. Call it in its own statement (READ COMMITTED), then read
--   WHERE bronze_id > <previous W> AND bronze_id <= <this W>.
-- Key 7161412180392961381 = the bytes 'cbronzee' as a bigint; shopstream.bronze.loader.LOAD_BARRIER_KEY.
CREATE OR REPLACE FUNCTION bronze.stable_high_watermark() RETURNS BIGINT
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    w BIGINT;
BEGIN
    PERFORM pg_advisory_lock(7161412180392961381);
    BEGIN
        w := coalesce(pg_sequence_last_value(pg_get_serial_sequence('bronze.raw_events', 'bronze_id')), 0);
    EXCEPTION WHEN OTHERS THEN
        PERFORM pg_advisory_unlock(7161412180392961381);
        RAISE;
    END;
    PERFORM pg_advisory_unlock(7161412180392961381);
    RETURN w;
END
$$;

COMMENT ON FUNCTION bronze.stable_high_watermark() IS
    'bronze_id up to which bronze.raw_events is final (no loader transaction still in flight below it).';
