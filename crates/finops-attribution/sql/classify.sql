-- Classify every AI cost line (DOMAIN.md §6), as a view named `classified`.
--
-- Inputs: `lines` and `facets` (the period's current batch, see lines.rs), and the
-- governance tables (see governance.rs): workloads, scope_accounts, scope_regions, claims.
-- The two role predicates are filled in from the configured patterns and the generated
-- role names (governance.rs `classify_sql`): {is_broad} and {is_dedicated}, a LIKE per
-- pattern and an IN list for generated names.
--
-- A facet is everything that decides a line's outcome (account, day, anchor, caller, region,
-- model) plus what attribution groups by, so every line of a facet has the same outcome: the
-- lines are summed per facet number (one integer per line, the only per-line work), and the
-- few thousand facets are classified. One row per facet with spend, with its workload (NULL
-- when nobody is charged) and its gap (NULL when attributed and in scope).
WITH spend AS (
    SELECT facet, SUM(cost) AS cost, SUM(tokens) AS tokens, COUNT(*) AS lines
    FROM lines
    WHERE facet > 0
    GROUP BY facet
),
ai AS (
    SELECT
        f.account,
        f.day,
        f.platform,
        f.region,
        f.model,
        f.token_type,
        f.anchor,
        CASE WHEN f.guardrail THEN 'guardrail' WHEN f.platform = 'claude_platform' THEN 'workspace' ELSE '' END AS anchor_kind,
        f.principal_kind,
        f.principal_account,
        f.principal_name,
        f.principal_kind IN ('assumed_role', 'identity_center') AND ({is_broad}) AS is_broad,
        f.principal_kind IN ('assumed_role', 'identity_center') AND ({is_dedicated}) AS is_dedicated,
        spend.cost,
        spend.tokens,
        spend.lines
    FROM spend
    JOIN facets f ON f.facet = spend.facet
),
claimed AS (
    SELECT
        ai.*,
        CASE WHEN ai.anchor_kind <> '' THEN anchor_claim.workload_id ELSE role_claim.workload_id END AS holder
    FROM ai
    LEFT JOIN claims role_claim
        ON role_claim.kind = 'role'
        -- A user (IAM, federated, root) named like a claimed role is not that role.
        AND ai.principal_kind IN ('assumed_role', 'identity_center')
        AND role_claim.account = ai.principal_account
        AND role_claim.name = ai.principal_name
        AND ai.day >= role_claim.from_day
        AND (role_claim.until_day IS NULL OR ai.day <= role_claim.until_day)
    LEFT JOIN claims anchor_claim
        ON anchor_claim.kind = ai.anchor_kind
        AND anchor_claim.name = ai.anchor
        AND ai.day >= anchor_claim.from_day
        AND (anchor_claim.until_day IS NULL OR ai.day <= anchor_claim.until_day)
)
SELECT
    held.account,
    held.day,
    held.platform,
    held.region,
    held.model,
    held.token_type,
    held.anchor,
    held.principal_kind,
    held.principal_account,
    held.principal_name,
    held.cost,
    held.tokens,
    held.lines,
    CASE
        WHEN held.anchor_kind <> '' THEN held.holder
        WHEN held.principal_kind = 'none' OR held.is_broad THEN NULL
        ELSE held.holder
    END AS workload_id,
    CASE
        WHEN held.anchor_kind = 'guardrail' THEN
            CASE WHEN held.holder IS NULL THEN 'unallocated_guardrail' END
        WHEN held.anchor_kind = 'workspace' THEN
            CASE WHEN held.holder IS NULL THEN 'unclaimed_ai_allocation' END
        WHEN held.principal_kind = 'none' THEN 'attribution_not_enabled'
        WHEN held.is_broad THEN 'unattributed_spend'
        WHEN held.holder IS NOT NULL THEN
            CASE
                WHEN sa.workload_id IS NULL
                    OR (held.region <> '' AND sr.workload_id IS NULL)
                    OR (held.model LIKE '%.%' AND held.model <> w.model_id)
                THEN 'out_of_approved_scope'
            END
        WHEN held.is_dedicated THEN 'unclaimed_ai_allocation'
        ELSE 'not_business_approved'
    END AS gap
FROM claimed held
LEFT JOIN workloads w ON w.workload_id = held.holder
LEFT JOIN scope_accounts sa ON sa.workload_id = held.holder AND sa.account = held.account
LEFT JOIN scope_regions sr ON sr.workload_id = held.holder AND sr.region = held.region
