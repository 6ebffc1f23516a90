-- Classify every AI cost line (DOMAIN.md §6), as a view named `classified`.
--
-- Inputs: `lines` and `facets` (the period's current batch, see lines.rs), and the
-- governance tables (see governance.rs): workloads, scope_accounts, scope_regions, claims.
-- The two role predicates are filled in from the configured patterns (governance.rs
-- `classify_sql`): {is_broad} and {is_dedicated}, a LIKE per pattern; a role generated
-- for a workload is dedicated too (`generated_roles`, and `generated_sets` for the
-- permission sets of generated Coding roles, one row per distinct name); {year} and {month} are the period's, and
-- {facet_days} is lines.rs's FACET_DAYS. {facet_key} is the one integer the lines are
-- summed by: `facet_day` without gateway mapping rules; with rules, `facet_day` ×
-- {key_base} + the line's session number when some rule matches that session (else 0), so
-- the sum keeps a single integer key and no line is tested against a rule; {sum_rule}
-- then numbers the rule that takes each summed row (0 for none; newest rule first)
-- (governance.rs `classify_sql`); `gateway_rules` holds each rule's number, id and workload.
--
-- A facet is everything that decides a line's outcome except its day (account, anchor,
-- caller, region, model) plus what attribution groups by, so the lines of one facet and
-- day share one outcome. The only per-line work is summing by one integer (facet and day);
-- the text work (role patterns, claims, approval scopes, the gap's name) is done once per
-- facet or per facet and claim, and the day only picks which claim held the facet then.
-- One row per facet and day with spend (and per session, for sessions a gateway rule
-- matches), with its workload (NULL when nobody is charged) and its gap (NULL when
-- attributed and in scope).
--
-- facet_day = facet × {facet_days} + day of month − 1 (lines.rs). Non-AI lines (facet 0)
-- are skipped: the lines are written with them first and the AI lines clustered by facet
-- (lines.rs), so the filter drops their row groups by statistics without reading them.
--
-- A gateway mapping rule (DOMAIN.md §13) splits its role's facets: the lines of a facet and
-- day whose session or principal tags it matches are summed apart, charged to the rule's
-- workload ahead of any claim of the whole role (a broad role's included: the rule names
-- the workload the role cannot), and judged against that workload's approval scope.
WITH keyed_sums AS (
    SELECT {facet_key} AS facet_key, SUM(cost_dollars) AS dollars, SUM(cost_fraction) AS fraction, SUM(tokens) AS tokens, COUNT(*) AS lines
    FROM lines
    WHERE facet_day >= {facet_days}
    GROUP BY 1
),
session_sums AS (
    -- floor: DuckDB (the benchmark's baseline) divides integers as floats.
    SELECT
        CAST(floor(facet_key / {key_base}) AS INT) AS facet_day,
        CAST(facet_key % {key_base} AS INT) AS session_key,
        dollars, fraction, tokens, lines
    FROM keyed_sums
),
sums AS (
    SELECT facet_day, {sum_rule} AS rule, dollars, fraction, tokens, lines
    FROM session_sums
),
spend AS (
    SELECT
        CAST(floor(facet_day / {facet_days}) AS INT) AS facet,
        rule,
        make_date({year}, {month}, CAST(facet_day % {facet_days} + 1 AS INT)) AS day,
        -- Exact: the fraction is in units of 10^-10 dollars (lines.rs).
        CAST(dollars AS DECIMAL(38, 10)) + CAST(fraction AS DECIMAL(38, 0)) * CAST(0.0000000001 AS DECIMAL(11, 10)) AS cost,
        tokens,
        lines
    FROM sums
),
-- The key a role claim holds a facet by: an assumed role by its name; an IAM Identity
-- Center session (`AWSReservedSSO_{set}_{hex}/{user}`) by its permission set, so that a
-- claim of a generated name (or of the set) holds every session of that set.
keyed AS (
    SELECT
        facets.*,
        CASE WHEN principal_kind = 'identity_center' THEN 'sso' ELSE 'role' END AS claim_kind,
        CASE
            WHEN principal_kind = 'identity_center'
            THEN regexp_replace(principal_name, '^AWSReservedSSO_(.+)_[^_]+$', '\1')
            ELSE principal_name
        END AS claim_key
    FROM facets
),
roles AS (
    SELECT
        keyed.*,
        CASE WHEN guardrail THEN 'guardrail' WHEN platform = 'claude_platform' THEN 'workspace' ELSE '' END AS anchor_kind,
        principal_kind IN ('assumed_role', 'identity_center') AS is_role,
        principal_kind IN ('assumed_role', 'identity_center') AND ({is_broad}) AS is_broad,
        principal_kind IN ('assumed_role', 'identity_center')
            AND (({is_dedicated}) OR generated.name IS NOT NULL OR generated_set.name IS NOT NULL) AS is_dedicated
    FROM keyed
    -- Generated names are tables, not IN lists in this text: an organisation with tens of
    -- thousands of workloads would otherwise make the plan itself the slow part.
    LEFT JOIN generated_roles generated ON generated.name = keyed.principal_name
    LEFT JOIN generated_sets generated_set ON keyed.claim_kind = 'sso' AND generated_set.name = keyed.claim_key
),
-- Per facet, its gap on a day no claim holds it (rules 1, 2, 3, 5, 6 and the workspace).
kinds AS (
    SELECT
        roles.*,
        CASE
            WHEN anchor_kind = 'guardrail' THEN 'unallocated_guardrail'
            WHEN anchor_kind = 'workspace' THEN 'unclaimed_ai_allocation'
            WHEN principal_kind = 'none' THEN 'attribution_not_enabled'
            WHEN is_broad THEN 'unattributed_spend'
            WHEN is_dedicated THEN 'unclaimed_ai_allocation'
            ELSE 'not_business_approved'
        END AS unheld_gap
    FROM roles
),
-- The claims that may hold a facet: its guardrail's or workspace's, else its role's (a user
-- named like a claimed role is not that role), each with its span.
candidates AS (
    SELECT k.facet, c.workload_id, c.from_day, c.until_day
    FROM kinds k
    JOIN claims c ON c.kind = k.anchor_kind AND c.name = k.anchor
    WHERE k.anchor_kind <> ''
    UNION ALL
    SELECT k.facet, c.workload_id, c.from_day, c.until_day
    FROM kinds k
    JOIN claims c ON c.kind = k.claim_kind AND c.account = k.principal_account AND c.name = k.claim_key
    WHERE k.anchor_kind = '' AND k.is_role
),
-- The facets gateway rules took some lines of, with the rule's workload.
ruled AS (
    SELECT DISTINCT spend.facet, spend.rule, r.rule_id, r.workload_id
    FROM spend
    JOIN gateway_rules r ON r.rule = spend.rule
),
-- Per facet and workload that may be charged for it (by a claim or a rule), whether the
-- facet lies outside that workload's approval: account, region or model.
scoped AS (
    SELECT
        charge.facet,
        charge.workload_id,
        sa.workload_id IS NULL
            OR (k.region <> '' AND sr.workload_id IS NULL)
            OR (k.model LIKE '%.%' AND k.model <> COALESCE(w.model_id, '')) AS out_of_scope
    FROM (SELECT facet, workload_id FROM candidates UNION SELECT facet, workload_id FROM ruled) charge
    JOIN kinds k ON k.facet = charge.facet
    LEFT JOIN workloads w ON w.workload_id = charge.workload_id
    LEFT JOIN scope_accounts sa ON sa.workload_id = charge.workload_id AND sa.account = k.account
    LEFT JOIN scope_regions sr ON sr.workload_id = charge.workload_id AND sr.region = k.region
),
-- Per facet and claim, what holding means: a broad role stays Unattributed Spend and
-- charges nobody (rule 3 before rule 4); otherwise the claimant is charged, and Out of
-- Approved Scope when account, region or model lies outside its approval.
holdings AS (
    SELECT
        cand.facet,
        cand.from_day,
        cand.until_day,
        CASE WHEN k.is_broad AND k.anchor_kind = '' THEN NULL ELSE cand.workload_id END AS charged,
        CASE
            WHEN k.anchor_kind <> '' THEN NULL
            WHEN k.is_broad THEN 'unattributed_spend'
            WHEN s.out_of_scope THEN 'out_of_approved_scope'
        END AS held_gap
    FROM candidates cand
    JOIN kinds k ON k.facet = cand.facet
    JOIN scoped s ON s.facet = cand.facet AND s.workload_id = cand.workload_id
),
-- The claim in force on the day, if any, for the lines no rule took; the rule's workload
-- for the lines a rule took.
held AS (
    SELECT spend.*, h.facet IS NOT NULL AS is_held, h.charged, h.held_gap
    FROM spend
    LEFT JOIN holdings h
        ON h.facet = spend.facet
        AND spend.rule = 0
        AND spend.day >= h.from_day
        AND (h.until_day IS NULL OR spend.day <= h.until_day)
),
taken AS (
    SELECT ruled.facet, ruled.rule, ruled.rule_id, ruled.workload_id, CASE WHEN s.out_of_scope THEN 'out_of_approved_scope' END AS rule_gap
    FROM ruled
    JOIN scoped s ON s.facet = ruled.facet AND s.workload_id = ruled.workload_id
)
SELECT
    k.account,
    held.day,
    k.platform,
    k.region,
    k.model,
    k.token_type,
    k.anchor,
    k.principal_kind,
    k.principal_account,
    k.principal_name,
    held.cost,
    held.tokens,
    held.lines,
    CASE WHEN held.rule <> 0 THEN t.workload_id ELSE held.charged END AS workload_id,
    CASE
        WHEN held.rule <> 0 THEN t.rule_gap
        WHEN held.is_held THEN held.held_gap
        ELSE k.unheld_gap
    END AS gap,
    COALESCE(t.rule_id, '') AS rule_id
FROM held
JOIN kinds k ON k.facet = held.facet
LEFT JOIN taken t ON t.facet = held.facet AND t.rule = held.rule
