//! LIST and LSUB name matching (RFC 3501 6.3.8): the reference name and the mailbox pattern
//! with its `*` (anything) and `%` (anything but the hierarchy delimiter) wildcards.
//! Names are UTF-8 here (the session converts modified UTF-7 at the edges); INBOX matches
//! case-insensitively, as it is case-insensitive everywhere.

/// The hierarchy delimiter (the same as the store's).
pub const DELIMITER: char = '/';

/// The pattern a LIST command asks for: the reference joined with the mailbox argument. An
/// argument that starts with the delimiter is taken as absolute, like most servers do.
pub fn full_pattern(reference: &str, pattern: &str) -> String {
    if reference.is_empty() || pattern.starts_with(DELIMITER) {
        return pattern.to_owned();
    }
    if reference.ends_with(DELIMITER) {
        format!("{reference}{pattern}")
    } else {
        format!("{reference}{DELIMITER}{pattern}")
    }
}

/// Whether `name` matches `pattern` (`*` and `%` wildcards).
pub fn matches(pattern: &str, name: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let name: Vec<char> = if is_inbox(&name.chars().take(5).collect::<String>())
        && (name.len() == 5 || name[5..].starts_with(DELIMITER))
    {
        // INBOX and its children: compare the INBOX part without case.
        let mut normalised: Vec<char> = "INBOX".chars().collect();
        normalised.extend(name.chars().skip(5));
        normalised
    } else {
        name.chars().collect()
    };
    let pattern = normalise_inbox(&pattern);
    match_from(&pattern, &name)
}

fn normalise_inbox(pattern: &[char]) -> Vec<char> {
    let head: String = pattern.iter().take(5).collect();
    let next = pattern.get(5);
    if is_inbox(&head) && (next.is_none() || next == Some(&DELIMITER)) {
        let mut out: Vec<char> = "INBOX".chars().collect();
        out.extend_from_slice(&pattern[5..]);
        out
    } else {
        pattern.to_vec()
    }
}

fn is_inbox(text: &str) -> bool {
    text.eq_ignore_ascii_case("INBOX")
}

/// Patterns longer than this match nothing (mailbox names are at most 1000 bytes).
const MAX_PATTERN: usize = 2048;

/// Wildcard match by dynamic programming over (pattern position, name position): linear in
/// their product, whatever the pattern (naive backtracking is exponential on `*a*a*a*b`).
fn match_from(pattern: &[char], name: &[char]) -> bool {
    if pattern.len() > MAX_PATTERN {
        return false;
    }
    let n = name.len();
    // next[j]: pattern[i+1..] matches name[j..]; cur[j]: pattern[i..] matches name[j..].
    let mut next = vec![false; n + 1];
    next[n] = true;
    for &p in pattern.iter().rev() {
        let mut cur = vec![false; n + 1];
        for j in (0..=n).rev() {
            cur[j] = match p {
                '*' => next[j] || (j < n && cur[j + 1]),
                '%' => next[j] || (j < n && name[j] != DELIMITER && cur[j + 1]),
                c => j < n && name[j] == c && next[j + 1],
            };
        }
        next = cur;
    }
    next[0]
}

/// For a `%` listing: names of hierarchy levels that match the pattern but exist only as
/// parents of other mailboxes (returned with `\Noselect`). `names` are the existing mailboxes
/// (for LSUB, the subscribed ones). With `hidden_only` (LSUB), a level is implied only by names
/// the pattern does not match themselves: RFC 3501 6.3.9 has LSUB "%" return `foo` for a
/// subscribed `foo/bar`, while LSUB "*" returns `foo/bar` and nothing that is not subscribed.
pub fn implied_parents<'a>(
    pattern: &str,
    names: impl Iterator<Item = &'a str>,
    hidden_only: bool,
) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let existing: Vec<&str> = names.collect();
    for name in &existing {
        if hidden_only && matches(pattern, name) {
            continue;
        }
        for (i, _) in name.match_indices(DELIMITER) {
            let parent = &name[..i];
            if !existing.contains(&parent)
                && matches(pattern, parent)
                && !out.iter().any(|p| p == parent)
            {
                out.push(parent.to_owned());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn star_crosses_levels_and_percent_does_not() {
        assert!(matches("*", "Work/项目/2026"));
        assert!(matches("Work/*", "Work/项目/2026"));
        assert!(!matches("Work/*", "Workshop"));
        assert!(matches("%", "Work"));
        assert!(!matches("%", "Work/项目"));
        assert!(matches("Work/%", "Work/项目"));
        assert!(!matches("Work/%", "Work/项目/2026"));
        assert!(matches("W%k", "Work"));
        assert!(matches("*2026", "Work/项目/2026"));
        assert!(matches("%/%/2026", "Work/项目/2026"));
        assert!(!matches("%/2026", "Work/项目/2026"));
        assert!(matches("Sent", "Sent"));
        assert!(!matches("Sent", "sent"), "only INBOX ignores case");
        assert!(!matches("", "Sent"));
    }

    #[test]
    fn inbox_matches_without_case() {
        assert!(matches("inbox", "INBOX"));
        assert!(matches("INBOX", "INBOX"));
        assert!(matches("Inbox/%", "INBOX/Lists"));
        assert!(matches("INBOX/%", "inbox/Lists"));
        assert!(!matches("inboxes", "INBOX"));
        assert!(!matches("inbox", "INBOXES"));
    }

    #[test]
    fn reference_joins_the_pattern() {
        assert_eq!(full_pattern("", "%"), "%");
        assert_eq!(full_pattern("Work", "%"), "Work/%");
        assert_eq!(full_pattern("Work/", "%"), "Work/%");
        assert_eq!(full_pattern("Work", "/Sent"), "/Sent");
    }

    #[test]
    fn missing_parents_show_up_for_percent() {
        let names = ["INBOX", "a/b/c", "x", "x/y"];
        assert_eq!(implied_parents("%", names.into_iter(), false), ["a"]);
        assert_eq!(implied_parents("a/%", names.into_iter(), false), ["a/b"]);
        assert!(implied_parents("x", names.into_iter(), false).is_empty());
        assert_eq!(implied_parents("*", names.into_iter(), false), ["a", "a/b"]);
    }

    #[test]
    fn lsub_implies_only_parents_of_names_the_pattern_hides() {
        let subscribed = ["INBOX", "a/b/c", "x/y"];
        assert_eq!(
            implied_parents("%", subscribed.into_iter(), true),
            ["a", "x"]
        );
        assert_eq!(
            implied_parents("a/%", subscribed.into_iter(), true),
            ["a/b"]
        );
        assert!(implied_parents("*", subscribed.into_iter(), true).is_empty());
        assert!(implied_parents("a/*", subscribed.into_iter(), true).is_empty());
    }

    #[test]
    fn pathological_patterns_match_correctly() {
        let pattern = "*a*a*a*a*a*a*a*a*a*a*b";
        let name = "a".repeat(200);
        assert!(!matches(pattern, &name));
        assert!(matches("*a*a*", &name));
        assert!(matches(&format!("{pattern}%"), &format!("{name}b")));
        assert!(!matches(&"*".repeat(MAX_PATTERN + 1), "a"));
    }
}
