//! Summarizes arbitrary bytes as a message; it must never panic, every part's offsets must lie
//! inside the message and in order, and what IMAP FETCH derives from a summary (ENVELOPE,
//! BODYSTRUCTURE, section ranges, HEADER.FIELDS) must work on it too.
#![no_main]

use libfuzzer_sys::fuzz_target;
use node::imap::render::{SectionPart, body_structure, envelope, filter_header_fields, section};
use raft_store::summary::{self, MessageSummary, Part, PartKind};

fuzz_target!(|raw: &[u8]| {
    // summarize catches mail-parser's own panics (see summary::parse_mime); libfuzzer-sys's
    // hook would abort on those too. A panic that escapes still aborts: the fuzz callback
    // treats an unwinding panic as a crash.
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| std::panic::set_hook(Box::new(|info| eprintln!("{info}"))));
    let summary = summary::summarize(raw);
    check_part(&summary.root, raw.len());
    let _ = envelope(&summary);
    let _ = body_structure(&summary, true);
    let _ = body_structure(&summary, false);
    for path in paths(&summary) {
        for part in [SectionPart::Full, SectionPart::Header, SectionPart::Text, SectionPart::Mime] {
            if let Some(range) = section(&summary, &path, part) {
                assert!(range.start <= range.end && range.end <= raw.len(), "{path:?} {range:?}");
            }
        }
    }
    let header = &raw[summary.root.header_range()];
    let _ = filter_header_fields(header, &[b"Subject", b"From"], false);
    let _ = filter_header_fields(header, &[b"Received"], true);
});

fn check_part(part: &Part, len: usize) {
    assert!(part.offset_header <= part.offset_body, "{part:?}");
    assert!(part.offset_body <= part.offset_end, "{part:?}");
    assert!(part.offset_end as usize <= len, "{part:?} beyond {len}");
    match &part.kind {
        PartKind::Leaf => {}
        PartKind::Multipart(children) => {
            for child in children {
                assert!(child.offset_header >= part.offset_body, "{child:?} inside {part:?}");
                assert!(child.offset_end <= part.offset_end, "{child:?} inside {part:?}");
                check_part(child, len);
            }
        }
        PartKind::Message(inner) => check_part(&inner.root, len),
    }
}

/// Section paths of every part, at most a few hundred.
fn paths(summary: &MessageSummary) -> Vec<Vec<u32>> {
    let mut out = vec![Vec::new()];
    walk(&summary.root, &mut Vec::new(), &mut out);
    out
}

fn walk(part: &Part, path: &mut Vec<u32>, out: &mut Vec<Vec<u32>>) {
    let children: &[Part] = match &part.kind {
        PartKind::Multipart(children) => children,
        PartKind::Message(inner) => std::slice::from_ref(&inner.root),
        PartKind::Leaf => return,
    };
    for (i, child) in children.iter().enumerate() {
        if out.len() > 300 {
            return;
        }
        path.push(i as u32 + 1);
        out.push(path.clone());
        walk(child, path, out);
        path.pop();
    }
}
