//! The shape of names an operator gives the admin API: mail domains (checked strictly when one
//! is added, leniently when an existing one is looked up, so a domain an older build let in can
//! still be shown and deleted) and passwords against the cluster's password policy.

use std::net::IpAddr;

use raft_store::PasswordPolicy;

#[cfg(test)]
mod tests;

/// The longest password taken at all, whatever the policy (argon2 hashes it whole).
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// A domain name in lower case, checked for shape only (LDH labels): for names that must
/// already exist.
pub fn domain_name(raw: &str) -> Result<String, String> {
    let name = raw.trim().to_ascii_lowercase();
    if name.is_empty() || name.len() > 253 || !name.split('.').all(label_ok) {
        return Err(format!("{raw:?} is not a domain name"));
    }
    Ok(name)
}

/// A new mail domain in lower case: a fully qualified host name (RFC 1035/1123 letters, digits
/// and hyphens, labels of 1 to 63 characters, at most 253 in all, at least two labels, a
/// top-level label that is not all digits). IP literals and single-label names such as
/// `localhost` are refused: mail to them is not routed by MX, and a bare IP would take mail
/// addressed to the node's own address literal for a domain.
pub fn new_domain_name(raw: &str) -> Result<String, String> {
    let name = raw.trim().to_ascii_lowercase();
    let bare = name.trim_start_matches('[').trim_end_matches(']');
    let bare = bare.strip_prefix("ipv6:").unwrap_or(bare);
    if bare.parse::<IpAddr>().is_ok() {
        return Err(format!(
            "{raw:?} is an IP address; a mail domain must be a name such as example.com"
        ));
    }
    if name.is_empty() {
        return Err("the domain name is empty".into());
    }
    if name.len() > 253 {
        return Err(format!(
            "{raw:?} is longer than 253 characters, the limit for a domain name"
        ));
    }
    if let Some(label) = name.split('.').find(|label| !label_ok(label)) {
        return Err(format!(
            "{raw:?} is not a domain name: the label {label:?} must be 1 to 63 letters, digits \
             or hyphens, not starting or ending with a hyphen"
        ));
    }
    let Some((_, top)) = name.rsplit_once('.') else {
        return Err(format!(
            "{raw:?} is a single-label name; a mail domain needs at least two labels, such as \
             example.com"
        ));
    };
    if top.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "{raw:?} is not a domain name: its top-level label {top:?} is all digits"
        ));
    }
    Ok(name)
}

/// One LDH label (RFC 1123 2.1: it may start with a digit).
pub(crate) fn label_ok(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= 63
        && !label.starts_with('-')
        && !label.ends_with('-')
        && label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// Whether a new password meets `policy`; else why not, in one sentence. Length counts
/// characters (Unicode scalar values), not bytes.
pub fn check_password(policy: &PasswordPolicy, password: &str) -> Result<(), String> {
    let chars = password.chars().count();
    let min = policy.min_password_length as usize;
    if chars < min {
        return Err(format!(
            "the password is too short: the cluster's password policy asks for at least {min} \
             characters (min-password-length), this one has {chars}"
        ));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(format!(
            "the password is too long: at most {MAX_PASSWORD_BYTES} bytes"
        ));
    }
    Ok(())
}
