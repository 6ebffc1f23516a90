-- Classify every AI cost line (DOMAIN.md §6), as a view named `classified`.
--
-- Inputs: `lines` (the period's current batch, see lines.rs), and the governance tables
-- (see governance.rs): workloads, scope_accounts, scope_regions, claims. The two role
-- predicates are filled in from the configured patterns and the generated role names
-- (governance.rs `classify_sql`): {is_broad} and {is_dedicated}, evaluated per line on the
-- role name (a LIKE per pattern, a hash lookup for generated names), which was measured
-- faster than joining the lines with derived role lists.
--
-- One row per AI line with its workload (NULL when nobody is charged) and its gap (NULL
-- when attributed and in scope). Every table joined is small (claims, roles, scopes), so
-- each join is a hash probe per line; summing lines first was measured slower, because
-- grouping on eleven text columns costs more than the probes it saves (BENCHMARKS.md).
WITH ai AS (
    SELECT
        usage_account_id AS account,
        usage_date AS day,
        platform,
        region,
        model,
        token_type,
        anchor,
        CASE WHEN guardrail THEN 'guardrail' WHEN platform = 'claude_platform' THEN 'workspace' ELSE '' END AS anchor_kind,
        principal_kind,
        principal_account,
        principal_name,
        principal_kind IN ('assumed_role', 'identity_center') AND ({is_broad}) AS is_broad,
        principal_kind IN ('assumed_role', 'identity_center') AND ({is_dedicated}) AS is_dedicated,
        cost,
        tokens,
        1 AS lines
    FROM lines
    WHERE platform IS NOT NULL
),
claimed AS (
    SELECT
        ai.*,
        CASE WHEN ai.anchor_kind <> '' THEN anchor_claim.workload_id ELSE role_claim.workload_id END AS holder
    FROM ai
    LEFT JOIN claims role_claim
        ON role_claim.kind = 'role'
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
