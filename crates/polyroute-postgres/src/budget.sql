-- polyroute-postgres migration 2: the budget (see budget.rs). Money is numeric (exact); times are the server's.
CREATE TABLE polyroute_budget_spent (
    scope text PRIMARY KEY,
    spent numeric NOT NULL DEFAULT 0
);
CREATE TABLE polyroute_budget_holds (
    scope      text NOT NULL,
    id         text NOT NULL,
    amount     numeric NOT NULL,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (scope, id)
);
CREATE INDEX polyroute_budget_holds_expiry ON polyroute_budget_holds (scope, expires_at);
CREATE TABLE polyroute_budget_settled (
    id         text PRIMARY KEY,
    settled_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX polyroute_budget_settled_at ON polyroute_budget_settled (settled_at);

-- Every change to a scope's holds or spend first locks the scope's row in polyroute_budget_spent, always in
-- ascending scope order, so concurrent reservations of one scope serialize and never deadlock.
CREATE FUNCTION polyroute_budget_lock(p_scopes text[]) RETURNS void LANGUAGE plpgsql AS $f$
BEGIN
    INSERT INTO polyroute_budget_spent (scope)
        SELECT DISTINCT s FROM unnest(p_scopes) AS s ORDER BY 1
        ON CONFLICT (scope) DO NOTHING;
    -- PERFORM runs the query to the end: every row is locked (a SQL function's last SELECT stops at one row).
    PERFORM 1 FROM polyroute_budget_spent b WHERE b.scope = ANY (p_scopes) ORDER BY b.scope FOR UPDATE;
END
$f$;

-- Hold p_amount on every scope, or on none. Answers (1) placed, (2) already held or settled, or
-- (0, i, spent, held): scope i (1-based) would exceed p_limits[i] (NULL: no limit).
CREATE FUNCTION polyroute_budget_reserve(p_id text, p_amount numeric, p_ttl_ms bigint, p_scopes text[],
                                         p_limits numeric[])
RETURNS TABLE (code int, idx int, spent numeric, held numeric) LANGUAGE plpgsql AS $f$
DECLARE
    v_spent numeric;
    v_held  numeric;
BEGIN
    PERFORM polyroute_budget_lock(p_scopes);
    IF EXISTS (SELECT 1 FROM polyroute_budget_settled s WHERE s.id = p_id) THEN
        RETURN QUERY SELECT 2, 0, 0::numeric, 0::numeric;
        RETURN;
    END IF;
    -- Expired holds (a process that died or stalled) stop counting.
    DELETE FROM polyroute_budget_holds h WHERE h.scope = ANY (p_scopes) AND h.expires_at <= clock_timestamp();
    IF EXISTS (SELECT 1 FROM polyroute_budget_holds h WHERE h.scope = ANY (p_scopes) AND h.id = p_id) THEN
        RETURN QUERY SELECT 2, 0, 0::numeric, 0::numeric;
        RETURN;
    END IF;
    FOR i IN 1 .. coalesce(array_length(p_scopes, 1), 0) LOOP
        IF p_limits[i] IS NOT NULL THEN
            SELECT b.spent INTO v_spent FROM polyroute_budget_spent b WHERE b.scope = p_scopes[i];
            SELECT coalesce(sum(h.amount), 0) INTO v_held FROM polyroute_budget_holds h WHERE h.scope = p_scopes[i];
            IF v_spent + v_held + p_amount > p_limits[i] THEN
                RETURN QUERY SELECT 0, i, v_spent, v_held;
                RETURN;
            END IF;
        END IF;
    END LOOP;
    INSERT INTO polyroute_budget_holds (scope, id, amount, expires_at)
        SELECT DISTINCT s, p_id, p_amount, clock_timestamp() + p_ttl_ms * interval '1 millisecond'
        FROM unnest(p_scopes) AS s
        ON CONFLICT DO NOTHING;
    RETURN QUERY SELECT 1, 0, 0::numeric, 0::numeric;
END
$f$;

-- End reservation p_id once: remove its holds on p_scopes and add p_billed (NULL: release only) to each scope's
-- spend. Answers false, changing nothing, when p_id was settled before (within two days).
CREATE FUNCTION polyroute_budget_settle(p_id text, p_scopes text[], p_billed numeric)
RETURNS boolean LANGUAGE plpgsql AS $f$
BEGIN
    INSERT INTO polyroute_budget_settled (id) VALUES (p_id) ON CONFLICT (id) DO NOTHING;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    PERFORM polyroute_budget_lock(p_scopes);
    DELETE FROM polyroute_budget_holds h WHERE h.scope = ANY (p_scopes) AND h.id = p_id;
    IF p_billed IS NOT NULL AND p_billed <> 0 THEN
        UPDATE polyroute_budget_spent b SET spent = b.spent + p_billed WHERE b.scope = ANY (p_scopes);
    END IF;
    -- Forget ids settled more than two days ago, a few at a time (rows another settle is deleting are skipped).
    DELETE FROM polyroute_budget_settled s WHERE s.id IN (
        SELECT o.id FROM polyroute_budget_settled o WHERE o.settled_at < now() - interval '2 days'
        LIMIT 100 FOR UPDATE SKIP LOCKED);
    RETURN true;
END
$f$;
