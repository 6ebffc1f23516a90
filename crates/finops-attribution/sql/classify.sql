-- Classify every AI cost line (DOMAIN.md §6), as a view named `classified`.
--
-- Inputs: `lines` (the period's current batch, see lines.rs), and the governance tables
-- (see governance.rs): workloads, scope_accounts, scope_regions, claims, generated_roles,
-- broad_patterns, dedicated_patterns.
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
        cost,
        tokens,
        1 AS lines
    FROM lines
    WHERE platform IS NOT NULL
),
names AS (
    SELECT DISTINCT principal_name FROM ai WHERE principal_kind IN ('assumed_role', 'identity_center')
),
broad AS (
    SELECT DISTINCT n.principal_name
    FROM names n JOIN broad_patterns p ON n.principal_name LIKE p.pattern ESCAPE '\'
),
dedicated AS (
    SELECT DISTINCT n.principal_name
    FROM names n JOIN dedicated_patterns p ON n.principal_name LIKE p.pattern ESCAPE '\'
    UNION
    SELECT role_name AS principal_name FROM generated_roles
),
held AS (
    SELECT
        ai.*,
        CASE WHEN ai.anchor_kind <> '' THEN anchor_claim.workload_id ELSE role_claim.workload_id END AS holder,
        broad.principal_name IS NOT NULL AS is_broad,
        dedicated.principal_name IS NOT NULL AS is_dedicated
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
    LEFT JOIN broad ON broad.principal_name = ai.principal_name
    LEFT JOIN dedicated ON dedicated.principal_name = ai.principal_name
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
FROM held
LEFT JOIN workloads w ON w.workload_id = held.holder
LEFT JOIN scope_accounts sa ON sa.workload_id = held.holder AND sa.account = held.account
LEFT JOIN scope_regions sr ON sr.workload_id = held.holder AND sr.region = held.region
