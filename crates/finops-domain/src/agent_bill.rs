//! Agent Bill's intent grammar (DOMAIN.md §11): a question in plain English mapped to one
//! tool, deterministically — no model and no network — so the same words always ask the
//! same thing, and a question it does not understand gets the list of what can be asked.
//!
//! The grammar is a short list of rules tried in order; each names the words that ask for
//! its tool. Before the rules, the question yields its arguments: a billing period
//! (`2026-11`, `November`, `November 2026`, `last month`; none: the latest with CUR), a
//! workload (the text between quotes) and a confirmation (`confirm`, `confirmed`, `yes`).

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};

/// What Agent Bill can do: one tool per kind of question.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tool {
    /// What can be asked.
    Help,
    /// Each of the asker's workloads against its monthly estimate: the month to date, the
    /// burn per day, the projection and the day it crosses.
    OnTrack,
    /// Where the period's AI dollars went, largest first, with the model that explains each.
    TopCosts,
    /// The period's AI spend in all.
    Spend,
    /// Spend on models not approved for where (or by whom) they run.
    UnapprovedModels,
    /// The open Allocation Gaps, by kind.
    Gaps,
    /// One gap explained: its cause, anchor, spend, the people it concerns, what can be
    /// done and what was.
    ExplainGap,
    /// Act on a gap (one of its actions), with an explicit confirmation.
    ActOnGap,
    /// Weekly Spend Cards by status, and those waiting for the asker.
    SpendCards,
    /// Accept a Spend Card (its Product Owner), with an explicit confirmation.
    AcceptCard,
    /// Dispute a Spend Card's flagged lines (its Product Owner), with an explicit confirmation.
    DisputeCard,
    /// The AI Governance Maturity score and its next move.
    Maturity,
    /// Open investigations: what fired, on what, who owns it.
    Investigations,
    /// The kill switch: suspend a workload.
    Suspend,
    /// Resume a suspended workload.
    Resume,
}

impl Tool {
    /// Every tool, in the order the help lists them.
    pub const ALL: [Tool; 15] = [
        Tool::OnTrack,
        Tool::TopCosts,
        Tool::Spend,
        Tool::UnapprovedModels,
        Tool::Gaps,
        Tool::ExplainGap,
        Tool::ActOnGap,
        Tool::SpendCards,
        Tool::AcceptCard,
        Tool::DisputeCard,
        Tool::Maturity,
        Tool::Investigations,
        Tool::Suspend,
        Tool::Resume,
        Tool::Help,
    ];

    /// Its name (as on the wire and for MCP clients).
    pub fn as_str(self) -> &'static str {
        match self {
            Tool::Help => "help",
            Tool::OnTrack => "on_track",
            Tool::TopCosts => "top_costs",
            Tool::Spend => "spend",
            Tool::UnapprovedModels => "unapproved_models",
            Tool::Gaps => "gaps",
            Tool::ExplainGap => "explain_gap",
            Tool::ActOnGap => "act_on_gap",
            Tool::SpendCards => "spend_cards",
            Tool::AcceptCard => "accept_card",
            Tool::DisputeCard => "dispute_card",
            Tool::Maturity => "maturity",
            Tool::Investigations => "investigations",
            Tool::Suspend => "suspend",
            Tool::Resume => "resume",
        }
    }

    /// A question that asks for it, as the help shows it.
    pub fn example(self) -> &'static str {
        match self {
            Tool::Help => "What can I ask?",
            Tool::OnTrack => "Am I on track against my estimate?",
            Tool::TopCosts => "Which of my workloads costs most this month, and why?",
            Tool::Spend => "How much did we spend on AI in October?",
            Tool::UnapprovedModels => "Are any workloads using unapproved models?",
            Tool::Gaps => "Which AI spend has no owner?",
            Tool::ExplainGap => "Explain gaps/{uuid}",
            Tool::ActOnGap => "Act on gaps/{uuid}: notify_product_owner — they run it (confirm)",
            Tool::SpendCards => "Which spend cards are waiting for me?",
            Tool::AcceptCard => "Accept spendCards/{uuid} — the figures match our plan (confirm)",
            Tool::DisputeCard => "Dispute spendCards/{uuid} model/token/region — not ours (confirm)",
            Tool::Maturity => "What is our governance maturity score?",
            Tool::Investigations => "Which investigations are open?",
            Tool::Suspend => "Suspend \"Support Bot\" (confirm)",
            Tool::Resume => "Resume \"Support Bot\"",
        }
    }
}

