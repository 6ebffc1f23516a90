//! The noisy-neighbour chargeback statement (DOMAIN.md §6): claimed AI spend goes 100 % to
//! the workload's budget; AI spend in an account that no claimed workload owns is split
//! evenly across every budget mapped to that account — so budgets that never asked for AI
//! (non-AI budgets) absorb a share, and the statement says how much.
//!
//! The sums come from the `classified` view; the split is done here on the exact amounts
//! (the remainder going one unit at a time to the first budgets in name order), and only
//! then rounded to cents so that the lines add up exactly to the total rounded once
//! ([`crate::allocate_cents`]). The same question splits the same way every time.

use std::collections::BTreeMap;

use datafusion::arrow::array::AsArray;
use finops_domain::vocabulary::AccountId;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::{AttributionError, Question, Visibility, allocate_cents, raw_at, text_column};

/// One budget's line of the statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetCharge {
    /// The budget (nil for "no budget mapped").
    pub budget_id: Uuid,
    /// Its name (`(no budget mapped)` when the account has none).
    pub budget: String,
    /// Its cost centre.
    pub cost_centre: String,
    /// The account it is mapped to.
    pub account: String,
    /// Some approved workload charges this budget.
    pub ai_budget: bool,
    /// Spend of claimed workloads charging this budget, in cents.
    pub claimed_cents: i64,
    /// Its even share of the account's unowned AI spend, in cents.
    pub shared_cents: i64,
}

impl BudgetCharge {
    /// Claimed plus shared.
    pub fn total_cents(&self) -> i64 {
        self.claimed_cents + self.shared_cents
    }
}

/// The statement for a period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChargebackStatement {
    /// The period.
    pub period: String,
    /// The batch read.
    pub batch_hash: String,
    /// One line per budget with a charge, by account then budget name.
    pub charges: Vec<BudgetCharge>,
    /// All AI spend charged (the sum of every line's total), in cents.
    pub total_cents: i64,
    /// What non-AI budgets absorb, in cents.
    pub absorbed_by_non_ai_cents: i64,
}

/// Splits `amount` into `parts` whole shares differing by at most one unit, larger shares
/// first (exact amounts are split before any rounding to cents).
pub fn split_evenly(amount: i128, parts: usize) -> Vec<i128> {
    if parts == 0 {
        return vec![];
    }
    let n = parts as i128;
    let (base, rest) = (amount.div_euclid(n), amount.rem_euclid(n));
    (0..n).map(|i| base + i128::from(i < rest)).collect()
}

