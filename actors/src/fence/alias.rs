//! `domainAliases`: extra names for a host, from RE2-style patterns with named groups and
//! `$name` templates (`(?P<service>[^.]+)\.(?P<namespace>[^.]+)\.svc\.cluster\.local$` →
//! `$namespace.$service.mailsaas`).
//!
//! Each rule is compiled on its own: a bad rule is reported with its index and skipped, and the
//! others keep working (Slime drops every rule when one fails to compile). As in Slime, a rule
//! applies only when its pattern matches the host exactly once, and empty expansions are
//! dropped.

use regex::Regex;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One rule as configured.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AliasRule {
    pub pattern: String,
    pub templates: Vec<String>,
}

impl AliasRule {
    /// Why this rule cannot be used, if it cannot.
    pub fn problem(&self) -> Option<String> {
        if self.templates.is_empty() {
            return Some("no templates".into());
        }
        Regex::new(&self.pattern)
            .err()
            .map(|e| format!("pattern does not compile: {e}"))
    }
}

/// The configured rules with their compiled patterns. Serialized as the rules alone (the
/// patterns are compiled again when read), compared by the rules.
#[derive(Clone, Debug, Default)]
pub struct AliasRules {
    rules: Vec<AliasRule>,
    compiled: Vec<Option<Regex>>,
}

impl AliasRules {
    pub fn new(rules: Vec<AliasRule>) -> Self {
        let compiled = rules
            .iter()
            .map(|r| {
                if r.templates.is_empty() {
                    None
                } else {
                    Regex::new(&r.pattern).ok()
                }
            })
            .collect();
        AliasRules { rules, compiled }
    }

    pub fn rules(&self) -> &[AliasRule] {
        &self.rules
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Rules that are skipped, with their index and reason.
    pub fn problems(&self) -> Vec<(usize, String)> {
        self.rules
            .iter()
            .enumerate()
            .filter_map(|(i, r)| r.problem().map(|p| (i, p)))
            .collect()
    }

    /// The aliases of `host` (not including `host` itself), in rule and template order.
    pub fn aliases(&self, host: &str) -> Vec<String> {
        let mut out = Vec::new();
        for (rule, re) in self.rules.iter().zip(&self.compiled) {
            let Some(re) = re else { continue };
            let mut matches = re.captures_iter(host);
            let (Some(captures), None) = (matches.next(), matches.next()) else {
                continue;
            };
            for template in &rule.templates {
                let mut alias = String::new();
                captures.expand(template, &mut alias);
                if !alias.is_empty() && alias != host && !out.contains(&alias) {
                    out.push(alias);
                }
            }
        }
        out
    }
}

impl PartialEq for AliasRules {
    fn eq(&self, other: &Self) -> bool {
        self.rules == other.rules
    }
}

impl Eq for AliasRules {}

impl Serialize for AliasRules {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.rules.serialize(s)
    }
}

impl<'de> Deserialize<'de> for AliasRules {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(AliasRules::new(Vec::deserialize(d)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(pattern: &str, templates: &[&str]) -> AliasRule {
        AliasRule {
            pattern: pattern.into(),
            templates: templates.iter().map(|t| t.to_string()).collect(),
        }
    }

    #[test]
    fn expands_slimes_documented_example() {
        let rules = AliasRules::new(vec![rule(
            r"(?P<service>[^\.]+)\.(?P<namespace>[^\.]+)\.svc\.cluster\.local$",
            &["$namespace.$service.mailsaas"],
        )]);
        assert_eq!(
            rules.aliases("details.default.svc.cluster.local"),
            vec!["default.details.mailsaas".to_string()]
        );
        assert!(rules.aliases("www.example.com").is_empty());
    }

    #[test]
    fn a_bad_rule_is_reported_alone_and_the_others_still_work() {
        let rules = AliasRules::new(vec![
            rule("(?P<broken", &["$x"]),
            rule("^(?P<name>[a-z]+)\\.example\\.com$", &["${name}.internal"]),
            rule("anything", &[]),
        ]);
        let problems = rules.problems();
        assert_eq!(problems.len(), 2);
        assert_eq!(problems[0].0, 0);
        assert!(problems[0].1.contains("does not compile"), "{problems:?}");
        assert_eq!(problems[1], (2, "no templates".to_string()));
        assert_eq!(rules.aliases("shop.example.com"), vec!["shop.internal"]);
    }

    #[test]
    fn a_pattern_matching_twice_is_skipped_and_empty_expansions_dropped() {
        let rules = AliasRules::new(vec![
            rule("[a-z]+", &["x"]),
            rule("^(?P<a>[a-z]+)$", &["$missing"]),
        ]);
        assert!(rules.aliases("a.b").is_empty(), "two matches: skipped");
        assert_eq!(
            rules.aliases("abc"),
            vec!["x"],
            "the empty expansion is dropped"
        );
    }

    #[test]
    fn round_trips_through_serde_with_compiled_patterns() {
        let rules = AliasRules::new(vec![rule("^(?P<n>.+)\\.a$", &["$n.b"])]);
        let json = serde_json::to_string(&rules).unwrap();
        let back: AliasRules = serde_json::from_str(&json).unwrap();
        assert_eq!(back, rules);
        assert_eq!(back.aliases("x.a"), vec!["x.b"]);
    }
}
