//! The report of a log that is refused: what is damaged and what is still intact.
//!
//! A log is served only when every record from position 1 to its head verifies. Anything else
//! (a record failing its checksum, a missing record, a page of the database failing redb's
//! checksum, a commit that was acknowledged but is gone) is refused with this report, and
//! nothing in the file is changed, so `meshplane log salvage` can still copy every intact
//! record out of it.

/// Why a log cannot be served.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Damage {
    /// The file that holds the log.
    pub file: String,
    /// The first position that is damaged or missing.
    pub first_bad: u64,
    /// What is wrong there.
    pub reason: String,
    /// Intact records found after `first_bad`, when known.
    pub intact_after: Option<u64>,
    /// The highest position of an intact record, when known.
    pub last_intact: Option<u64>,
}

/// Longest reason a report carries: a damaged record can hold anything, and a report is read
/// by a person (and ends up in logs).
const MAX_REASON: usize = 300;

impl Damage {
    pub fn new(file: impl Into<String>, first_bad: u64, reason: impl Into<String>) -> Damage {
        let mut reason: String = reason.into();
        if reason.len() > MAX_REASON {
            let mut cut = MAX_REASON;
            while !reason.is_char_boundary(cut) {
                cut -= 1;
            }
            let total = reason.len();
            reason.truncate(cut);
            reason.push_str(&format!("… ({total} bytes)"));
        }
        Damage {
            file: file.into(),
            first_bad,
            reason,
            intact_after: None,
            last_intact: None,
        }
    }

    /// Add what a scan found after the damage.
    pub fn with_intact_after(mut self, count: u64, last: u64) -> Damage {
        self.intact_after = Some(count);
        self.last_intact = Some(last);
        self
    }
}

impl std::fmt::Display for Damage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: the event log is damaged at position {}: {}. ",
            self.file, self.first_bad, self.reason
        )?;
        match self.first_bad {
            0 | 1 => write!(f, "No record before it. ")?,
            n => write!(f, "Positions 1 to {} are intact. ", n - 1)?,
        }
        match (self.intact_after, self.last_intact) {
            (Some(0), _) => write!(f, "No intact record after it. ")?,
            (Some(n), Some(last)) => {
                write!(f, "{n} intact record(s) after it, up to position {last}. ")?
            }
            _ => {}
        }
        write!(
            f,
            "Nothing was changed. `meshplane log salvage --data <dir> --to <new dir>` copies every \
             intact record into a new log to inspect."
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_names_the_damage_and_what_is_intact() {
        let text = Damage::new("/d/events.redb", 5, "checksum mismatch")
            .with_intact_after(2, 7)
            .to_string();
        assert!(
            text.contains("damaged at position 5: checksum mismatch"),
            "{text}"
        );
        assert!(text.contains("Positions 1 to 4 are intact"), "{text}");
        assert!(
            text.contains("2 intact record(s) after it, up to position 7"),
            "{text}"
        );
        assert!(text.contains("log salvage"), "{text}");
    }

    #[test]
    fn a_huge_reason_is_shortened() {
        let damage = Damage::new("f", 1, "x".repeat(900_000));
        assert!(damage.to_string().len() < 1000);
        assert!(damage.reason.ends_with("(900000 bytes)"));
    }
}