impl Question {
    /// The chargeback statement. A Product Owner's holds only their workloads' claimed spend.
    pub async fn chargeback(&self) -> Result<ChargebackStatement, AttributionError> {
        let org = &self.view().organisation;
        // Claimed spend per (account of the budget, budget).
        let claimed = self
            .run(&format!(
                "SELECT COALESCE(b.budget_id, ''), c.account, SUM(c.cost) FROM {} \
                     WHERE w.workload_id IS NOT NULL GROUP BY 1, 2",
                crate::CHARGED
            ))
            .await?;
        // (charge, exact claimed, exact shared)
        let mut charges: BTreeMap<(String, String, Uuid), (BudgetCharge, i128, i128)> = BTreeMap::new();
        let ai_budgets: std::collections::BTreeSet<Uuid> =
            self.view().workloads.iter().flat_map(|w| w.budgets.iter().map(|b| b.budget_id)).collect();
        let entry = |budget_id: Option<Uuid>, line_account: &str| {
            let (id, budget) = match budget_id.and_then(|b| org.budgets.get(&b).map(|x| (b, x))) {
                Some((id, b)) => (id, Some(b)),
                None => (Uuid::nil(), None),
            };
            let account = budget.map_or_else(|| line_account.to_owned(), |b| b.account.as_str().to_owned());
            let name = budget.map_or_else(|| "(no budget mapped)".to_owned(), |b| b.name.clone());
            let charge = BudgetCharge {
                budget_id: id,
                budget: name.clone(),
                cost_centre: budget.map(|b| b.cost_centre.clone()).unwrap_or_default(),
                account: account.clone(),
                ai_budget: ai_budgets.contains(&id),
                claimed_cents: 0,
                shared_cents: 0,
            };
            (account, name, id, charge)
        };
        let mut add = |key: (String, String, Uuid, BudgetCharge), claimed: i128, shared: i128| {
            let (account, name, id, charge) = key;
            let c = charges.entry((account, name, id)).or_insert((charge, 0, 0));
            c.1 += claimed;
            c.2 += shared;
        };
        for batch in &claimed {
            let (budgets, accounts) = (text_column(batch.column(0))?, text_column(batch.column(1))?);
            let (budgets, accounts) = (budgets.as_string::<i32>(), accounts.as_string::<i32>());
            for row in 0..batch.num_rows() {
                let budget_id = Uuid::parse_str(budgets.value(row)).ok();
                add(entry(budget_id, accounts.value(row)), raw_at(batch.column(2).as_ref(), row), 0);
            }
        }
        if self.visibility == Visibility::Everything {
            let unowned = self
                .run("SELECT account, SUM(cost) FROM classified WHERE workload_id IS NULL GROUP BY account ORDER BY account")
                .await?;
            for batch in &unowned {
                let accounts = text_column(batch.column(0))?;
                let accounts = accounts.as_string::<i32>();
                for row in 0..batch.num_rows() {
                    let account = accounts.value(row);
                    let amount = raw_at(batch.column(1).as_ref(), row);
                    let budgets = AccountId::parse(account).map(|a| org.budgets_of(&a)).unwrap_or_default();
                    if budgets.is_empty() {
                        add(entry(None, account), 0, amount);
                        continue;
                    }
                    for ((id, _), share) in budgets.iter().zip(split_evenly(amount, budgets.len())) {
                        add(entry(Some(*id), account), 0, share);
                    }
                }
            }
        }
        // Lines add up to the total rounded once.
        let parts: Vec<i128> = charges.values().flat_map(|(_, claimed, shared)| [*claimed, *shared]).collect();
        let (cents, total_cents) = allocate_cents(&parts);
        let charges: Vec<BudgetCharge> = charges
            .into_values()
            .zip(cents.chunks(2))
            .map(|((mut charge, _, _), c)| {
                charge.claimed_cents = c[0];
                charge.shared_cents = c[1];
                charge
            })
            .collect();
        let absorbed_by_non_ai_cents =
            charges.iter().filter(|c| !c.ai_budget && !c.budget_id.is_nil()).map(|c| c.shared_cents).sum();
        Ok(ChargebackStatement {
            period: self.period.clone(),
            batch_hash: self.batch.hash.clone(),
            charges,
            total_cents,
            absorbed_by_non_ai_cents,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_split_hands_out_the_remainder_one_cent_at_a_time() {
        assert_eq!(split_evenly(100, 3), vec![34, 33, 33]);
        assert_eq!(split_evenly(-100, 3), vec![-33, -33, -34]);
        let (cents, total) = crate::allocate_cents(&split_evenly(19_500_000_000, 2));
        assert_eq!((cents, total), (vec![98, 97], 195));
        assert!(split_evenly(5, 0).is_empty());
    }

    proptest! {
        #[test]
        fn a_split_adds_up_and_is_even(cents in -10_000_000i128..10_000_000, parts in 1usize..50) {
            let shares = split_evenly(cents, parts);
            prop_assert_eq!(shares.iter().sum::<i128>(), cents);
            let (lo, hi) = (shares.iter().min().unwrap(), shares.iter().max().unwrap());
            prop_assert!(hi - lo <= 1);
        }

        #[test]
        fn allocated_cents_add_up_to_the_total_rounded_once(parts in proptest::collection::vec(-10_000_000_000_000i128..10_000_000_000_000, 0..40)) {
            let (cents, total) = crate::allocate_cents(&parts);
            prop_assert_eq!(cents.iter().sum::<i64>(), total);
            prop_assert_eq!(total, crate::cents(parts.iter().sum(), crate::lines::MONEY_SCALE));
            for (c, p) in cents.iter().zip(&parts) {
                let exact = *p as f64 / 1e8;
                prop_assert!((*c as f64 - exact).abs() < 1.0 + 1e-9, "{} vs {}", c, exact);
            }
        }
    }
}