/// A question understood: the tool and its arguments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Intent {
    /// The tool asked for.
    pub tool: Tool,
    /// The billing period named (YYYY-MM; `None`: the latest with CUR).
    pub period: Option<String>,
    /// The workload named between quotes.
    pub workload: Option<String>,
    /// The asker confirmed an action in the question.
    pub confirmed: bool,
    /// The Spend Card named (`spendCards/{uuid}`).
    pub card: Option<String>,
    /// Card lines named (`model/token type/region`, as a card keys them).
    pub lines: Vec<String>,
    /// The Allocation Gap named (`gaps/{uuid}`).
    pub gap: Option<String>,
    /// A gap action named (`notify_product_owner`, or in words: "notify product owner").
    pub gap_action: Option<String>,
}

/// The words that ask for each tool, tried in this order: the first rule with a phrase in
/// the question wins. Actions come first (a question that says "suspend" is never a
/// spend question), then the narrow questions before the broad ones.
const RULES: &[(Tool, &[&str])] = &[
    (Tool::Help, &["help", "what can i ask", "what can you do", "what do you know"]),
    (Tool::Resume, &["resume", "unsuspend", "reactivate", "turn back on", "re-enable"]),
    (Tool::Suspend, &["suspend", "kill switch", "stop my workload", "stop the workload", "shut off", "pause"]),
    (Tool::DisputeCard, &["dispute"]),
    (Tool::AcceptCard, &["accept"]),
    (Tool::ActOnGap, &["act on", "take action on"]),
    (Tool::ExplainGap, &["explain"]),
    (Tool::Investigations, &["investigation", "anomal", "spike", "alert", "runaway", "surge"]),
    (Tool::OnTrack, &["on track", "forecast", "estimate", "burn rate", "run rate", "exceed", "overspend", "cross"]),
    (
        Tool::UnapprovedModels,
        &["unapproved", "not approved", "unsanctioned", "out of scope", "outside scope", "outside its approval"],
    ),
    (Tool::Maturity, &["maturity", "governance score", "score", "next move", "how governed"]),
    (Tool::SpendCards, &["spend card", "card", "sign off", "sign-off", "chargeback"]),
    (Tool::Gaps, &["gap", "unattributed", "unclaimed", "no owner", "nobody owns", "without an owner", "orphan"]),
    (Tool::TopCosts, &["most", "top", "biggest", "largest", "highest", "which", "why", "breakdown"]),
    (Tool::Spend, &["spend", "spent", "cost", "how much", "dollars", "invoice"]),
];

const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

/// A question the grammar has no rule for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Agent Bill does not understand `{question}`; ask for instance: {}", examples())]
pub struct NotUnderstood {
    /// The question, as asked.
    pub question: String,
}

/// The help's examples, one per tool.
pub fn examples() -> String {
    let asked: Vec<String> =
        Tool::ALL.iter().filter(|t| **t != Tool::Help).map(|t| format!("\"{}\"", t.example())).collect();
    asked.join("; ")
}

