use super::*;
use imap_codec::imap_types::core::{AString, Atom};

#[test]
fn uid_sets_are_compacted_in_order() {
    assert_eq!(uid_set([1, 2, 3, 7, 9, 10]), "1:3,7,9:10");
    assert_eq!(uid_set([5]), "5");
    assert_eq!(uid_set([]), "");
    assert_eq!(
        uid_set([u32::MAX - 1, u32::MAX]),
        format!("{}:{}", u32::MAX - 1, u32::MAX)
    );
    // COPYUID pairs keep the source order; a descending run is not a range.
    assert_eq!(uid_set([3, 2, 1]), "3,2,1");
}

#[test]
fn wire_names_decode_from_modified_utf7_and_inbox_is_case_insensitive() {
    let name = |text: &str| mailbox_name(&WireMailbox::from(AString::try_from(text).unwrap()));
    assert_eq!(name("inbox").unwrap(), "INBOX");
    assert_eq!(name("Archive/2024/").unwrap(), "Archive/2024");
    assert_eq!(name("&U,BTFw-").unwrap(), "台北");
    assert!(name("&U,BTFw").is_err());
    assert_eq!(quoted_name("台北"), "\"&U,BTFw-\"");
    assert_eq!(quoted("a\"b\\c"), "\"a\\\"b\\\\c\"");
}

#[test]
fn system_flags_are_bits_keywords_are_kept_and_unknown_system_flags_refused() {
    let flags = vec![
        Flag::Seen,
        Flag::Deleted,
        Flag::Keyword(Atom::try_from("$Label1").unwrap()),
    ];
    assert_eq!(
        stored_flags(&flags),
        Ok((flag::SEEN | flag::DELETED, vec!["$Label1".to_owned()]))
    );
    let unknown = vec![Flag::system(Atom::try_from("Recent").unwrap())];
    assert!(stored_flags(&unknown).is_err());
}
