//! How the directory's commands apply: domains, accounts and aliases.

use crate::db::{CF_ACCOUNTS, CF_ALIASES, CF_DOMAINS};
use crate::error::StoreError;
use crate::mail;
use crate::mail::dkim;
use crate::reader::{Staged, StateReader};
use crate::types::{Account, Alias, CommandResult, Domain, Rejection};

fn rejected(rejection: Rejection) -> Result<CommandResult, StoreError> {
    Ok(CommandResult::Rejected(rejection))
}

/// The domain part of `local@domain`, if the address has that shape.
fn domain_of(address: &str) -> Option<&str> {
    match address.rsplit_once('@') {
        Some((local, domain)) if !local.is_empty() && !domain.is_empty() => Some(domain),
        _ => None,
    }
}

pub(crate) fn add_domain(
    reader: &StateReader,
    name: &str,
    at: u64,
    batch: &mut Staged<'_>,
) -> Result<CommandResult, StoreError> {
    if reader.domain(name)?.is_some() {
        return rejected(Rejection::DomainExists(name.to_owned()));
    }
    let domain = Domain {
        name: name.to_owned(),
        enabled: true,
        created_at: at,
    };
    batch.put(CF_DOMAINS, name.as_bytes(), &domain);
    Ok(CommandResult::Done)
}

/// Only a domain with no accounts and no aliases goes; its DKIM key goes with it.
pub(crate) fn delete_domain(
    reader: &StateReader,
    name: &str,
    batch: &mut Staged<'_>,
) -> Result<CommandResult, StoreError> {
    if reader.domain(name)?.is_none() {
        return rejected(Rejection::NoSuchDomain(name.to_owned()));
    }
    let in_use = reader.accounts(Some(name))?.len() + reader.aliases(Some(name))?.len();
    if in_use > 0 {
        return rejected(Rejection::DomainNotEmpty(name.to_owned()));
    }
    batch.delete(CF_DOMAINS, name.as_bytes());
    dkim::delete_key_of_domain(name, batch);
    Ok(CommandResult::Done)
}

/// A new account in an existing domain, with its default mailboxes; an address is an account
/// or an alias, never both.
pub(crate) fn add_account(
    reader: &StateReader,
    address: &str,
    password_hash: &str,
    quota_mb: u64,
    at: u64,
    batch: &mut Staged<'_>,
) -> Result<CommandResult, StoreError> {
    let domain = match new_address(reader, address)? {
        Ok(domain) => domain,
        Err(rejection) => return rejected(rejection),
    };
    let account = Account {
        address: address.to_owned(),
        domain,
        password_hash: password_hash.to_owned(),
        quota_mb,
        enabled: true,
        created_at: at,
    };
    batch.put(CF_ACCOUNTS, address.as_bytes(), &account);
    mail::create_default_mailboxes(reader, address, at, batch)?;
    Ok(CommandResult::Done)
}

/// The account goes with all its mail.
pub(crate) fn delete_account(
    reader: &StateReader,
    address: &str,
    batch: &mut Staged<'_>,
) -> Result<CommandResult, StoreError> {
    if reader.account(address)?.is_none() {
        return rejected(Rejection::NoSuchAccount(address.to_owned()));
    }
    batch.delete(CF_ACCOUNTS, address.as_bytes());
    mail::delete_mail_of(reader, address, batch)?;
    Ok(CommandResult::Done)
}

pub(crate) fn set_password(
    reader: &StateReader,
    address: &str,
    password_hash: &str,
    batch: &mut Staged<'_>,
) -> Result<CommandResult, StoreError> {
    update_account(reader, address, batch, |account| {
        password_hash.clone_into(&mut account.password_hash)
    })
}

pub(crate) fn set_account_enabled(
    reader: &StateReader,
    address: &str,
    enabled: bool,
    batch: &mut Staged<'_>,
) -> Result<CommandResult, StoreError> {
    update_account(reader, address, batch, |account| account.enabled = enabled)
}

fn update_account(
    reader: &StateReader,
    address: &str,
    batch: &mut Staged<'_>,
    change: impl FnOnce(&mut Account),
) -> Result<CommandResult, StoreError> {
    let Some(mut account) = reader.account(address)? else {
        return rejected(Rejection::NoSuchAccount(address.to_owned()));
    };
    change(&mut account);
    batch.put(CF_ACCOUNTS, address.as_bytes(), &account);
    Ok(CommandResult::Done)
}

pub(crate) fn add_alias(
    reader: &StateReader,
    address: &str,
    targets: &[String],
    batch: &mut Staged<'_>,
) -> Result<CommandResult, StoreError> {
    let domain = match new_address(reader, address)? {
        Ok(domain) => domain,
        Err(rejection) => return rejected(rejection),
    };
    let alias = Alias {
        address: address.to_owned(),
        domain,
        targets: targets.to_vec(),
    };
    batch.put(CF_ALIASES, address.as_bytes(), &alias);
    Ok(CommandResult::Done)
}

pub(crate) fn delete_alias(
    reader: &StateReader,
    address: &str,
    batch: &mut Staged<'_>,
) -> Result<CommandResult, StoreError> {
    if reader.alias(address)?.is_none() {
        return rejected(Rejection::NoSuchAlias(address.to_owned()));
    }
    batch.delete(CF_ALIASES, address.as_bytes());
    Ok(CommandResult::Done)
}

/// The domain of an address that may become an account or an alias: well formed, in a local
/// domain, and not taken.
fn new_address(
    reader: &StateReader,
    address: &str,
) -> Result<Result<String, Rejection>, StoreError> {
    let Some(domain) = domain_of(address) else {
        return Ok(Err(Rejection::InvalidAddress(address.to_owned())));
    };
    if reader.domain(domain)?.is_none() {
        return Ok(Err(Rejection::NoSuchDomain(domain.to_owned())));
    }
    if reader.account(address)?.is_some() || reader.alias(address)?.is_some() {
        return Ok(Err(Rejection::AddressExists(address.to_owned())));
    }
    Ok(Ok(domain.to_owned()))
}