/// Maps `question` to a tool and its arguments; `today` anchors "last month" and a month
/// named without a year (the latest such month not after today).
pub fn understand(question: &str, today: NaiveDate) -> Result<Intent, NotUnderstood> {
    let workload = quoted(question);
    // Matched without the quoted name (a workload called "Top Costs" asks nothing).
    let rest = match &workload {
        Some(name) => question.replacen(name.as_str(), " ", 1),
        None => question.to_owned(),
    };
    let words = normalise(&rest);
    let padded = format!(" {words} ");
    // A phrase at a word's start ("card" finds "cards", "cost" finds "costs").
    let has = |phrase: &str| padded.contains(&format!(" {phrase}"));
    let tool = RULES
        .iter()
        .find(|(_, phrases)| phrases.iter().any(|p| has(p)))
        .map(|(tool, _)| *tool)
        .ok_or_else(|| NotUnderstood { question: question.trim().to_owned() })?;
    let confirmed = ["confirm", "confirmed", "yes"].iter().any(|w| words.split(' ').any(|x| x == *w));
    let gap = named(question, "gaps/");
    // "Which gaps…" about one named gap is its explanation.
    let tool = if tool == Tool::Gaps && gap.is_some() { Tool::ExplainGap } else { tool };
    let gap_action = crate::gaps::GapActionKind::ALL
        .iter()
        .map(|a| a.as_str())
        .find(|a| question.to_lowercase().contains(a) || padded.contains(&format!(" {} ", a.replace('_', " "))))
        .map(str::to_owned);
    Ok(Intent {
        tool,
        period: period(&words, today),
        workload,
        confirmed,
        card: named(question, "spendCards/"),
        lines: lines(question),
        gap,
        gap_action,
    })
}

