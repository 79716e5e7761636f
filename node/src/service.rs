//! The mail services a data node listens for: which protocol each port speaks, and how.

use crate::protection::Budget;

/// Which protocol a listener speaks, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// Port 25: mail for local domains from anyone, relaying only after AUTH.
    Smtp,
    /// Port 587: AUTH required, STARTTLS offered.
    Submission,
    /// Port 465: submission over implicit TLS.
    Smtps,
    Pop3,
    Pop3s,
    /// Port 143: IMAP with STARTTLS.
    Imap,
    /// Port 993: IMAP over implicit TLS.
    Imaps,
}

impl Service {
    pub fn implicit_tls(self) -> bool {
        matches!(self, Service::Smtps | Service::Pop3s | Service::Imaps)
    }

    /// The connection budget its new connections come out of.
    pub fn budget(self) -> Budget {
        match self {
            Service::Smtp => Budget::Smtp,
            Service::Submission | Service::Smtps => Budget::Submission,
            Service::Imap | Service::Imaps => Budget::Imap,
            Service::Pop3 | Service::Pop3s => Budget::Pop3,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Service::Smtp => "smtp",
            Service::Submission => "submission",
            Service::Smtps => "smtps",
            Service::Pop3 => "pop3",
            Service::Pop3s => "pop3s",
            Service::Imap => "imap",
            Service::Imaps => "imaps",
        }
    }
}
