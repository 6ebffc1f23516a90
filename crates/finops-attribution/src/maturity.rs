//! The spend side of the AI Governance Maturity score (DOMAIN.md §10), from the question's
//! classification: attributed and unattributed dollars, the open gaps and the largest,
//! the models active and those governed (approved, in scope where they run, free of gaps).

use std::collections::BTreeMap;

use finops_domain::maturity::MaturityFigures;

use crate::{AttributionError, Dimension, Question};

impl Question {
    /// The figures of `MaturityFigures` the period's spend answers; the rest (claims,
    /// estimates, the governed path's speed, tasks) are the governance state's.
    pub async fn maturity_spend(&self) -> Result<MaturityFigures, AttributionError> {
        let by = self.attribute(&[Dimension::Gap, Dimension::Model]).await?;
        let mut figures = MaturityFigures::default();
        // Per model: all its cents, and those in gaps.
        let mut models: BTreeMap<String, (i64, i64)> = BTreeMap::new();
        for row in &by.rows {
            let (gap, model) = (row.keys[0].as_str(), row.keys[1].clone());
            let sums = models.entry(model).or_default();
            sums.0 += row.cost_cents;
            if gap.is_empty() {
                figures.attributed_cents += row.cost_cents;
            } else {
                figures.unattributed_cents += row.cost_cents;
                sums.1 += row.cost_cents;
            }
        }
        models.retain(|model, (all, _)| !model.is_empty() && *all != 0);
        figures.models_active = models.len() as u32;
        figures.models_governed = models.values().filter(|(_, in_gaps)| *in_gaps == 0).count() as u32;
        figures.top_ungoverned_model = models
            .iter()
            .filter(|(_, (_, in_gaps))| *in_gaps != 0)
            .max_by_key(|(model, (_, in_gaps))| (*in_gaps, std::cmp::Reverse((*model).clone())))
            .map(|(model, (_, in_gaps))| (model.clone(), *in_gaps));
        let gaps = self.gaps().await?;
        figures.open_gaps = gaps.len() as u32;
        figures.largest_gap = gaps
            .iter()
            .max_by_key(|g| (g.spend.cents, std::cmp::Reverse(g.identity.anchor.clone())))
            .map(|g| (format!("{} ({})", g.identity.kind.scenario(), g.identity.principal_or_anchor()), g.spend.cents));
        Ok(figures)
    }
}