/// Lower case, letters, digits and `-` kept, everything else a single space.
fn normalise(text: &str) -> String {
    let kept: String =
        text.chars().map(|c| if c.is_alphanumeric() || c == '-' { c.to_ascii_lowercase() } else { ' ' }).collect();
    kept.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The first text between a pair of quotes ("…", “…”, or '…' opening at a word's start and
/// closing at a word's end, so the apostrophes of "what's" and "Maria's" quote nothing),
/// trimmed, if not empty.
fn quoted(text: &str) -> Option<String> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let word_start = |i: usize| i == 0 || !chars[i - 1].1.is_alphanumeric();
    let word_end = |i: usize| i + 1 == chars.len() || !chars[i + 1].1.is_alphanumeric();
    for (open, close) in [('"', '"'), ('\u{201c}', '\u{201d}'), ('\'', '\'')] {
        let single = open == '\'';
        let Some(start) = (0..chars.len()).find(|&i| chars[i].1 == open && (!single || word_start(i))) else {
            continue;
        };
        let Some(end) = (start + 1..chars.len()).find(|&i| chars[i].1 == close && (!single || word_end(i))) else {
            continue;
        };
        let name = text[chars[start].0 + open.len_utf8()..chars[end].0].trim();
        if !name.is_empty() {
            return Some(name.to_owned());
        }
    }
    None
}

/// The first `{collection}{uuid}` in `text` (`spendCards/…`, `gaps/…`).
fn named(text: &str, collection: &str) -> Option<String> {
    let start = text.find(collection)?;
    let id: String = text[start + collection.len()..]
        .chars()
        .take_while(|c| c.is_ascii_hexdigit() || *c == '-' || *c == '{' || *c == '}')
        .collect();
    (!id.is_empty()).then(|| format!("{collection}{id}"))
}

/// The card lines named in `text`: words of three `/`-separated parts that are not a
/// card's name (`amazon.nova-pro-v1:0/cache_read/eu-central-1`).
fn lines(text: &str) -> Vec<String> {
    text.split_whitespace()
        .map(|w| w.trim_matches(|c: char| matches!(c, ',' | ';' | '.' | '"' | '\'' | '(' | ')')))
        .filter(|w| {
            !w.starts_with("spendCards/") && !w.starts_with("gaps/") && w.split('/').count() == 3 && !w.contains("//")
        })
        .map(str::to_owned)
        .collect()
}

/// The billing period named in `words`.
fn period(words: &str, today: NaiveDate) -> Option<String> {
    let tokens: Vec<&str> = words.split(' ').collect();
    for (i, token) in tokens.iter().enumerate() {
        if crate::cur_batches::is_billing_period(token) {
            return Some((*token).to_owned());
        }
        if *token == "last" && tokens.get(i + 1) == Some(&"month") {
            let first = today.with_day(1)?;
            let previous = first.pred_opt()?;
            return Some(format!("{:04}-{:02}", previous.year(), previous.month()));
        }
        let Some(month) = MONTHS.iter().position(|m| m == token) else { continue };
        let year = tokens.get(i + 1).and_then(|y| y.parse::<i32>().ok()).filter(|y| (2000..=2100).contains(y));
        let after_preposition =
            i > 0 && ["in", "for", "during", "of", "since", "from", "through"].contains(&tokens[i - 1]);
        // "May I see …" names no month.
        if *token == "may" && year.is_none() && !after_preposition {
            continue;
        }
        let month = month as u32 + 1;
        let year = match year {
            Some(year) => year,
            None if month <= today.month() => today.year(),
            None => today.year() - 1,
        };
        return Some(format!("{year:04}-{month:02}"));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 12, 2).unwrap()
    }

    fn tool(q: &str) -> Tool {
        understand(q, today()).unwrap_or_else(|e| panic!("{q}: {e}")).tool
    }

    #[test]
    fn the_questions_of_the_spec_ask_for_their_tools() {
        assert_eq!(tool("Am I on track against my estimate?"), Tool::OnTrack);
        assert_eq!(tool("Which of my products costs most this month, and why?"), Tool::TopCosts);
        assert_eq!(tool("Are any workloads using unapproved models?"), Tool::UnapprovedModels);
        assert_eq!(tool("Suspend my workload"), Tool::Suspend);
    }

    #[test]
    fn every_example_in_the_help_asks_for_its_own_tool() {
        for t in Tool::ALL {
            assert_eq!(tool(t.example()), t, "{}", t.example());
        }
    }

    #[test]
    fn more_questions_people_ask() {
        let cases = [
            ("When will Support Bot cross its budget?", Tool::OnTrack),
            ("what's my burn rate", Tool::OnTrack),
            ("How much did we spend in October?", Tool::Spend),
            ("What did AI cost us last month", Tool::Spend),
            ("top costs", Tool::TopCosts),
            ("Which models run outside their approval? out of scope", Tool::UnapprovedModels),
            ("Show me the open gaps", Tool::Gaps),
            ("How much spend is unattributed?", Tool::Gaps),
            ("Which cards wait for my sign-off?", Tool::SpendCards),
            ("what is the next move for our governance", Tool::Maturity),
            ("Resume \"Support Bot\"", Tool::Resume),
            ("Use the kill switch on 'Claims Triage', confirmed", Tool::Suspend),
            ("HELP", Tool::Help),
            ("Any spend spikes this week?", Tool::Investigations),
            ("show me the anomalies", Tool::Investigations),
            ("May I see what Maria's team spent?", Tool::Spend),
        ];
        for (q, t) in cases {
            assert_eq!(tool(q), t, "{q}");
        }
    }

    #[test]
    fn arguments_come_from_the_question() {
        let i = understand("Suspend \"Support Bot\" — yes, confirm", today()).unwrap();
        assert_eq!((i.tool, i.workload.as_deref(), i.confirmed), (Tool::Suspend, Some("Support Bot"), true));
        let i = understand("Accept spendCards/99d83fc9-9085-51cc-8c63-969c701c47fb, confirmed.", today()).unwrap();
        assert_eq!(i.tool, Tool::AcceptCard);
        assert_eq!((i.card.as_deref(), i.confirmed), (Some("spendCards/99d83fc9-9085-51cc-8c63-969c701c47fb"), true));
        let i = understand(
            "Dispute amazon.nova-pro-v1:0/cache_read/eu-central-1, /other/us-east-1 on spendCards/cc821d8a-66fc-54fd-a651-667474e3a4e5",
            today(),
        )
        .unwrap();
        assert_eq!(i.tool, Tool::DisputeCard);
        assert_eq!(i.lines, ["amazon.nova-pro-v1:0/cache_read/eu-central-1", "/other/us-east-1"]);
        let gap = "gaps/0b3c2a5e-8f1d-5c9a-9e7b-1234567890ab";
        let i = understand(&format!("Act on {gap}: block — unknown team, confirm"), today()).unwrap();
        assert_eq!(i.tool, Tool::ActOnGap);
        assert_eq!((i.gap.as_deref(), i.gap_action.as_deref(), i.confirmed), (Some(gap), Some("block"), true));
        let i = understand(&format!("act on {gap} and notify product owner"), today()).unwrap();
        assert_eq!(i.gap_action.as_deref(), Some("notify_product_owner"));
        let i = understand(&format!("Which gap is {gap}?"), today()).unwrap();
        assert_eq!((i.tool, i.gap.as_deref()), (Tool::ExplainGap, Some(gap)));
        assert!(i.lines.is_empty(), "a gap's name is not a card line");
        let i = understand("Suspend “Claims Triage”", today()).unwrap();
        assert_eq!((i.workload.as_deref(), i.confirmed), (Some("Claims Triage"), false));
        // A name that holds a rule's words asks nothing by itself.
        let i = understand("Am I on track with \"Top Spend Bot\"?", today()).unwrap();
        assert_eq!((i.tool, i.workload.as_deref()), (Tool::OnTrack, Some("Top Spend Bot")));
        let period = |q: &str| understand(q, today()).unwrap().period;
        assert_eq!(period("spend in 2026-10"), Some("2026-10".into()));
        assert_eq!(period("spend in November"), Some("2026-11".into()));
        assert_eq!(period("spend in December"), Some("2026-12".into()));
        assert_eq!(period("what did we spend in march"), Some("2026-03".into()));
        assert_eq!(period("spend in December 2025"), Some("2025-12".into()));
        assert_eq!(period("spend last month"), Some("2026-11".into()));
        assert_eq!(period("spend this month"), None);
        assert_eq!(period("May I see what we spent?"), None);
        assert_eq!(period("spend in may"), Some("2026-05".into()));
        assert_eq!(understand("what's Maria's spend", today()).unwrap().workload, None);
    }

    #[test]
    fn an_unknown_question_lists_what_can_be_asked() {
        let e = understand("What's the weather in Lisbon?", today()).unwrap_err();
        assert_eq!(e.question, "What's the weather in Lisbon?");
        let text = e.to_string();
        assert!(Tool::ALL.iter().filter(|t| **t != Tool::Help).all(|t| text.contains(t.example())), "{text}");
    }

    proptest! {
        // Any text is answered (understood or not) without a panic, and the answer does
        // not depend on letter case or spacing.
        #[test]
        fn any_text_is_answered_the_same_whatever_its_case_and_spacing(text in "\\PC{0,80}") {
            let once = understand(&text, today());
            let again = understand(&text, today());
            prop_assert_eq!(&once, &again);
            let shouted = understand(&text.to_uppercase(), today()).map(|i| i.tool).ok();
            // Upper-casing can change non-ASCII letters' meaning; compare ASCII questions only.
            if text.is_ascii() && !text.contains(['"', '\'']) {
                prop_assert_eq!(once.as_ref().map(|i| i.tool).ok(), shouted);
                let spaced = understand(&text.replace(' ', "   "), today()).map(|i| i.tool).ok();
                prop_assert_eq!(once.map(|i| i.tool).ok(), spaced);
            }
        }

        // Politeness around a question does not change what it asks.
        #[test]
        fn politeness_changes_nothing(t in 0usize..14, before in "(please|hi bill|hey)?", after in "(thanks|thank you|please)?") {
            let tool = Tool::ALL[t];
            let q = format!("{before} {} {after}", tool.example());
            prop_assert_eq!(understand(&q, today()).unwrap().tool, tool);
        }
    }
}
